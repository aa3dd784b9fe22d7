/** /api/v1 routes: auth (to be written). */
import type { AnyRoute } from '../route.js';

export const authRoutes: AnyRoute[] = [];
