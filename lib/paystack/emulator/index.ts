/**
 * A local Paystack for tests and the sandbox: a real HTTP server (node:http)
 * answering the five endpoints Atlantic calls the way Paystack does, a
 * hosted checkout page, and signed webhooks.
 *
 * Flow of a request: route -> injected fault (`failNextRequests`), if any ->
 * `Authorization: Bearer <secret key>` check (401 `Invalid key`) -> the
 * endpoint's handler, which answers `{ status: true, message, data }` or
 * Paystack's refusal `{ status: false, message, ... }` (400).
 *
 * Test control: the methods of `PaystackEmulator`, also reachable over HTTP
 * under `/_emulator/...` (same Bearer key) for tests and benchmarks that run
 * the emulator in another process (see `main.ts`).
 *
 * Facts checked against Paystack's OpenAPI description
 * (github.com/PaystackOSS/openapi, dist/paystack.yaml): request fields of
 * TransactionInitialize, TransactionChargeAuthorization, RefundCreate and
 * CustomerCreate; response objects (see `state.ts`); the 401 body
 * `{ status: false, message: 'Invalid key' }`; the duplicate reference
 * refusal (`Duplicate Transaction Reference`, type `validation_error`, code
 * `duplicate_reference`, with `meta.nextStep`). Messages the spec does not
 * give are marked where they are made.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { z } from 'zod';

import { systemClock } from '../../clock.js';
import type { Clock } from '../../clock.js';
import { PAYSTACK_REFERENCE_PATTERN } from '../../ids.js';
import type { Logger } from '../../logger.js';
import { isCurrency, type Currency } from '../../money.js';
import type { ChargeStatus, RefundStatus } from '../../payment-provider.js';
import type { PaystackEndpoint } from '../client.js';
import { decodePaystackMetadata } from '../schemas.js';
import { renderCheckoutPage, renderCheckoutResult } from './checkout-page.js';
import {
  chargeJson,
  customerJson,
  randomCode,
  refundEventJson,
  refundJson,
  transactionJson,
  INTEGRATION_ID,
} from './state.js';
import type {
  EmulatedAuthorization,
  EmulatedCustomer,
  EmulatedRefund,
  EmulatedTransaction,
} from './state.js';
import { WebhookSender } from './webhooks.js';
import type {
  DeliveryOptions,
  DeliveryOrder,
  DeliveryResult,
  SignatureMode,
  WebhookEvent,
} from './webhooks.js';

export type {
  DeliveryOptions,
  DeliveryOrder,
  DeliveryResult,
  SignatureMode,
  WebhookEvent,
  EmulatedAuthorization,
  EmulatedCustomer,
  EmulatedRefund,
  EmulatedTransaction,
};

export interface PaystackEmulatorOptions {
  /** The key clients must present (Bearer) and webhooks are signed with. */
  secretKey: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Times in answers and webhooks (`paid_at`, `created_at`); default the system clock. */
  clock?: Clock;
  logger?: Logger;
  /** Where webhooks go; none are delivered until one is set. */
  webhookUrl?: string;
}

export const CHARGE_OUTCOMES = [
  'success',
  'failed',
  'send_otp',
  'pay_offline',
  'open_url',
  'pending',
  'paused',
] as const;
/** What the next charge_authorization call answers. */
export type ChargeOutcome = (typeof CHARGE_OUTCOMES)[number];

/**
 * A failure of the next request(s) to an endpoint: a 5xx, or no answer at
 * all (the client's timeout fires). With `afterProcessing` the request takes
 * effect first and only the answer is lost: the "charged, but we never heard"
 * case that callers must resolve by verifying.
 */
export type InjectedFault =
  | { status: 500 | 502 | 503; afterProcessing?: boolean }
  | { hang: true; afterProcessing?: boolean };

export interface PayOptions {
  /** Whether the saved card can be charged again. Default true. */
  reusable?: boolean;
  /** The card fingerprint; the same value for "the same card". Default random. */
  signature?: string;
  last4?: string;
  brand?: string;
  /** Pay a different amount than initialized (to test amount checks). */
  amountMinor?: number;
  /** Pay in a different currency than initialized (to test currency checks). */
  currency?: string;
  deliver?: DeliveryOptions;
}

export type RefundOutcome = 'processed' | 'failed' | 'needs-attention';

export interface PaystackEmulator {
  /** e.g. `http://127.0.0.1:PORT`: the client's `baseUrl`. */
  readonly baseUrl: string;
  setWebhookUrl(url: string | undefined): void;
  /**
   * The customer pays: the transaction becomes `success` with a card
   * authorization, then a signed `charge.success` is delivered. Resolves after
   * the delivery attempt(s) finished (at once while deliveries are held).
   */
  pay(reference: string, options?: PayOptions): Promise<void>;
  /**
   * The card is declined: `failed`. Paystack sends no webhook for a declined
   * charge, so `deliver` is accepted for symmetry and nothing is sent.
   */
  fail(
    reference: string,
    options?: { gatewayResponse?: string; deliver?: DeliveryOptions },
  ): Promise<void>;
  /** The customer walked away: `abandoned`. */
  abandon(reference: string): void;
  /** Queues the outcome of the next charge_authorization call (default `success`). */
  nextChargeAuthorization(outcome: ChargeOutcome): void;
  /** The next `count` (default 1) requests to `endpoint` fail as described. */
  failNextRequests(endpoint: PaystackEndpoint, fault: InjectedFault, count?: number): void;
  /**
   * Moves the transaction's oldest unsettled refund on: `processing` (with
   * `refund.processing`), then the outcome (`refund.processed` or
   * `refund.failed`; Paystack lists no event for `needs-attention`, so that
   * one is visible only in the emulator's state). A fully refunded
   * transaction then verifies as `reversed`.
   */
  settleRefund(
    reference: string,
    outcome: RefundOutcome,
    options?: { deliver?: DeliveryOptions },
  ): Promise<void>;
  /** Delivers any event (disputes, subscription.*, invoice.*, unknown), signed as asked. */
  sendEvent(
    event: string,
    data: Record<string, unknown>,
    options?: DeliveryOptions & { signature?: SignatureMode },
  ): Promise<DeliveryResult[]>;
  /** Queue every webhook from now on instead of delivering it... */
  holdDeliveries(): void;
  /** ...then deliver the queue in the order asked (e.g. `reverse`, `shuffle`). */
  releaseDeliveries(options?: {
    order?: DeliveryOrder;
    parallel?: boolean;
  }): Promise<DeliveryResult[]>;
  /** Resolves when no webhook is in flight (checkout, charge and refund ones are sent in the background). */
  idle(): Promise<void>;
  readonly transactions: ReadonlyMap<string, EmulatedTransaction>;
  readonly refunds: ReadonlyMap<number, EmulatedRefund>;
  readonly customers: ReadonlyMap<string, EmulatedCustomer>;
  readonly deliveries: readonly DeliveryResult[];
  stop(): Promise<void>;
}

interface Answer {
  status: number;
  body: unknown;
}

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_BODY_BYTES = 1_000_000;

/** Paystack's refusal envelope (OpenAPI `Error`). */
function refuse(status: number, message: string, extra: Record<string, unknown> = {}): Answer {
  return { status, body: { status: false, message, ...extra } };
}

function ok(message: string, data: unknown): Answer {
  return { status: 200, body: { status: true, message, data } };
}

/** Paystack takes amounts as integers or digit strings, in minor units. */
function readAmount(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return undefined;
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;

export async function startPaystackEmulator(
  options: PaystackEmulatorOptions,
): Promise<PaystackEmulator> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger?.child({ module: 'paystack-emulator' });
  let webhookUrl = options.webhookUrl;
  let baseUrl = '';

  const transactions = new Map<string, EmulatedTransaction>();
  const byAccessCode = new Map<string, string>();
  const customers = new Map<string, EmulatedCustomer>();
  const authorizations = new Map<string, EmulatedAuthorization>();
  const refunds = new Map<number, EmulatedRefund>();
  const chargeOutcomes: ChargeOutcome[] = [];
  const faults = new Map<PaystackEndpoint, InjectedFault[]>();
  let nextTransactionId = 3_000_000_001;
  let nextCustomerId = 200_000_001;
  let nextRefundId = 15_000_001;

  const webhooks = new WebhookSender({
    secretKey: options.secretKey,
    clock,
    logger,
    webhookUrl: () => webhookUrl,
  });

  // ----- state changes shared by the API, the checkout page and test control

  function customerFor(email: string): EmulatedCustomer {
    const key = email.toLowerCase();
    let customer = customers.get(key);
    if (customer === undefined) {
      const now = clock.now();
      customer = {
        id: nextCustomerId++,
        customerCode: randomCode('CUS_', 15),
        email: key,
        firstName: null,
        lastName: null,
        phone: null,
        metadata: null,
        createdAt: now,
        updatedAt: now,
      };
      customers.set(key, customer);
    }
    return customer;
  }

  function mustFind(reference: string): EmulatedTransaction {
    const transaction = transactions.get(reference);
    if (transaction === undefined) throw new Error(`no emulated transaction ${reference}`);
    return transaction;
  }

  function newTransaction(
    fields: Pick<
      EmulatedTransaction,
      | 'reference'
      | 'amountMinor'
      | 'currency'
      | 'email'
      | 'callbackUrl'
      | 'metadata'
      | 'channels'
      | 'source'
    >,
  ): EmulatedTransaction {
    const accessCode = randomCode('', 15);
    const transaction: EmulatedTransaction = {
      ...fields,
      id: nextTransactionId++,
      accessCode,
      requestedAmountMinor: fields.amountMinor,
      status: 'abandoned',
      gatewayResponse: 'The transaction was not completed',
      paidAt: null,
      createdAt: clock.now(),
      authorization: null,
      actionUrl: null,
    };
    transactions.set(transaction.reference, transaction);
    byAccessCode.set(accessCode, transaction.reference);
    return transaction;
  }

  function chargeSuccessEvent(transaction: EmulatedTransaction): WebhookEvent {
    return {
      event: 'charge.success',
      data: transactionJson(transaction, customerFor(transaction.email)),
    };
  }

  /** Marks the transaction paid; returns its charge.success event. */
  function markPaid(transaction: EmulatedTransaction, pay: PayOptions = {}): WebhookEvent {
    if (transaction.status === 'success' || transaction.status === 'reversed') {
      throw new Error(`transaction ${transaction.reference} is already ${transaction.status}`);
    }
    const authorization: EmulatedAuthorization = transaction.authorization ?? {
      authorizationCode: randomCode('AUTH_', 10),
      bin: '408408',
      last4: pay.last4 ?? '4081',
      expMonth: '12',
      expYear: String(clock.now().getUTCFullYear() + 3),
      cardType: `${pay.brand ?? 'visa'} `,
      bank: 'TEST BANK',
      brand: pay.brand ?? 'visa',
      reusable: pay.reusable ?? true,
      signature: pay.signature ?? randomCode('SIG_', 20),
      email: transaction.email.toLowerCase(),
    };
    authorizations.set(authorization.authorizationCode, authorization);
    transaction.authorization = authorization;
    transaction.status = 'success';
    transaction.gatewayResponse = 'Successful';
    transaction.paidAt = clock.now();
    transaction.actionUrl = null;
    if (pay.amountMinor !== undefined) transaction.amountMinor = pay.amountMinor;
    if (pay.currency !== undefined) transaction.currency = pay.currency;
    logger?.debug({ reference: transaction.reference }, 'emulator.paid');
    return chargeSuccessEvent(transaction);
  }

  function markFailed(transaction: EmulatedTransaction, gatewayResponse = 'Declined'): void {
    if (transaction.status === 'success' || transaction.status === 'reversed') {
      throw new Error(`transaction ${transaction.reference} is already ${transaction.status}`);
    }
    transaction.status = 'failed';
    transaction.gatewayResponse = gatewayResponse;
    transaction.actionUrl = null;
  }

  function markAbandoned(transaction: EmulatedTransaction): void {
    if (transaction.status === 'success' || transaction.status === 'reversed') {
      throw new Error(`transaction ${transaction.reference} is already ${transaction.status}`);
    }
    transaction.status = 'abandoned';
    transaction.gatewayResponse = 'The transaction was not completed';
  }

  /** Refunded so far, counting every refund that has not failed. */
  function refundedMinor(reference: string): number {
    let total = 0;
    for (const refund of refunds.values()) {
      if (refund.transactionReference === reference && refund.status !== 'failed') {
        total += refund.amountMinor;
      }
    }
    return total;
  }

  function refundEvent(refund: EmulatedRefund): WebhookEvent {
    const transaction = mustFind(refund.transactionReference);
    return {
      event: `refund.${refund.status}`,
      data: refundEventJson(refund, customerFor(transaction.email)),
    };
  }

  function setRefundStatus(refund: EmulatedRefund, status: RefundStatus): void {
    refund.status = status;
    refund.updatedAt = clock.now();
  }

  // ----- the Paystack API

  /**
   * The email, amount and currency that initialize and charge_authorization both
   * take, checked the same way; a refusal is returned as the Answer.
   */
  function readCharge(
    body: Record<string, unknown>,
  ): { email: string; amount: number; currency: Currency } | Answer {
    const email = text(body.email);
    if (email === undefined || !EMAIL_PATTERN.test(email)) {
      // Message as Paystack words it for a bad email (not in the OpenAPI description).
      return refuse(400, 'Invalid Email Address Passed', { type: 'validation_error' });
    }
    const amount = readAmount(body.amount);
    if (amount === undefined || amount <= 0) {
      return refuse(400, 'Invalid Amount Sent', { type: 'validation_error' });
    }
    const currency = text(body.currency) ?? 'NGN';
    if (!isCurrency(currency)) {
      return refuse(400, 'Currency not supported by merchant', { type: 'validation_error' });
    }
    return { email, amount, currency };
  }

  function initialize(body: Record<string, unknown>): Answer {
    const charge = readCharge(body);
    if ('status' in charge) return charge;
    const { email, amount, currency } = charge;
    const reference = text(body.reference) ?? randomCode('', 10);
    if (!PAYSTACK_REFERENCE_PATTERN.test(reference)) {
      return refuse(
        400,
        'Invalid transaction reference: only -, ., = and alphanumeric characters allowed',
        {
          type: 'validation_error',
        },
      );
    }
    if (transactions.has(reference)) return duplicateReference();
    const channels = Array.isArray(body.channels)
      ? body.channels.filter((item): item is string => typeof item === 'string')
      : [];
    const transaction = newTransaction({
      reference,
      amountMinor: amount,
      currency,
      email: email.toLowerCase(),
      callbackUrl: text(body.callback_url) ?? null,
      metadata: decodePaystackMetadata(body.metadata),
      channels,
      source: 'initialize',
    });
    customerFor(email);
    return ok('Authorization URL created', {
      authorization_url: `${baseUrl}/checkout/${transaction.accessCode}`,
      access_code: transaction.accessCode,
      reference,
    });
  }

  function duplicateReference(): Answer {
    return refuse(400, 'Duplicate Transaction Reference', {
      meta: { nextStep: 'Try and create the Transaction or Charge with a new reference' },
      type: 'validation_error',
      code: 'duplicate_reference',
    });
  }

  function verify(reference: string): Answer {
    const transaction = transactions.get(reference);
    if (transaction === undefined) {
      return refuse(400, 'Transaction reference not found', {
        meta: {
          nextStep:
            'Ensure that you are passing the reference of a transaction on this integration',
        },
        type: 'validation_error',
        code: 'transaction_not_found',
      });
    }
    return ok(
      'Verification successful',
      transactionJson(transaction, customerFor(transaction.email)),
    );
  }

  function chargeAuthorization(body: Record<string, unknown>): Answer {
    const charge = readCharge(body);
    if ('status' in charge) return charge;
    const { email, amount, currency } = charge;
    const code = text(body.authorization_code);
    const authorization = code === undefined ? undefined : authorizations.get(code);
    // Paystack's wording for an authorization that is unknown or belongs to another customer.
    if (authorization === undefined || authorization.email !== email.toLowerCase()) {
      return refuse(
        400,
        'Email does not match Authorization code. Authorization may be inactive or belong to a different email. Please confirm.',
        { type: 'validation_error' },
      );
    }
    if (!authorization.reusable) {
      return refuse(400, 'This authorization is not reusable', { type: 'validation_error' });
    }
    const reference = text(body.reference) ?? randomCode('', 10);
    if (!PAYSTACK_REFERENCE_PATTERN.test(reference)) {
      return refuse(400, 'Invalid transaction reference', { type: 'validation_error' });
    }
    if (transactions.has(reference)) return duplicateReference();

    const transaction = newTransaction({
      reference,
      amountMinor: amount,
      currency,
      email: email.toLowerCase(),
      callbackUrl: null,
      metadata: decodePaystackMetadata(body.metadata),
      channels: ['card'],
      source: 'charge_authorization',
    });
    transaction.authorization = authorization;
    const outcome = chargeOutcomes.shift() ?? 'success';
    const payer = customerFor(email);
    if (outcome === 'success') {
      // Paystack also sends charge.success for a successful recurring charge.
      webhooks.sendInBackground([markPaid(transaction)]);
    } else if (outcome === 'failed') {
      markFailed(transaction, 'Insufficient Funds');
    } else {
      transaction.status = outcome satisfies ChargeStatus;
      transaction.gatewayResponse = outcome === 'pending' ? 'Transaction in progress' : null;
      transaction.actionUrl =
        outcome === 'open_url' || outcome === 'paused'
          ? `${baseUrl}/checkout/${transaction.accessCode}`
          : null;
    }
    return ok('Charge attempted', chargeJson(transaction, payer));
  }

  function refund(body: Record<string, unknown>): Answer {
    const key =
      typeof body.transaction === 'number' ? String(body.transaction) : text(body.transaction);
    if (key === undefined) {
      return refuse(400, 'Transaction reference or id is required', { type: 'validation_error' });
    }
    // `transaction` is the reference or the numeric id (OpenAPI RefundCreate).
    const transaction =
      transactions.get(key) ?? [...transactions.values()].find((item) => String(item.id) === key);
    if (transaction === undefined) {
      return refuse(400, 'Transaction not found', { type: 'validation_error' });
    }
    if (transaction.status !== 'success') {
      return refuse(400, 'Transaction has not been completed and cannot be refunded', {
        type: 'validation_error',
      });
    }
    const currency = text(body.currency);
    if (currency !== undefined && currency !== transaction.currency) {
      return refuse(400, 'Currency does not match the transaction currency', {
        type: 'validation_error',
      });
    }
    const remaining = transaction.amountMinor - refundedMinor(transaction.reference);
    const requested = body.amount === undefined ? remaining : readAmount(body.amount);
    if (requested === undefined || requested <= 0) {
      return refuse(400, 'Invalid Amount Sent', { type: 'validation_error' });
    }
    if (requested > remaining) {
      return refuse(400, 'Refund amount cannot be greater than the refundable amount', {
        type: 'validation_error',
      });
    }
    const now = clock.now();
    const created: EmulatedRefund = {
      id: nextRefundId++,
      transactionReference: transaction.reference,
      transactionId: transaction.id,
      amountMinor: requested,
      currency: transaction.currency,
      status: 'pending',
      merchantNote: text(body.merchant_note) ?? null,
      customerNote: text(body.customer_note) ?? null,
      refundReference: null,
      createdAt: now,
      updatedAt: now,
    };
    refunds.set(created.id, created);
    webhooks.sendInBackground([refundEvent(created)]);
    return ok('Refund has been queued for processing', refundJson(created, transaction));
  }

  /** `GET /refund?transaction=` (reference or id): that transaction's refunds, newest first. */
  function listRefunds(key: string | undefined): Answer {
    const matches = [...refunds.values()]
      .filter(
        (item) =>
          key === undefined ||
          item.transactionReference === key ||
          String(item.transactionId) === key,
      )
      .sort((a, b) => b.id - a.id)
      .flatMap((item) => {
        const transaction = transactions.get(item.transactionReference);
        return transaction ? [refundJson(item, transaction)] : [];
      });
    return ok('Refunds retrieved', matches);
  }

  function customer(body: Record<string, unknown>): Answer {
    const email = text(body.email);
    if (email === undefined || !EMAIL_PATTERN.test(email)) {
      return refuse(400, 'Invalid Email Address Passed', { type: 'validation_error' });
    }
    const found = customerFor(email);
    found.firstName = text(body.first_name) ?? found.firstName;
    found.lastName = text(body.last_name) ?? found.lastName;
    found.phone = text(body.phone) ?? found.phone;
    found.metadata = decodePaystackMetadata(body.metadata) ?? found.metadata;
    found.updatedAt = clock.now();
    return ok('Customer created', {
      ...customerJson(found),
      integration: INTEGRATION_ID,
      domain: 'test',
      identified: false,
      identifications: null,
      transactions: [],
      subscriptions: [],
      authorizations: [],
      createdAt: found.createdAt.toISOString(),
      updatedAt: found.updatedAt.toISOString(),
    });
  }

  // ----- test control (methods and /_emulator/...)

  const emulator: PaystackEmulator = {
    get baseUrl() {
      return baseUrl;
    },
    setWebhookUrl(url) {
      webhookUrl = url;
    },
    async pay(reference, pay = {}) {
      const event = markPaid(mustFind(reference), pay);
      await webhooks.send([event], pay.deliver);
    },
    fail(reference, fail = {}) {
      markFailed(mustFind(reference), fail.gatewayResponse);
      return Promise.resolve();
    },
    abandon(reference) {
      markAbandoned(mustFind(reference));
    },
    nextChargeAuthorization(outcome) {
      chargeOutcomes.push(outcome);
    },
    failNextRequests(endpoint, fault, count = 1) {
      const queue = faults.get(endpoint) ?? [];
      for (let i = 0; i < count; i += 1) queue.push(fault);
      faults.set(endpoint, queue);
    },
    async settleRefund(reference, outcome, settle = {}) {
      mustFind(reference);
      const pending = [...refunds.values()]
        .filter(
          (item) =>
            item.transactionReference === reference &&
            (item.status === 'pending' || item.status === 'processing'),
        )
        .sort((a, b) => a.id - b.id)[0];
      if (pending === undefined) throw new Error(`no unsettled refund for ${reference}`);
      const events: WebhookEvent[] = [];
      if (pending.status === 'pending') {
        setRefundStatus(pending, 'processing');
        events.push(refundEvent(pending));
      }
      setRefundStatus(pending, outcome);
      if (outcome === 'processed') {
        pending.refundReference = randomCode('RFD_', 12);
        events.push(refundEvent(pending));
        const transaction = mustFind(reference);
        if (refundedMinor(reference) >= transaction.amountMinor) transaction.status = 'reversed';
      } else if (outcome === 'failed') {
        events.push(refundEvent(pending));
      }
      await webhooks.send(events, settle.deliver);
    },
    sendEvent(event, data, send = {}) {
      return webhooks.send([{ event, data, signature: send.signature ?? 'valid' }], send);
    },
    holdDeliveries() {
      webhooks.hold();
    },
    releaseDeliveries(release) {
      return webhooks.release(release);
    },
    idle() {
      return webhooks.idle();
    },
    transactions,
    refunds,
    customers,
    get deliveries() {
      return webhooks.deliveries;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Hanging requests (injected faults) and keep-alive sockets would hold close() open.
      server.closeAllConnections();
      await closed;
      await webhooks.idle();
    },
  };

  const deliverySchema = z
    .object({
      duplicates: z.number().int().min(0).max(100).optional(),
      delayMs: z.number().int().min(0).max(60_000).optional(),
      order: z.enum(['as-is', 'reverse', 'shuffle']).optional(),
      parallel: z.boolean().optional(),
      retries: z.number().int().min(0).max(10).optional(),
      url: z.url().optional(),
    })
    .optional();

  const control = {
    pay: z.object({
      reusable: z.boolean().optional(),
      signature: z.string().optional(),
      last4: z.string().optional(),
      brand: z.string().optional(),
      amountMinor: z.number().int().optional(),
      currency: z.string().optional(),
      deliver: deliverySchema,
    }),
    fail: z.object({ gatewayResponse: z.string().optional() }),
    next: z.object({ outcome: z.enum(CHARGE_OUTCOMES) }),
    faults: z.object({
      endpoint: z.enum(['initialize', 'verify', 'charge_authorization', 'refund', 'customer']),
      fault: z.union([
        z.object({
          status: z.union([z.literal(500), z.literal(502), z.literal(503)]),
          afterProcessing: z.boolean().optional(),
        }),
        z.object({ hang: z.literal(true), afterProcessing: z.boolean().optional() }),
      ]),
      count: z.number().int().min(1).max(1000).optional(),
    }),
    settle: z.object({
      outcome: z.enum(['processed', 'failed', 'needs-attention']),
      deliver: deliverySchema,
    }),
    event: z.object({
      event: z.string().min(1),
      data: z.record(z.string(), z.unknown()),
      signature: z.enum(['valid', 'wrong', 'missing']).optional(),
      options: deliverySchema,
    }),
    webhookUrl: z.object({ url: z.url().nullable() }),
    release: z.object({
      order: z.enum(['as-is', 'reverse', 'shuffle']).optional(),
      parallel: z.boolean().optional(),
    }),
  };

  async function handleControl(
    method: string,
    parts: string[],
    body: Record<string, unknown>,
  ): Promise<Answer> {
    const [action, rawReference] = parts;
    const reference = rawReference === undefined ? undefined : decodeURIComponent(rawReference);
    const done = (extra: Record<string, unknown> = {}): Answer => ({
      status: 200,
      body: { ok: true, ...extra },
    });
    if (method === 'GET' && action === 'state') {
      return done({
        transactions: [...transactions.values()],
        refunds: [...refunds.values()],
        deliveries: webhooks.deliveries,
      });
    }
    if (method !== 'POST') return { status: 405, body: { ok: false, error: 'POST expected' } };
    switch (action) {
      case 'pay':
        if (reference === undefined) break;
        await emulator.pay(reference, control.pay.parse(body));
        return done();
      case 'fail':
        if (reference === undefined) break;
        await emulator.fail(reference, control.fail.parse(body));
        return done();
      case 'abandon':
        if (reference === undefined) break;
        emulator.abandon(reference);
        return done();
      case 'next-charge-authorization':
        emulator.nextChargeAuthorization(control.next.parse(body).outcome);
        return done();
      case 'fail-next-requests': {
        const parsed = control.faults.parse(body);
        emulator.failNextRequests(parsed.endpoint, parsed.fault, parsed.count);
        return done();
      }
      case 'settle-refund': {
        if (reference === undefined) break;
        const parsed = control.settle.parse(body);
        await emulator.settleRefund(reference, parsed.outcome, { deliver: parsed.deliver });
        return done();
      }
      case 'events': {
        const parsed = control.event.parse(body);
        const deliveries = await emulator.sendEvent(parsed.event, parsed.data, {
          ...parsed.options,
          signature: parsed.signature ?? 'valid',
        });
        return done({ deliveries });
      }
      case 'webhook-url':
        emulator.setWebhookUrl(control.webhookUrl.parse(body).url ?? undefined);
        return done();
      case 'hold-deliveries':
        emulator.holdDeliveries();
        return done();
      case 'release-deliveries':
        return done({ deliveries: await emulator.releaseDeliveries(control.release.parse(body)) });
      default:
        break;
    }
    return {
      status: 404,
      body: { ok: false, error: `unknown control ${method} /_emulator/${parts.join('/')}` },
    };
  }

  // ----- the hosted checkout page

  function checkout(
    method: string,
    accessCode: string,
    step: string | undefined,
    response: ServerResponse,
  ): void {
    const reference = byAccessCode.get(accessCode);
    const transaction = reference === undefined ? undefined : transactions.get(reference);
    if (transaction === undefined) {
      sendHtml(response, 404, '<!doctype html><p>SANDBOX: no such checkout.</p>');
      return;
    }
    const customerEmail = transaction.email;
    if (method === 'GET' && step === undefined) {
      sendHtml(
        response,
        200,
        renderCheckoutPage({
          accessCode,
          reference: transaction.reference,
          email: customerEmail,
          amountMinor: transaction.amountMinor,
          currency: transaction.currency,
          status: transaction.status,
        }),
      );
      return;
    }
    if (method !== 'POST' || (step !== 'pay' && step !== 'decline' && step !== 'cancel')) {
      sendHtml(response, 404, '<!doctype html><p>SANDBOX: no such checkout action.</p>');
      return;
    }
    const open =
      transaction.status !== 'success' &&
      transaction.status !== 'reversed' &&
      transaction.status !== 'failed';
    let target = transaction.callbackUrl;
    if (open) {
      if (step === 'pay') {
        // Paystack redirects the browser and sends the webhook independently:
        // the callback and the webhook race, as they do in production.
        webhooks.sendInBackground([markPaid(transaction)]);
      } else if (step === 'decline') {
        markFailed(transaction);
      } else {
        markAbandoned(transaction);
        const cancelAction = transaction.metadata?.cancel_action;
        if (typeof cancelAction === 'string') target = cancelAction;
      }
    }
    if (target === null) {
      sendHtml(response, 200, renderCheckoutResult(transaction.reference, transaction.status));
      return;
    }
    const location = new URL(target);
    location.searchParams.set('trxref', transaction.reference);
    location.searchParams.set('reference', transaction.reference);
    response.writeHead(302, { location: location.toString(), 'cache-control': 'no-store' });
    response.end();
  }

  // ----- HTTP plumbing

  function isAuthorized(request: IncomingMessage): boolean {
    return request.headers.authorization === `Bearer ${options.secretKey}`;
  }

  function takeFault(endpoint: PaystackEndpoint): InjectedFault | undefined {
    const queue = faults.get(endpoint);
    return queue?.shift();
  }

  function answerWithFault(response: ServerResponse, fault: InjectedFault): void {
    if ('hang' in fault) return; // never answer; stop() closes the socket
    if (fault.status === 500) {
      sendJson(response, { status: 500, body: { status: false, message: 'An error occurred' } });
    } else {
      // Gateways in front of Paystack answer 502/503 with HTML, not JSON.
      sendHtml(response, fault.status, `<html><body><h1>${fault.status}</h1></body></html>`);
    }
  }

  async function api(
    endpoint: PaystackEndpoint,
    request: IncomingMessage,
    response: ServerResponse,
    handle: (body: Record<string, unknown>) => Answer,
  ): Promise<void> {
    const fault = takeFault(endpoint);
    if (fault !== undefined && fault.afterProcessing !== true) {
      answerWithFault(response, fault);
      return;
    }
    if (!isAuthorized(request)) {
      sendJson(response, refuse(401, 'Invalid key'));
      return;
    }
    const body = await readBody(request);
    const answer = body === undefined ? refuse(400, 'Invalid JSON body') : handle(body);
    if (fault !== undefined) {
      answerWithFault(response, fault);
      return;
    }
    sendJson(response, answer);
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const url = new URL(request.url ?? '/', 'http://emulator.local');
    const parts = url.pathname.split('/').filter((part) => part !== '');
    const [first, second, third] = parts;
    logger?.debug({ method, path: url.pathname }, 'emulator.request');

    if (method === 'POST' && url.pathname === '/transaction/initialize') {
      return api('initialize', request, response, initialize);
    }
    if (
      method === 'GET' &&
      first === 'transaction' &&
      second === 'verify' &&
      third !== undefined &&
      parts.length === 3
    ) {
      return api('verify', request, response, () => verify(decodeURIComponent(third)));
    }
    if (method === 'POST' && url.pathname === '/transaction/charge_authorization') {
      return api('charge_authorization', request, response, chargeAuthorization);
    }
    if (method === 'POST' && url.pathname === '/refund')
      return api('refund', request, response, refund);
    if (method === 'GET' && url.pathname === '/refund') {
      return api('list_refunds', request, response, () =>
        listRefunds(url.searchParams.get('transaction') ?? undefined),
      );
    }
    if (method === 'POST' && url.pathname === '/customer')
      return api('customer', request, response, customer);
    if (first === 'checkout' && second !== undefined && parts.length <= 3) {
      await drain(request);
      checkout(method, second, third, response);
      return;
    }
    if (first === '_emulator') {
      if (!isAuthorized(request)) {
        sendJson(response, refuse(401, 'Invalid key'));
        return;
      }
      const body = await readBody(request);
      if (body === undefined) {
        sendJson(response, { status: 400, body: { ok: false, error: 'invalid JSON body' } });
        return;
      }
      try {
        sendJson(response, await handleControl(method, parts.slice(1), body));
      } catch (error) {
        const message = error instanceof z.ZodError ? z.prettifyError(error) : String(error);
        sendJson(response, { status: 400, body: { ok: false, error: message } });
      }
      return;
    }
    await drain(request);
    sendJson(response, refuse(404, 'Not found'));
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      logger?.error({ err: error }, 'emulator.request_failed');
      if (!response.headersSent) sendJson(response, refuse(500, 'An error occurred'));
      else response.destroy();
    });
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const reachableHost = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  baseUrl = `http://${reachableHost}:${address.port}`;
  logger?.info({ baseUrl }, 'emulator.listening');
  return emulator;
}

/** The request body as an object (JSON or form-encoded); `{}` when empty; undefined when unreadable. */
async function readBody(request: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim() === '') return {};
  const type = request.headers['content-type'] ?? '';
  if (type.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

async function drain(request: IncomingMessage): Promise<void> {
  for await (const _chunk of request) {
    // Discard: the checkout forms carry nothing the emulator needs.
  }
}

function sendJson(response: ServerResponse, answer: Answer): void {
  const payload = JSON.stringify(answer.body);
  response.writeHead(answer.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  response.end(payload);
}

function sendHtml(response: ServerResponse, status: number, html: string): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
  });
  response.end(html);
}
