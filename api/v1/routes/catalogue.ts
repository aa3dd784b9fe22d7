/**
 * What is on sale and where: the plans side by side and the exit locations.
 * Public, so a dashboard can show them before sign-up.
 */
import { z } from 'zod';
import { comparePlans, listPlans } from '../../../core/plans.js';
import { listLocations } from '../../../core/locations.js';
import { jsonRoute, type AnyRoute } from '../route.js';
import { currency, planRow } from '../schemas.js';

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
    response: z.object({
      locations: z.array(
        z.object({
          code: z.string(),
          countryCode: z.string(),
          city: z.string().nullable(),
          label: z.string(),
          available: z.boolean().describe('At least one healthy exit.'),
        }),
      ),
    }),
    async handler() {
      const locations = await listLocations();
      return {
        locations: locations.map((location) => ({
          code: location.code,
          countryCode: location.countryCode,
          city: location.city ?? null,
          label: location.label,
          available: location.exits.some((exit) => exit.healthy),
        })),
      };
    },
  }),
];
