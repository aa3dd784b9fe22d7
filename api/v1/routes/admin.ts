/**
 * /api/v1/admin: the admin bot commands (bot/core/journeys/admin.ts) over
 * REST, for an operator's dashboard or scripts. Every route is `access:
 * 'admin'` (the gate runs core/admin's requireAdmin, so a refused caller is
 * audited as `admin.refused`), and every handler calls the same core/admin
 * operation the bot calls, with an AdminContext on channel 'api': the
 * operation checks the role again and writes its own audit entry (reads
 * too, as `*.viewed`), so the trail cannot tell a chat command from an API
 * call except by its channel.
 *
 * Changes the bot confirms with a button carry a request id here instead:
 * `requestId` in the body or an `Idempotency-Key` header (the same value if
 * both). A repeat with the same id is the same action, done once (one grant,
 * one refund, one broadcast); the same id for a different action is refused
 * with 409 IDEMPOTENCY_KEY_REUSED rather than silently answered with the
 * first one's outcome.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import {
  MAX_BROADCAST_LENGTH,
  MAX_EXTEND_DAYS,
  MAX_GRANT_BYTES,
  addAdmin,
  addLocationAsAdmin,
  addUpstream,
  countBroadcast,
  describePayment,
  editPlan,
  extendPlan,
  findUser,
  getSettingsForAdmin,
  getStats,
  grantData,
  listAdmins,
  listLocationsForAdmin,
  listPayments,
  listPlansForAdmin,
  lookupAccount,
  markUpstreamHealthy,
  parseSegment,
  paymentFilters,
  refundPayment,
  removeAdmin,
  removeLocationAsAdmin,
  removeUpstream,
  sendBroadcast,
  suspendAccount,
  unsuspendAccount,
  updateSettingsAsAdmin,
  type AdminContext,
  type AdminLocationView,
  type AdminPaymentLine,
  type MoneyWindow,
} from '../../../core/admin/index.js';
import { findAuditByKey, listAudit, recordAudit } from '../../../core/audit.js';
import { getRefundByKey } from '../../../core/payments/refunds.js';
import { businessSettingsSchema, type Settings } from '../../../core/settings.js';
import { DomainError } from '../../../lib/errors.js';
import { CURRENCIES, type Currency } from '../../../lib/money.js';
import { accountStatuses } from '../../../models/account.js';
import { auditChannels } from '../../../models/audit-entry.js';
import { channels } from '../../../models/channel-identity.js';
import { exitKinds } from '../../../models/location.js';
import { paymentPurposes, paymentStatuses } from '../../../models/payment.js';
import type { PlanRecord } from '../../../models/plan.js';
import { refundMethods } from '../../../models/refund.js';
import { subscriptionStatuses } from '../../../models/subscription.js';
import { emptyRoute, jsonRoute, type AnyRoute, type ApiDeps, type Caller } from '../route.js';
import { currency, objectId } from '../schemas.js';

const TAG = 'Admin';

/** The context every core/admin operation takes: the caller, on channel 'api'. */
function adminCtx(caller: Caller, deps: ApiDeps): AdminContext {
  return {
    actor: { accountId: caller.accountId, channel: 'api' },
    clock: deps.clock,
    configuredAdmins: deps.configuredAdmins,
  };
}

// --- request ids (idempotency) ------------------------------------------------------

const REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;

const requestIdField = z
  .string()
  .regex(REQUEST_ID, 'must be 1 to 64 letters, digits and dashes')
  .optional()
  .describe(
    'Makes a repeat the same action, done once. Or send it as the Idempotency-Key header. One of the two is required.',
  );

/** The Idempotency-Key header, described in the OpenAPI document. */
const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(REQUEST_ID, 'must be 1 to 64 letters, digits and dashes')
    .optional()
    .describe('The request id, instead of body.requestId: a repeat is the same action, done once.'),
});

/** The request id from the body or the Idempotency-Key header (VALIDATION_FAILED without one). */
function requestIdOf(
  body: { requestId?: string | undefined },
  header: (name: string) => string | undefined,
): string {
  const fromHeader = header('idempotency-key')?.trim() || undefined;
  if (fromHeader !== undefined && !REQUEST_ID.test(fromHeader)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'Idempotency-Key: must be 1 to 64 letters, digits and dashes.',
      { details: { field: 'Idempotency-Key' } },
    );
  }
  if (fromHeader !== undefined && body.requestId !== undefined && fromHeader !== body.requestId) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'body.requestId and the Idempotency-Key header differ: send one, or the same value in both.',
      { details: { field: 'requestId' } },
    );
  }
  const requestId = body.requestId ?? fromHeader;
  if (requestId === undefined) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'body.requestId: send a request id (or an Idempotency-Key header), so a retry is not done twice.',
      { details: { field: 'requestId' } },
    );
  }
  return requestId;
}

function reusedKey(requestId: string): DomainError {
  return new DomainError(
    'CONFLICT',
    `The request id "${requestId}" was used for a different action; use a new one for a new action.`,
    { details: { reason: 'IDEMPOTENCY_KEY_REUSED', requestId } },
  );
}

/**
 * Refuses a request id this admin already used for another action. core/admin
 * keys its audit entry by admin and request id (context.ts `entry` keys), so
 * the earlier entry under `key` says what that id was used for.
 */
async function refuseReusedRequestId(
  key: string,
  requestId: string,
  targetId: string,
  facts: Record<string, unknown>,
): Promise<void> {
  const earlier = await findAuditByKey(key);
  if (!earlier) return;
  const { details } = earlier;
  const same =
    earlier.target.id === targetId &&
    Object.entries(facts).every(([name, value]) => isDeepStrictEqual(details[name], value));
  if (!same) throw reusedKey(requestId);
}

// --- shared schemas -----------------------------------------------------------------------

const accountIdParams = z.object({ id: objectId.describe('The account id.') });
const referenceParams = z.object({
  reference: z.string().min(1).max(100).describe('The payment reference.'),
});
const locationCode = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9]{1,15}$/,
    'must be 2 to 16 letters and digits, starting with a letter',
  )
  .describe('The location code, e.g. ng.');
const exitIdField = z
  .string()
  .regex(/^[A-Za-z0-9_.:]{1,64}$/, 'must be 1 to 64 letters, digits, `_`, `.` or `:`');
const reasonField = z.string().trim().max(500).optional();

const identity = z.object({ channel: z.enum(channels), externalId: z.string() });

const accountSummary = z.object({
  id: z.string(),
  email: z.string().nullable(),
  status: z.enum(accountStatuses),
  roles: z.array(z.string()).describe('customer, admin'),
  identities: z.array(identity),
  createdAt: z.date(),
});

const moneyAmounts = z
  .partialRecord(z.enum(CURRENCIES), z.number().int())
  .describe('Per currency, in minor units.');
const moneyWindow = z.object({ inMinor: moneyAmounts, refundedMinor: moneyAmounts });

const paymentLine = z.object({
  reference: z.string(),
  purpose: z.enum(paymentPurposes),
  planCode: z.string().nullable(),
  amountMinor: z.number().int(),
  refundedMinor: z.number().int(),
  currency,
  status: z.enum(paymentStatuses),
  needsReview: z.boolean(),
  at: z.date().describe('When it was paid, else when it was opened.'),
});

const adminPaymentLine = paymentLine.extend({
  accountId: z.string(),
  email: z.string(),
  flagReason: z.string().nullable(),
});

const quotaPeriod = z.object({
  periodStart: z.date(),
  periodEnd: z.date(),
  limitBytes: z.number().int(),
  addedBytes: z.number().int(),
  usedBytes: z.number().int(),
  remainingBytes: z.number().int(),
});

const upstreamView = z.object({
  exitId: z.string(),
  kind: z.enum(exitKinds),
  host: z.string().nullable(),
  port: z.number().int().nullable(),
  username: z.string().nullable(),
  hasPassword: z.boolean().describe('Passwords are never returned.'),
  healthy: z.boolean(),
  failures: z.number().int(),
  lastError: z.string().nullable(),
  retryAfter: z.date().nullable().describe('While unhealthy: when gateways try it again.'),
});

const locationView = z.object({
  code: z.string(),
  countryCode: z.string(),
  city: z.string().nullable(),
  label: z.string(),
  upstreams: z.array(upstreamView),
  updatedAt: z.date(),
});

function locationOut(location: AdminLocationView): z.input<typeof locationView> {
  return {
    code: location.code,
    countryCode: location.countryCode,
    city: location.city ?? null,
    label: location.label,
    upstreams: location.exits.map((exit) => ({
      exitId: exit.exitId,
      kind: exit.kind,
      host: exit.host ?? null,
      port: exit.port ?? null,
      username: exit.username ?? null,
      hasPassword: exit.hasPassword,
      healthy: exit.healthy,
      failures: exit.failures,
      lastError: exit.lastError ?? null,
      retryAfter: exit.retryAfter ?? null,
    })),
    updatedAt: location.updatedAt,
  };
}

const adminPlan = z.object({
  code: z.string(),
  name: z.string(),
  description: z.string(),
  kind: z.enum(['trial', 'recurring', 'payg']),
  isOnSale: z.boolean(),
  version: z.number().int().describe('Send it back as expectedVersion when editing.'),
  prices: z.array(z.object({ currency, amountMinor: z.number().int() })),
  billingPeriod: z
    .object({ unit: z.enum(['day', 'week', 'month']), count: z.number().int() })
    .nullable(),
  quota: z
    .object({
      bytes: z.number().int(),
      period: z.enum(['week', 'month', 'trial']),
      pooled: z.boolean(),
    })
    .nullable(),
  paygRates: z.array(
    z.object({
      currency,
      hourlyRateMinor: z.number().int(),
      perGbRateMinor: z.number().int().nullable(),
    }),
  ),
  protocols: z.array(z.enum(['http', 'https', 'socks5'])),
  maxConnections: z.number().int(),
  seats: z.number().int(),
  editedBy: z.string(),
  updatedAt: z.date(),
});

function planOut(plan: PlanRecord): z.input<typeof adminPlan> {
  return {
    code: plan.code,
    name: plan.name,
    description: plan.description,
    kind: plan.kind,
    isOnSale: plan.isOnSale,
    version: plan.version,
    prices: plan.prices.map(({ currency: c, amountMinor }) => ({ currency: c, amountMinor })),
    billingPeriod: plan.billingPeriod
      ? { unit: plan.billingPeriod.unit, count: plan.billingPeriod.count }
      : null,
    quota: plan.quota
      ? { bytes: plan.quota.bytes, period: plan.quota.period, pooled: plan.quota.pooled }
      : null,
    paygRates: (plan.payg?.rates ?? []).map((rate) => ({
      currency: rate.currency,
      hourlyRateMinor: rate.hourlyRateMinor,
      perGbRateMinor: rate.perGbRateMinor ?? null,
    })),
    protocols: [...plan.protocols],
    maxConnections: plan.maxConnections,
    seats: plan.seats ?? 1,
    editedBy: plan.editedBy,
    updatedAt: plan.updatedAt,
  };
}

const settingsView = businessSettingsSchema.extend({
  version: z.number().int(),
  updatedAt: z.date().nullable(),
  updatedBy: z.string().nullable(),
});

function settingsOut(settings: Settings): z.input<typeof settingsView> {
  return {
    ...settings,
    updatedAt: settings.updatedAt ?? null,
    updatedBy: settings.updatedBy ?? null,
  };
}

const settingsChanges = businessSettingsSchema
  .extend({
    vat: businessSettingsSchema.shape.vat.partial(),
    business: businessSettingsSchema.shape.business.partial(),
  })
  .partial()
  .refine((changes) => Object.keys(changes).length > 0, 'name at least one setting to change');

const auditView = z.object({
  id: z.string(),
  actor: z.string().describe("An admin's account id, or 'system'."),
  channel: z.enum(auditChannels),
  action: z.string(),
  target: z.object({ kind: z.string(), id: z.string() }),
  details: z.record(z.string(), z.unknown()),
  at: z.date(),
});

const changedOutcome = z.object({
  accountId: z.string(),
  changed: z.boolean().describe('false when it was so already (nothing done).'),
});

const segmentField = z
  .string()
  .min(1)
  .max(50)
  .describe('all, payg, past_due or plan:<code> (e.g. plan:starter).');

// --- routes -------------------------------------------------------------------------------

/** POST /admin/users/:id/suspend and /unsuspend: the same shape, one core call each. */
function suspensionRoute(
  action: 'suspend' | 'unsuspend',
  summary: string,
  description: string,
): AnyRoute {
  return jsonRoute({
    operationId: action === 'suspend' ? 'adminSuspendUser' : 'adminUnsuspendUser',
    method: 'post',
    path: `/admin/users/:id/${action}`,
    tag: TAG,
    summary,
    description,
    access: 'admin',
    params: accountIdParams,
    body: z.object({ reason: reasonField }),
    response: z.object({
      accountId: z.string(),
      status: z.enum(['active', 'suspended']),
      changed: z.boolean(),
    }),
    async handler({ params, body, caller, deps }) {
      const change = action === 'suspend' ? suspendAccount : unsuspendAccount;
      return change(adminCtx(caller, deps), {
        user: params.id,
        ...(body.reason ? { reason: body.reason } : {}),
      });
    },
  });
}

export const adminRoutes: AnyRoute[] = [
  // /user and /stats
  jsonRoute({
    operationId: 'adminFindUser',
    method: 'get',
    path: '/admin/users',
    tag: TAG,
    summary: 'Find a customer',
    description:
      'The account a query names: an email, an account id, a phone number or Telegram id, or tg:<id> / wa:<number>. 404 when nobody matches. Recorded as user.looked_up.',
    access: 'admin',
    query: z.object({ query: z.string().trim().min(1).max(200) }),
    response: z.object({ user: accountSummary }),
    async handler({ query, caller, deps }) {
      return { user: await lookupAccount(adminCtx(caller, deps), query.query) };
    },
  }),
  jsonRoute({
    operationId: 'adminGetUser',
    method: 'get',
    path: '/admin/users/:id',
    tag: TAG,
    summary: "A customer's report",
    description:
      'What /user shows: the account and its chats, flags, plan, data this period, wallet, proxy username, open tunnels and latest payments. Recorded as user.viewed.',
    access: 'admin',
    params: accountIdParams,
    response: z.object({
      account: accountSummary,
      flags: z.array(z.object({ kind: z.string(), reason: z.string(), at: z.date() })),
      subscription: z
        .object({
          planCode: z.string(),
          status: z.enum(subscriptionStatuses),
          periodEnd: z.date().nullable(),
          trialEndsAt: z.date().nullable(),
          graceEndsAt: z.date().nullable(),
          cancelAtPeriodEnd: z.boolean(),
        })
        .nullable(),
      teamOwnerId: z.string().nullable().describe('Set when the account is a seat on a team.'),
      usage: z
        .object({ usedBytes: z.number().int(), limitBytes: z.number().int(), periodEnd: z.date() })
        .nullable(),
      wallet: z.object({ balanceMinor: z.number().int(), currency }).nullable(),
      proxyUsername: z.string().nullable(),
      openTunnels: z.number().int(),
      payments: z.array(paymentLine),
      notifications: z
        .array(
          z.object({
            event: z.string(),
            at: z.date(),
            deliveries: z.array(
              z.object({
                channel: z.string(),
                status: z.string(),
                attempts: z.number().int(),
                sentAt: z.date().nullable(),
                lastError: z.string().nullable(),
              }),
            ),
          }),
        )
        .describe('What the customer was told lately, newest first, per channel.'),
    }),
    async handler({ params, caller, deps }) {
      return findUser(adminCtx(caller, deps), params.id);
    },
  }),
  jsonRoute({
    operationId: 'adminGetStats',
    method: 'get',
    path: '/admin/stats',
    tag: TAG,
    summary: 'The business at a glance',
    description:
      'Customers, live subscriptions per plan, money in and refunded (today, 7 and 30 days), open tunnels and bytes relayed today. Recorded as stats.viewed.',
    access: 'admin',
    response: z.object({
      at: z.date(),
      customers: z.object({
        total: z.number().int(),
        signedUp: z.number().int(),
        suspended: z.number().int(),
      }),
      subscriptions: z.array(
        z.object({ planCode: z.string(), live: z.number().int(), pastDue: z.number().int() }),
      ),
      revenue: z.object({ today: moneyWindow, days7: moneyWindow, days30: moneyWindow }),
      tunnels: z.object({ open: z.number().int(), accounts: z.number().int() }),
      bytesToday: z.number().int(),
    }),
    async handler({ caller, deps }) {
      const stats = await getStats(adminCtx(caller, deps));
      const window = (w: MoneyWindow) => ({
        inMinor: w.inMinor as Record<Currency, number>,
        refundedMinor: w.refundedMinor as Record<Currency, number>,
      });
      return {
        ...stats,
        revenue: {
          today: window(stats.revenue.today),
          days7: window(stats.revenue.days7),
          days30: window(stats.revenue.days30),
        },
      };
    },
  }),

  // /grant /suspend /unsuspend
  jsonRoute({
    operationId: 'adminGrantData',
    method: 'post',
    path: '/admin/users/:id/grant-data',
    tag: TAG,
    summary: 'Give a customer extra data',
    description:
      'Adds bytes (GB = 10^9 bytes) to the current quota window of the customer (a team seat: give it to the owner). Once per request id. Recorded as grant.data.',
    access: 'admin',
    headers: idempotencyHeaders,
    params: accountIdParams,
    body: z.object({
      bytes: z.number().int().min(1).max(MAX_GRANT_BYTES),
      reason: reasonField,
      requestId: requestIdField,
    }),
    response: z.object({ accountId: z.string(), bytes: z.number().int(), period: quotaPeriod }),
    async handler({ params, body, caller, deps, header }) {
      const requestId = requestIdOf(body, header);
      await refuseReusedRequestId(
        `grant.data:${caller.accountId}:${requestId}`,
        requestId,
        params.id.toLowerCase(),
        { bytes: body.bytes },
      );
      return grantData(adminCtx(caller, deps), {
        user: params.id,
        bytes: body.bytes,
        requestId,
        ...(body.reason ? { reason: body.reason } : {}),
      });
    },
  }),
  jsonRoute({
    operationId: 'adminExtendPlan',
    method: 'post',
    path: '/admin/users/:id/extend',
    tag: TAG,
    summary: "Add days to a customer's plan",
    description:
      'Moves the date that ends access: the paid period, the trial or the grace period (pay as you go has none). Once per request id (a repeat answers changed: false). Recorded as grant.days.',
    access: 'admin',
    headers: idempotencyHeaders,
    params: accountIdParams,
    body: z.object({
      days: z.number().int().min(1).max(MAX_EXTEND_DAYS),
      reason: reasonField,
      requestId: requestIdField,
    }),
    response: z.object({
      accountId: z.string(),
      planCode: z.string(),
      field: z.enum(['periodEnd', 'trialEndsAt', 'graceEndsAt']),
      from: z.date(),
      to: z.date(),
      changed: z.boolean(),
    }),
    async handler({ params, body, caller, deps, header }) {
      const requestId = requestIdOf(body, header);
      await refuseReusedRequestId(
        `grant.days:${caller.accountId}:${requestId}`,
        requestId,
        params.id.toLowerCase(),
        { days: body.days },
      );
      return extendPlan(adminCtx(caller, deps), {
        user: params.id,
        days: body.days,
        requestId,
        ...(body.reason ? { reason: body.reason } : {}),
      });
    },
  }),
  suspensionRoute(
    'suspend',
    'Suspend a customer',
    "Switches the account's service off everywhere (live tunnels are cut within seconds) and holds renewals; plan, wallet and data are kept. Recorded as account.suspended.",
  ),
  suspensionRoute(
    'unsuspend',
    'Give a suspended customer their service back',
    'A paid period that ran out meanwhile restarts now (the suspended time is not billed). Recorded as account.unsuspended.',
  ),

  // /payments /refund
  jsonRoute({
    operationId: 'adminListPayments',
    method: 'get',
    path: '/admin/payments',
    tag: TAG,
    summary: 'The latest payments',
    description:
      'Newest first: all (recent), failed (failed or abandoned), or flagged (did not match, or waiting for a decision). Recorded as payments.viewed.',
    access: 'admin',
    query: z.object({
      filter: z.enum(paymentFilters).default('recent'),
      limit: z.coerce.number().int().min(1).max(50).default(10),
    }),
    response: z.object({ payments: z.array(adminPaymentLine) }),
    async handler({ query, caller, deps }) {
      const payments: AdminPaymentLine[] = await listPayments(adminCtx(caller, deps), {
        filter: query.filter,
        limit: query.limit,
      });
      return { payments };
    },
  }),
  jsonRoute({
    operationId: 'adminGetPayment',
    method: 'get',
    path: '/admin/payments/:reference',
    tag: TAG,
    summary: 'One payment, with what is left to refund',
    description: 'Recorded as payment.viewed.',
    access: 'admin',
    params: referenceParams,
    response: adminPaymentLine.extend({ refundableMinor: z.number().int() }),
    async handler({ params, caller, deps }) {
      return describePayment(adminCtx(caller, deps), params.reference);
    },
  }),
  jsonRoute({
    operationId: 'adminRefundPayment',
    method: 'post',
    path: '/admin/payments/:reference/refund',
    tag: TAG,
    summary: 'Refund (part of) a payment',
    description:
      "To the card (through Paystack) or into the customer's wallet; by default everything still refundable. Once per request id. 409 with details.reason EXCEEDS_REFUNDABLE, ALREADY_SPENT, NOTHING_LEFT or NOT_PAID when it cannot be done. Recorded as refund.requested (refund.requested.failed when refused).",
    access: 'admin',
    headers: idempotencyHeaders,
    status: 202,
    params: referenceParams,
    body: z.object({
      amountMinor: z.number().int().min(1).optional().describe('Default: all that is left.'),
      method: z.enum(refundMethods).default('card'),
      reason: z.string().trim().min(1).max(500).default('Refunded by an admin'),
      endPlan: z.boolean().default(false).describe('Also stop, now, the plan this payment bought.'),
      requestId: requestIdField,
    }),
    response: z.object({
      refundId: z.string().nullable(),
      state: z.enum([
        'requested',
        'pending',
        'processing',
        'processed',
        'failed',
        'needs-attention',
        'retry_later',
      ]),
      method: z.enum(refundMethods),
      amountMinor: z.number().int(),
      currency,
      reason: z.string().optional().describe('Why it failed or waits, when it did.'),
      creditNoteNumber: z.string().optional(),
    }),
    async handler({ params, body, caller, deps, header }) {
      const requestId = requestIdOf(body, header);
      const earlier = await getRefundByKey(`admin:${caller.accountId}:${requestId}`);
      if (
        earlier &&
        (earlier.paymentReference !== params.reference.trim() ||
          earlier.method !== body.method ||
          (body.amountMinor !== undefined && earlier.amountMinor !== body.amountMinor))
      ) {
        throw reusedKey(requestId);
      }
      const outcome = await refundPayment(adminCtx(caller, deps), deps.payments, {
        paymentReference: params.reference,
        method: body.method,
        reason: body.reason,
        requestId,
        endPlan: body.endPlan,
        ...(body.amountMinor === undefined ? {} : { amountMinor: body.amountMinor }),
      });
      if (outcome.state === 'refused') {
        // core throws refusals; kept here so a change there cannot answer 202 for one.
        throw new DomainError('CONFLICT', outcome.reason, {
          details: { reason: outcome.refusal },
        });
      }
      return outcome;
    },
  }),

  // /locations /upstreams
  jsonRoute({
    operationId: 'adminListLocations',
    method: 'get',
    path: '/admin/locations',
    tag: TAG,
    summary: 'Locations with their upstreams and health',
    description: 'Upstream passwords are never shown. Recorded as locations.viewed.',
    access: 'admin',
    response: z.object({ locations: z.array(locationView) }),
    async handler({ caller, deps }) {
      const locations = await listLocationsForAdmin(adminCtx(caller, deps));
      return { locations: locations.map(locationOut) };
    },
  }),
  jsonRoute({
    operationId: 'adminAddLocation',
    method: 'post',
    path: '/admin/locations',
    tag: TAG,
    summary: 'Add a location',
    description:
      'With an empty pool: add upstreams next. The code defaults to the country code; 409 when it exists. Recorded as location.added.',
    access: 'admin',
    status: 201,
    body: z.object({
      code: locationCode.optional(),
      countryCode: z.string().regex(/^[A-Za-z]{2}$/, 'must be two letters'),
      city: z.string().trim().max(100).optional(),
      label: z.string().trim().min(1).max(100),
    }),
    response: locationView,
    async handler({ body, caller, deps }) {
      const location = await addLocationAsAdmin(adminCtx(caller, deps), {
        countryCode: body.countryCode,
        label: body.label,
        ...(body.code === undefined ? {} : { code: body.code }),
        ...(body.city ? { city: body.city } : {}),
      });
      return locationOut(location);
    },
  }),
  emptyRoute({
    operationId: 'adminRemoveLocation',
    method: 'delete',
    path: '/admin/locations/:code',
    tag: TAG,
    summary: 'Remove a location',
    description:
      'Customers who name it are told it is unknown from then on. Recorded as location.removed.',
    access: 'admin',
    status: 204,
    params: z.object({ code: locationCode }),
    async handler({ params, caller, deps }) {
      await removeLocationAsAdmin(adminCtx(caller, deps), params.code);
    },
  }),
  jsonRoute({
    operationId: 'adminAddUpstream',
    method: 'post',
    path: '/admin/locations/:code/upstreams',
    tag: TAG,
    summary: "Add an upstream to a location's pool",
    description:
      'direct (this gateway dials), or a socks5/http upstream proxy with host, port and optional credentials (the password is stored, never shown nor recorded). Recorded as upstream.added.',
    access: 'admin',
    status: 201,
    params: z.object({ code: locationCode }),
    body: z.object({
      exitId: exitIdField,
      kind: z.enum(exitKinds),
      host: z.string().trim().min(1).max(253).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
      username: z.string().max(255).optional(),
      password: z.string().max(255).optional(),
    }),
    response: locationView,
    async handler({ params, body, caller, deps }) {
      const { exitId, kind, host, port, username, password } = body;
      const location = await addUpstream(adminCtx(caller, deps), params.code, {
        exitId,
        kind,
        ...(host === undefined ? {} : { host }),
        ...(port === undefined ? {} : { port }),
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
      });
      return locationOut(location);
    },
  }),
  jsonRoute({
    operationId: 'adminRemoveUpstream',
    method: 'delete',
    path: '/admin/locations/:code/upstreams/:exitId',
    tag: TAG,
    summary: "Remove an upstream from a location's pool",
    description: 'Answers the location as it is now. Recorded as upstream.removed.',
    access: 'admin',
    params: z.object({ code: locationCode, exitId: exitIdField }),
    response: locationView,
    async handler({ params, caller, deps }) {
      return locationOut(await removeUpstream(adminCtx(caller, deps), params.code, params.exitId));
    },
  }),
  emptyRoute({
    operationId: 'adminMarkUpstreamHealthy',
    method: 'post',
    path: '/admin/locations/:code/upstreams/:exitId/healthy',
    tag: TAG,
    summary: 'Mark an upstream healthy again',
    description:
      'After fixing it: gateways use it again at once instead of waiting for its retry time. Recorded as upstream.marked_healthy.',
    access: 'admin',
    status: 204,
    params: z.object({ code: locationCode, exitId: exitIdField }),
    async handler({ params, caller, deps }) {
      await markUpstreamHealthy(adminCtx(caller, deps), params.code, params.exitId);
    },
  }),

  // /plans
  jsonRoute({
    operationId: 'adminListPlans',
    method: 'get',
    path: '/admin/plans',
    tag: TAG,
    summary: 'Every plan, on sale or not, with its version',
    description: 'Recorded as plans.viewed.',
    access: 'admin',
    response: z.object({ plans: z.array(adminPlan) }),
    async handler({ caller, deps }) {
      const plans = await listPlansForAdmin(adminCtx(caller, deps));
      return { plans: plans.map(planOut) };
    },
  }),
  jsonRoute({
    operationId: 'adminEditPlan',
    method: 'patch',
    path: '/admin/plans/:code',
    tag: TAG,
    summary: "Change a plan's price or data quota",
    description:
      'For new subscriptions (running ones keep what they bought until they renew). price: the price per billing period in one currency (the hourly rate for pay as you go); quota: bytes per quota period. With expectedVersion, a plan changed since is 409. Recorded as plan.edited.',
    access: 'admin',
    params: z.object({ code: z.string().min(1).max(40) }),
    body: z.discriminatedUnion('field', [
      z.object({
        field: z.literal('price'),
        amountMinor: z.number().int().min(0),
        currency,
        expectedVersion: z.number().int().min(1).optional(),
      }),
      z.object({
        field: z.literal('quota'),
        bytes: z.number().int().min(1),
        expectedVersion: z.number().int().min(1).optional(),
      }),
    ]),
    response: adminPlan,
    async handler({ params, body, caller, deps }) {
      const plan = await editPlan(adminCtx(caller, deps), {
        code: params.code,
        edit:
          body.field === 'price'
            ? { field: 'price', amountMinor: body.amountMinor, currency: body.currency }
            : { field: 'quota', bytes: body.bytes },
        ...(body.expectedVersion === undefined ? {} : { expectedVersion: body.expectedVersion }),
      });
      return planOut(plan);
    },
  }),

  // /settings
  jsonRoute({
    operationId: 'adminGetSettings',
    method: 'get',
    path: '/admin/settings',
    tag: TAG,
    summary: 'Business settings',
    description: 'Amounts in minor units of `currency`. Recorded as settings.viewed.',
    access: 'admin',
    response: settingsView,
    async handler({ caller, deps }) {
      return settingsOut(await getSettingsForAdmin(adminCtx(caller, deps), deps.settings));
    },
  }),
  jsonRoute({
    operationId: 'adminUpdateSettings',
    method: 'patch',
    path: '/admin/settings',
    tag: TAG,
    summary: 'Change business settings',
    description:
      'Only the settings named change (vat and business may be given in part); the whole set is checked before anything is saved. Recorded as settings.changed with the old values.',
    access: 'admin',
    body: settingsChanges,
    response: settingsView,
    async handler({ body, caller, deps }) {
      return settingsOut(await updateSettingsAsAdmin(adminCtx(caller, deps), deps.settings, body));
    },
  }),

  // /broadcast
  jsonRoute({
    operationId: 'adminCountBroadcast',
    method: 'post',
    path: '/admin/broadcast/count',
    tag: TAG,
    summary: 'How many customers a broadcast would reach',
    description:
      'Suspended and deleted accounts are not counted. Recorded as broadcast.counted. 404 for a plan that does not exist.',
    access: 'admin',
    body: z.object({ segment: segmentField }),
    response: z.object({ segment: z.string(), recipients: z.number().int() }),
    async handler({ body, caller, deps }) {
      const segment = await parseSegment(body.segment);
      return countBroadcast(adminCtx(caller, deps), segment);
    },
  }),
  jsonRoute({
    operationId: 'adminSendBroadcast',
    method: 'post',
    path: '/admin/broadcast',
    tag: TAG,
    summary: 'Send a message to many customers',
    description:
      'Queued for each customer of the segment on their own channels (those who muted broadcasts are skipped). Once per request id; one broadcast per admin every 10 minutes, 5 a day (429). Recorded as broadcast.sent.',
    access: 'admin',
    headers: idempotencyHeaders,
    status: 202,
    body: z.object({
      segment: segmentField,
      text: z.string().trim().min(1).max(MAX_BROADCAST_LENGTH),
      requestId: requestIdField,
    }),
    response: z.object({
      broadcastId: z.string(),
      recipients: z.number().int(),
      queued: z.number().int().describe('Messages queued by this call (fewer on a repeat).'),
    }),
    async handler({ body, caller, deps, header }) {
      const requestId = requestIdOf(body, header);
      const segment = await parseSegment(body.segment);
      await refuseReusedRequestId(
        `broadcast.sent:${caller.accountId}:${requestId}`,
        requestId,
        requestId,
        { segment, text: body.text },
      );
      return sendBroadcast(adminCtx(caller, deps), { segment, text: body.text, requestId });
    },
  }),

  // /admins
  jsonRoute({
    operationId: 'adminListAdmins',
    method: 'get',
    path: '/admin/admins',
    tag: TAG,
    summary: 'Who the admins are',
    description:
      'Admins named in configuration (by chat identity, even before they first wrote) and accounts holding the admin role. Recorded as admins.viewed.',
    access: 'admin',
    response: z.object({
      admins: z.array(
        z.object({
          accountId: z.string().nullable(),
          email: z.string().nullable(),
          identities: z.array(identity),
          configured: z.boolean().describe('Named in configuration: removable only there.'),
          status: z.enum(accountStatuses).nullable(),
        }),
      ),
    }),
    async handler({ caller, deps }) {
      return { admins: await listAdmins(adminCtx(caller, deps)) };
    },
  }),
  jsonRoute({
    operationId: 'adminAddAdmin',
    method: 'post',
    path: '/admin/admins',
    tag: TAG,
    summary: 'Make an account an admin',
    description: 'Name it by accountId or email. Recorded as admin.added.',
    access: 'admin',
    body: z
      .object({ accountId: objectId.optional(), email: z.email().optional() })
      .refine(
        (body) => (body.accountId === undefined) !== (body.email === undefined),
        'send either accountId or email',
      ),
    response: changedOutcome,
    async handler({ body, caller, deps }) {
      const user = body.accountId ?? body.email ?? '';
      return addAdmin(adminCtx(caller, deps), { user });
    },
  }),
  jsonRoute({
    operationId: 'adminRemoveAdmin',
    method: 'delete',
    path: '/admin/admins/:accountId',
    tag: TAG,
    summary: 'Take the admin role away',
    description:
      'Refused (409) for yourself and for an admin named in configuration. Recorded as admin.removed.',
    access: 'admin',
    params: z.object({ accountId: objectId }),
    response: changedOutcome,
    async handler({ params, caller, deps }) {
      return removeAdmin(adminCtx(caller, deps), { user: params.accountId });
    },
  }),

  // the audit trail
  jsonRoute({
    operationId: 'adminListAudit',
    method: 'get',
    path: '/admin/audit',
    tag: TAG,
    summary: 'The audit trail',
    description:
      'What admins did (and were refused), newest first, from every channel. Filter by actor, action, target; page with `before` (the `at` of the last entry seen). Reading it is recorded as audit.viewed.',
    access: 'admin',
    query: z.object({
      actor: z
        .union([objectId, z.literal('system')])
        .optional()
        .describe("An admin's account id, or system."),
      action: z.string().min(1).max(100).optional().describe('e.g. grant.data'),
      targetKind: z.string().min(1).max(50).optional().describe('e.g. account, payment'),
      targetId: z.string().min(1).max(200).optional(),
      channel: z.enum(auditChannels).optional(),
      before: z.coerce.date().optional(),
      limit: z.coerce.number().int().min(1).max(200).default(50),
    }),
    response: z.object({ entries: z.array(auditView) }),
    async handler({ query, caller, deps }) {
      const entries = await listAudit({
        ...(query.actor !== undefined ? { actor: query.actor.toLowerCase() } : {}),
        ...(query.action !== undefined ? { action: query.action } : {}),
        ...(query.targetKind !== undefined || query.targetId !== undefined
          ? { target: { kind: query.targetKind, id: query.targetId } }
          : {}),
        ...(query.channel !== undefined ? { channel: query.channel } : {}),
        ...(query.before !== undefined ? { before: query.before } : {}),
        limit: query.limit,
      });
      const ctx = adminCtx(caller, deps);
      await recordAudit(
        {
          actor: ctx.actor.accountId,
          channel: ctx.actor.channel,
          action: 'audit.viewed',
          target: { kind: 'audit', id: '*' },
          details: {
            filter: Object.fromEntries(
              Object.entries({ ...query, before: query.before?.toISOString() }).filter(
                ([, value]) => value !== undefined,
              ),
            ),
          },
        },
        { clock: deps.clock },
      );
      return { entries };
    },
  }),
];
