/** /api/v1 routes: billing (to be written). */
import type { AnyRoute } from '../route.js';

export const billingRoutes: AnyRoute[] = [];
