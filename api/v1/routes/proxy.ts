/** /api/v1 routes: proxy (to be written). */
import type { AnyRoute } from '../route.js';

export const proxyRoutes: AnyRoute[] = [];
