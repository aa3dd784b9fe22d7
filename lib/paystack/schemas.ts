/**
 * zod schemas for what Paystack sends us: the API envelopes and data of the
 * five endpoints Atlantic calls, the error envelope, and webhook events.
 *
 * Written from Paystack's OpenAPI description (github.com/PaystackOSS/openapi,
 * `dist/paystack.yaml`: TransactionInitializeResponse, VerifyResponse,
 * ChargeAuthorizationResponse, RefundCreateResponse, CustomerCreateResponse,
 * Error / TransactionInitializeBadRequestModel) and the webhook page
 * (https://paystack.com/docs/payments/webhooks/). They are deliberately
 * lenient where Paystack is known to vary (fields the spec calls required
 * but real answers omit or null, `{}` for an absent authorization, refund
 * amounts as strings, metadata as an object, a JSON string or "") and strict
 * where a wrong guess would cost money (status enums, integer amounts):
 * anything unexpected there fails the parse and the client reports "don't
 * know" instead of guessing.
 */
import { z } from 'zod';

import { CHARGE_STATUSES, REFUND_STATUSES, TRANSACTION_STATUSES } from '../payment-provider.js';

const optionalText = z.string().nullish();

/** Minor units; Paystack sends integers, but refund amounts sometimes as digit strings. */
export const paystackAmountSchema = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d+$/, 'an amount in minor units')
    .transform((digits) => Number(digits)),
]);

/** `{ status: true, message, data }`: every successful answer. */
export function paystackEnvelope<T extends z.ZodType>(data: T) {
  return z.object({ status: z.literal(true), message: z.string(), data });
}

/**
 * `{ status: false, message, meta?, type?, code? }`: every refusal (4xx). Only
 * `message` is reliably there (the OpenAPI `Error` and
 * `TransactionInitializeBadRequestModel` schemas; 401 answers are just
 * `{ status: false, message: 'Invalid key' }`).
 */
export const paystackErrorSchema = z.object({
  status: z.literal(false),
  message: z.string(),
  meta: z.object({ nextStep: z.string().optional() }).optional(),
  type: z.string().optional(),
  code: z.string().optional(),
});
export type PaystackError = z.infer<typeof paystackErrorSchema>;

/**
 * A card or bank authorization. For a transaction nobody has paid yet
 * Paystack answers `authorization: {}`, so every field is optional and the
 * client treats "no authorization_code" as no authorization.
 */
export const paystackAuthorizationSchema = z.object({
  authorization_code: z.string().min(1).optional(),
  bin: optionalText,
  last4: optionalText,
  exp_month: optionalText,
  exp_year: optionalText,
  channel: optionalText,
  card_type: optionalText,
  bank: optionalText,
  country_code: optionalText,
  brand: optionalText,
  reusable: z.boolean().optional(),
  signature: optionalText,
  account_name: optionalText,
});
export type PaystackAuthorization = z.infer<typeof paystackAuthorizationSchema>;

export const paystackCustomerSchema = z.object({
  id: z.number().int(),
  first_name: optionalText,
  last_name: optionalText,
  email: z.string(),
  customer_code: z.string(),
  phone: optionalText,
  metadata: z.unknown().optional(),
  risk_action: z.string().optional(),
  international_format_phone: optionalText,
});

/** The transaction object of verify, charge_authorization and `charge.success`. */
const transactionFields = {
  id: z.number().int(),
  domain: z.string().optional(),
  reference: z.string(),
  amount: z.number().int().nonnegative(),
  message: optionalText,
  gateway_response: optionalText,
  paid_at: optionalText,
  paidAt: optionalText,
  created_at: optionalText,
  createdAt: optionalText,
  channel: optionalText,
  currency: z.string(),
  ip_address: optionalText,
  /** An object, a JSON string, "" or null, depending on how it was sent. */
  metadata: z.unknown().optional(),
  fees: z.number().nullish(),
  authorization: paystackAuthorizationSchema.nullish(),
  customer: paystackCustomerSchema,
  plan: z.unknown().optional(),
  requested_amount: z.number().int().optional(),
};

export const paystackTransactionSchema = z.object({
  ...transactionFields,
  status: z.enum(TRANSACTION_STATUSES),
});
export type PaystackTransaction = z.infer<typeof paystackTransactionSchema>;

/**
 * charge_authorization answers with the transaction it created; its status
 * may be a step the customer has to take (`send_otp`, `open_url`, ...), and a
 * charge waiting for the customer's approval is `paused` with an
 * `authorization_url` (https://paystack.com/docs/payments/recurring-charges/).
 */
export const paystackChargeSchema = z.object({
  ...transactionFields,
  status: z.enum(CHARGE_STATUSES),
  paused: z.boolean().optional(),
  authorization_url: optionalText,
  url: optionalText,
});
export type PaystackCharge = z.infer<typeof paystackChargeSchema>;

export const paystackInitializeDataSchema = z.object({
  authorization_url: z.url(),
  access_code: z.string().min(1),
  reference: z.string().min(1),
});

export const paystackRefundDataSchema = z.object({
  id: z.number().int(),
  transaction: z.object({
    id: z.number().int(),
    reference: z.string(),
    amount: z.number().int().optional(),
    currency: z.string().optional(),
  }),
  amount: paystackAmountSchema,
  currency: z.string(),
  status: z.enum(REFUND_STATUSES),
  deducted_amount: paystackAmountSchema.nullish(),
  fully_deducted: z.union([z.boolean(), z.number()]).nullish(),
  merchant_note: optionalText,
  customer_note: optionalText,
  refunded_by: optionalText,
  expected_at: optionalText,
  domain: z.string().optional(),
  createdAt: optionalText,
  updatedAt: optionalText,
});
export type PaystackRefund = z.infer<typeof paystackRefundDataSchema>;

export const paystackCustomerDataSchema = z.object({
  id: z.number().int(),
  email: z.string(),
  customer_code: z.string().min(1),
  first_name: optionalText,
  last_name: optionalText,
  phone: optionalText,
  metadata: z.unknown().optional(),
  integration: z.number().int().optional(),
  domain: z.string().optional(),
  risk_action: z.string().optional(),
  identified: z.boolean().optional(),
  createdAt: optionalText,
  updatedAt: optionalText,
});

export const paystackInitializeResponseSchema = paystackEnvelope(paystackInitializeDataSchema);
export const paystackVerifyResponseSchema = paystackEnvelope(paystackTransactionSchema);
export const paystackChargeResponseSchema = paystackEnvelope(paystackChargeSchema);
export const paystackRefundResponseSchema = paystackEnvelope(paystackRefundDataSchema);
/** `GET /refund` answers a list (with paging `meta`, unused here). */
export const paystackRefundListResponseSchema = paystackEnvelope(z.array(paystackRefundDataSchema));
export const paystackCustomerResponseSchema = paystackEnvelope(paystackCustomerDataSchema);

// ---------------------------------------------------------------------------
// Webhooks (https://paystack.com/docs/payments/webhooks/#types-of-events)

/** Every webhook body: `{ event, data }`; `data` mirrors the REST object of the event. */
export const paystackWebhookEnvelopeSchema = z.object({
  event: z.string().min(1),
  data: z.record(z.string(), z.unknown()),
});
export type PaystackWebhookEnvelope = z.infer<typeof paystackWebhookEnvelopeSchema>;

/** `charge.success`: the transaction, with `metadata`, `customer` and `authorization`. */
export const paystackChargeSuccessDataSchema = z.object({
  ...transactionFields,
  status: z.literal('success'),
});
export type PaystackChargeSuccessData = z.infer<typeof paystackChargeSuccessDataSchema>;

export const PAYSTACK_REFUND_EVENTS = [
  'refund.pending',
  'refund.processing',
  'refund.processed',
  'refund.failed',
] as const;
export type PaystackRefundEvent = (typeof PAYSTACK_REFUND_EVENTS)[number];

/**
 * `refund.*`: a flatter object than the REST refund, keyed by the
 * transaction's reference; `amount` often arrives as a string.
 */
export const paystackRefundEventDataSchema = z.object({
  status: z.enum(REFUND_STATUSES),
  transaction_reference: z.string().min(1),
  refund_reference: optionalText,
  amount: paystackAmountSchema,
  currency: z.string(),
  processor: optionalText,
  customer: z
    .object({ first_name: optionalText, last_name: optionalText, email: optionalText })
    .optional(),
  integration: z.number().int().optional(),
  domain: z.string().optional(),
  /** Not in every refund event, and a string in some. */
  id: z.union([z.number().int(), z.string()]).optional(),
});
export type PaystackRefundEventData = z.infer<typeof paystackRefundEventDataSchema>;

export type ParsedPaystackEvent =
  | { kind: 'charge.success'; event: 'charge.success'; data: PaystackChargeSuccessData }
  | { kind: 'refund'; event: PaystackRefundEvent; data: PaystackRefundEventData }
  | { kind: 'other'; event: string; data: Record<string, unknown> };

const refundEventSet: ReadonlySet<string> = new Set(PAYSTACK_REFUND_EVENTS);

/**
 * Reads a webhook body already checked for its signature. Events Atlantic
 * acts on are parsed strictly (a malformed `charge.success` throws a ZodError);
 * any other event (disputes, `subscription.*`, `invoice.*`, unknown ones) is
 * returned as `kind: 'other'` to be stored and acknowledged.
 */
export function parsePaystackEvent(body: unknown): ParsedPaystackEvent {
  const envelope = paystackWebhookEnvelopeSchema.parse(body);
  if (envelope.event === 'charge.success') {
    return {
      kind: 'charge.success',
      event: 'charge.success',
      data: paystackChargeSuccessDataSchema.parse(envelope.data),
    };
  }
  if (refundEventSet.has(envelope.event)) {
    return {
      kind: 'refund',
      event: envelope.event as PaystackRefundEvent,
      data: paystackRefundEventDataSchema.parse(envelope.data),
    };
  }
  return { kind: 'other', event: envelope.event, data: envelope.data };
}

/**
 * Paystack echoes metadata the way it was stored: an object, a JSON string
 * (the spec types charge_authorization metadata as a string), "" or null.
 * Returns the object, or null when there is none.
 */
export function decodePaystackMetadata(value: unknown): Record<string, unknown> | null {
  let decoded = value;
  if (typeof value === 'string') {
    if (value.trim() === '') return null;
    try {
      decoded = JSON.parse(value) as unknown;
    } catch {
      return null;
    }
  }
  if (typeof decoded === 'object' && decoded !== null && !Array.isArray(decoded)) {
    return decoded as Record<string, unknown>;
  }
  return null;
}
