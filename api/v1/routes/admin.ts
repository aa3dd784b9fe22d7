/** /api/v1 routes: admin (to be written). */
import type { AnyRoute } from '../route.js';

export const adminRoutes: AnyRoute[] = [];
