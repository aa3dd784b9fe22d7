/** /api/v1 routes: team (to be written). */
import type { AnyRoute } from '../route.js';

export const teamRoutes: AnyRoute[] = [];
