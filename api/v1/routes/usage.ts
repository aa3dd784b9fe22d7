/** /api/v1 routes: usage (to be written). */
import type { AnyRoute } from '../route.js';

export const usageRoutes: AnyRoute[] = [];
