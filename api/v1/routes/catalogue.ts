/**
 * What is on sale and where: the plans side by side and the exit locations.
 * Public, so a dashboard can show them before sign-up.
 */
import { z } from 'zod';
import { comparePlans, listPlans } from '../../../core/plans.js';
import { listLocations } from '../../../core/locations.js';
import { jsonRoute, type AnyRoute } from '../route.js';
import { currency, planRow, publicLocation, toPublicLocation } from '../schemas.js';

export const catalogueRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'listPlans',
    method: 'get',
    path: '/plans',
    tag: 'Catalogue',
    summary: 'The plans on sale, side by side',
    description:
      'Price, data and quota period, protocols, locations, connections and seats of every plan on sale, in one currency.',
    access: 'public',
    query: z.object({ currency: currency.default('NGN') }),
    response: z.object({ plans: z.array(planRow) }),
    async handler({ query }) {
      const plans = await listPlans({ onSaleOnly: true });
      return { plans: comparePlans(plans, { currency: query.currency }) };
    },
  }),
  jsonRoute({
    operationId: 'listLocations',
    method: 'get',
    path: '/locations',
    tag: 'Catalogue',
    summary: 'Exit locations',
    description: 'Every exit location and whether it can carry traffic now.',
    access: 'public',
    response: z.object({ locations: z.array(publicLocation) }),
    async handler() {
      const locations = await listLocations();
      return {
        locations: locations.map(toPublicLocation),
      };
    },
  }),
];
