/**
 * A thin typed Paystack client over the global `fetch`.
 *
 * Flow of every call: JSON request with `Authorization: Bearer <secret key>`
 * and a deadline (`AbortSignal.timeout`, covering the body too) -> a 2xx body
 * is parsed with the zod schemas of `schemas.ts` and mapped to the
 * `PaymentProvider` types -> anything else becomes a `DomainError` that
 * tells "refused, nothing happened" (`PAYMENT_REJECTED`, Paystack's message
 * kept) from "we don't know" (`UPSTREAM_FAILED`); see `payment-provider.ts`.
 *
 * The secret key, authorization codes and card details are never logged.
 */
import type { z } from 'zod';

import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  ChargeResult,
  PaymentProvider,
  PaymentRejectedDetails,
  RefundResult,
  SavedAuthorization,
  UpstreamFailureDetails,
  VerifiedTransaction,
} from '../payment-provider.js';
import { isActionRequired } from '../payment-provider.js';
import {
  decodePaystackMetadata,
  paystackChargeResponseSchema,
  paystackCustomerResponseSchema,
  paystackErrorSchema,
  paystackInitializeResponseSchema,
  paystackRefundListResponseSchema,
  paystackRefundResponseSchema,
  paystackVerifyResponseSchema,
} from './schemas.js';
import type { PaystackAuthorization, PaystackTransaction } from './schemas.js';

export interface PaystackClientOptions {
  /** The integration's secret key (`sk_live_…` / `sk_test_…`). */
  secretKey: string;
  /** API root without a trailing slash, e.g. `https://api.paystack.co` or the emulator's `baseUrl`. */
  baseUrl: string;
  /** Deadline for a whole call, response body included, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** The fetch to use; default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  logger?: Logger;
}

/** The five endpoints, named as in logs, error details and the emulator's fault injection. */
export type PaystackEndpoint =
  'initialize' | 'verify' | 'charge_authorization' | 'refund' | 'list_refunds' | 'customer';

export function createPaystackClient(options: PaystackClientOptions): PaymentProvider {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const doFetch = options.fetch ?? globalThis.fetch;
  const logger = options.logger?.child({ module: 'paystack' });

  async function call<T extends z.ZodType>(
    endpoint: PaystackEndpoint,
    method: 'GET' | 'POST',
    path: string,
    body: Record<string, unknown> | undefined,
    schema: T,
  ): Promise<z.infer<T>> {
    const startedMs = Date.now();
    const deadline = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.secretKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: deadline,
      });
      text = await response.text();
    } catch (error) {
      const kind = deadline.aborted || isTimeout(error) ? 'timeout' : 'network';
      logger?.warn({ endpoint, kind, durationMs: Date.now() - startedMs }, 'paystack.unreachable');
      throw upstream(
        kind === 'timeout'
          ? `Paystack did not answer within ${timeoutMs} ms`
          : 'Paystack could not be reached',
        { kind, retryable: true, endpoint },
        error,
      );
    }
    const status = response.status;
    logger?.debug({ endpoint, status, durationMs: Date.now() - startedMs }, 'paystack.response');

    if (status >= 500 || status === 429) {
      const kind = status === 429 ? 'rate_limited' : 'server';
      logger?.warn({ endpoint, status }, 'paystack.unavailable');
      throw upstream(`Paystack answered ${status}`, { kind, status, retryable: true, endpoint });
    }
    const json = parseJson(text);
    if (status >= 400 || (status < 300 && isRefusal(json))) {
      const refusal = paystackErrorSchema.safeParse(json);
      const providerMessage = refusal.success ? refusal.data.message : `HTTP ${status}`;
      const details: PaymentRejectedDetails = {
        kind: status === 401 ? 'unauthorized' : 'rejected',
        status,
        providerMessage,
        ...(refusal.success && refusal.data.code !== undefined
          ? { providerCode: refusal.data.code }
          : {}),
        retryable: false,
        endpoint,
      };
      logger?.info({ endpoint, status, providerMessage }, 'paystack.rejected');
      throw new DomainError(
        'PAYMENT_REJECTED',
        status === 401
          ? 'Paystack refused our secret key (check PAYSTACK_SECRET_KEY)'
          : `Paystack refused the request: ${providerMessage}`,
        { details },
      );
    }
    if (status < 200 || status >= 300) {
      throw upstream(`Paystack answered ${status}`, {
        kind: 'invalid_response',
        status,
        retryable: true,
        endpoint,
      });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      logger?.error(
        { endpoint, status, issues: parsed.error.issues.slice(0, 5).map(describeIssue) },
        'paystack.unexpected_response',
      );
      throw upstream(
        'Paystack answered in a shape we do not understand',
        { kind: 'invalid_response', status, retryable: true, endpoint },
        parsed.error,
      );
    }
    return parsed.data;
  }

  return {
    async initializeTransaction(input) {
      const { data } = await call(
        'initialize',
        'POST',
        '/transaction/initialize',
        {
          reference: input.reference,
          amount: input.amountMinor,
          currency: input.currency,
          email: input.email,
          callback_url: input.callbackUrl,
          ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
          ...(input.channels === undefined ? {} : { channels: input.channels }),
        },
        paystackInitializeResponseSchema,
      );
      return {
        authorizationUrl: data.authorization_url,
        accessCode: data.access_code,
        reference: data.reference,
      };
    },

    async verifyTransaction(reference) {
      const { data } = await call(
        'verify',
        'GET',
        `/transaction/verify/${encodeURIComponent(reference)}`,
        undefined,
        paystackVerifyResponseSchema,
      );
      return { ...toTransaction(data), status: data.status };
    },

    async chargeAuthorization(input) {
      const { data } = await call(
        'charge_authorization',
        'POST',
        '/transaction/charge_authorization',
        {
          reference: input.reference,
          amount: input.amountMinor,
          currency: input.currency,
          email: input.email,
          authorization_code: input.authorizationCode,
          ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
        },
        paystackChargeResponseSchema,
      );
      const paused = data.paused === true || data.status === 'paused';
      const result: ChargeResult = {
        ...toTransaction(data),
        status: data.status,
        paused,
        requiresAction: isActionRequired(data.status, paused),
        actionUrl: data.authorization_url ?? data.url ?? null,
      };
      return result;
    },

    async refund(input) {
      const { data } = await call(
        'refund',
        'POST',
        '/refund',
        {
          transaction: input.reference,
          currency: input.currency,
          ...(input.amountMinor === undefined ? {} : { amount: input.amountMinor }),
          ...(input.merchantNote === undefined ? {} : { merchant_note: input.merchantNote }),
          ...(input.customerNote === undefined ? {} : { customer_note: input.customerNote }),
        },
        paystackRefundResponseSchema,
      );
      const result: RefundResult = {
        id: data.id,
        status: data.status,
        amountMinor: data.amount,
        currency: data.currency,
        transactionReference: data.transaction.reference,
        merchantNote: data.merchant_note ?? null,
      };
      return result;
    },

    async listRefunds(input) {
      const { data } = await call(
        'list_refunds',
        'GET',
        `/refund?transaction=${encodeURIComponent(input.reference)}`,
        undefined,
        paystackRefundListResponseSchema,
      );
      return data.map((refund): RefundResult => ({
        id: refund.id,
        status: refund.status,
        amountMinor: refund.amount,
        currency: refund.currency,
        transactionReference: refund.transaction.reference,
        merchantNote: refund.merchant_note ?? null,
      }));
    },

    async createCustomer(input) {
      const { data } = await call(
        'customer',
        'POST',
        '/customer',
        {
          email: input.email,
          ...(input.firstName === undefined ? {} : { first_name: input.firstName }),
          ...(input.lastName === undefined ? {} : { last_name: input.lastName }),
          ...(input.phone === undefined ? {} : { phone: input.phone }),
          ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
        },
        paystackCustomerResponseSchema,
      );
      return { customerCode: data.customer_code, id: data.id, email: data.email };
    },
  };
}

/** The fields verify and charge_authorization share, mapped to our names. */
function toTransaction(
  data: Omit<PaystackTransaction, 'status'>,
): Omit<VerifiedTransaction, 'status'> {
  const paidAt = data.paid_at ?? data.paidAt ?? null;
  return {
    id: data.id,
    reference: data.reference,
    amountMinor: data.amount,
    currency: data.currency,
    paidAt: paidAt === null ? null : toDate(paidAt),
    channel: data.channel ?? null,
    gatewayResponse: data.gateway_response ?? null,
    customer: { email: data.customer.email, customerCode: data.customer.customer_code },
    authorization: toAuthorization(data.authorization),
    metadata: decodePaystackMetadata(data.metadata),
  };
}

function toAuthorization(
  authorization: PaystackAuthorization | null | undefined,
): SavedAuthorization | null {
  const code = authorization?.authorization_code;
  if (authorization === null || authorization === undefined || code === undefined) return null;
  return {
    authorizationCode: code,
    signature: authorization.signature ?? null,
    last4: authorization.last4 ?? null,
    expMonth: authorization.exp_month ?? null,
    expYear: authorization.exp_year ?? null,
    cardType: authorization.card_type?.trim() ?? null,
    bank: authorization.bank ?? null,
    brand: authorization.brand ?? null,
    reusable: authorization.reusable === true,
    channel: authorization.channel ?? null,
  };
}

function toDate(value: string): Date | null {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A 2xx carrying `{ status: false }` is a refusal all the same. */
function isRefusal(json: unknown): boolean {
  return typeof json === 'object' && json !== null && 'status' in json && json.status === false;
}

/** By name, not `instanceof`: fetch's DOMException may come from another realm (jest's vm). */
function isTimeout(error: unknown): boolean {
  const name =
    typeof error === 'object' && error !== null && 'name' in error ? error.name : undefined;
  return name === 'TimeoutError' || name === 'AbortError';
}

function upstream(message: string, details: UpstreamFailureDetails, cause?: unknown): DomainError {
  return new DomainError('UPSTREAM_FAILED', message, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return `${issue.path.join('.')}: ${issue.message}`;
}
