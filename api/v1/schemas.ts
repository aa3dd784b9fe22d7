/**
 * Schemas several route groups share (money, refusals, plan rows), so the
 * same thing is described the same way everywhere in the OpenAPI document.
 */
import { z } from 'zod';
import { CURRENCIES } from '../../lib/money.js';
import { REFUSAL_CODES } from '../../core/entitlements.js';
import type { LocationView } from '../../core/locations.js';

export const currency = z.enum(CURRENCIES);

export const money = z.object({
  amountMinor: z.number().int().describe('In minor units (kobo for NGN).'),
  currency,
});

/** An account id or other ObjectId in a path. */
export const objectId = z.string().regex(/^[0-9a-f]{24}$/i, 'must be a 24-character hex id');

export const upgrade = z.object({
  action: z.string(),
  planCode: z.string().nullable(),
  text: z.string(),
});

/** A refusal as the bots word it (core/entitlements.ts). */
export const refusal = z.object({
  code: z.enum(REFUSAL_CODES),
  message: z.string(),
  upgrade: upgrade.nullable(),
});

export const billingPeriod = z.object({
  unit: z.enum(['day', 'week', 'month']),
  count: z.number().int(),
});

export const planRow = z.object({
  code: z.string(),
  name: z.string(),
  description: z.string(),
  kind: z.enum(['trial', 'recurring', 'payg']),
  price: z
    .object({ amountMinor: z.number().int(), currency, per: billingPeriod })
    .nullable()
    .describe('Price per billing period; null for the trial (a deposit) and PAYG (rates).'),
  payg: z
    .object({
      hourlyRateMinor: z.number().int(),
      perGbRateMinor: z.number().int().nullable(),
      currency,
    })
    .nullable(),
  data: z
    .object({
      bytes: z.number().int(),
      period: z.enum(['week', 'month', 'trial']),
      pooled: z.boolean(),
      rolloverCapBytes: z.number().int(),
    })
    .nullable()
    .describe('Data allowance per quota period; null = no quota (PAYG).'),
  trialDays: z.number().int().nullable(),
  protocols: z.array(z.enum(['http', 'https', 'socks5'])),
  locations: z.union([z.literal('all'), z.number().int()]),
  maxConnections: z.number().int(),
  seats: z.number().int(),
  features: z.object({ rotation: z.boolean(), stickySessions: z.boolean() }),
  labels: z.object({
    price: z.string(),
    data: z.string(),
    locations: z.string(),
    protocols: z.string(),
  }),
});

/** An exit location as customers see it (no exits, hosts or passwords). */
export const publicLocation = z.object({
  code: z.string(),
  countryCode: z.string(),
  city: z.string().nullable(),
  label: z.string(),
  available: z.boolean().describe('At least one healthy exit.'),
});

export function toPublicLocation(location: LocationView): z.input<typeof publicLocation> {
  return {
    code: location.code,
    countryCode: location.countryCode,
    city: location.city ?? null,
    label: location.label,
    available: location.exits.some((exit) => exit.healthy),
  };
}
