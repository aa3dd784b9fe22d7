/**
 * Paystack webhooks: verify, store once, acknowledge, then process.
 *
 *   HMAC-SHA512 of the raw body must match `x-paystack-signature` (else 401,
 *   nothing stored) -> the body must be a JSON event (else 400) -> stored under a
 *   unique event key (a repeat only counts a duplicate) -> 200 -> a processor
 *   claims the event with a lease and dispatches it; every handler is idempotent,
 *   so a retry, a duplicate or an event that arrives before its predecessor
 *   changes nothing twice.
 *
 * The route that receives an event processes it right after answering, so it
 * stores a new event already claimed by itself (status `processing` with a
 * lease) and hands it over in memory: no second read to claim it. Should that
 * process die first, the lease runs out and the jobs role takes the event.
 * https://paystack.com/docs/payments/webhooks/
 */
import { isDuplicateKeyError } from '../../models/errors.js';
import { createHash } from 'node:crypto';
import type { Types } from 'mongoose';
import { findOneByKey, insertOne, updateOne } from '../../models/batching.js';
import { WebhookEvent } from '../../models/webhook-event.js';
import { Payment } from '../../models/payment.js';
import { Account } from '../../models/account.js';
import { isValidPaystackSignature } from '../../lib/paystack/signature.js';
import type { RefundStatus } from '../../models/refund.js';
import { notifyAdmins } from '../notifications.js';
import { fulfilPayment } from './fulfilment.js';
import { applyRefundEvent } from './refunds.js';
import type { PaymentsContext } from './context.js';

/** A stored event claimed by the process that stored it, ready to dispatch. */
export interface ClaimedEvent {
  _id: Types.ObjectId;
  event: string;
  eventKey: string;
  payload: Record<string, unknown>;
  attempts: number;
  leaseUntil: Date;
}

export type ReceiveResult =
  | { status: 401; error: 'INVALID_SIGNATURE' }
  | { status: 400; error: 'MALFORMED_EVENT' }
  | {
      status: 200;
      eventId: string;
      duplicate: boolean;
      /** A new event stored as claimed by the caller (when asked for): pass it to processWebhookEvent. */
      claimed?: ClaimedEvent;
    };

export async function receivePaystackWebhook(
  ctx: PaymentsContext,
  input: {
    rawBody: Buffer;
    signature: string | undefined;
    secretKey: string;
    /** Store a new event as claimed by the caller, who processes it next. */
    claim?: boolean;
  },
): Promise<ReceiveResult> {
  if (!isValidPaystackSignature(input.rawBody, input.signature, input.secretKey)) {
    return { status: 401, error: 'INVALID_SIGNATURE' };
  }
  const parsed = parseEvent(input.rawBody);
  if (!parsed) return { status: 400, error: 'MALFORMED_EVENT' };

  const eventKey = eventKeyOf(parsed.event, parsed.data, input.rawBody);
  const now = ctx.clock.now();
  const leaseUntil = new Date(now.getTime() + LEASE_MS);
  const claimed = input.claim === true;
  // Insert first: a new event costs one write (batched with the other deliveries
  // of this turn); the unique key turns a repeat into a duplicate-key error.
  try {
    const stored = await insertOne<ClaimedEvent>(WebhookEvent, {
      provider: 'paystack',
      eventKey,
      event: parsed.event,
      payload: parsed.raw,
      receivedAt: now,
      nextAttemptAt: now,
      deliveries: 1,
      ...(claimed ? { status: 'processing', leaseUntil, attempts: 1 } : { status: 'received' }),
    });
    return {
      status: 200,
      eventId: stored._id.toHexString(),
      duplicate: false,
      ...(claimed ? { claimed: stored } : {}),
    };
  } catch (err) {
    if (!isDuplicateKeyError(err)) throw err;
  }
  await updateOne(WebhookEvent, {
    filter: { provider: 'paystack', eventKey },
    update: { $inc: { deliveries: 1 } },
  });
  const existing = await findOneByKey<{ _id: Types.ObjectId }>(WebhookEvent, 'eventKey', eventKey, {
    where: { provider: 'paystack' },
    projection: { _id: 1 },
  });
  if (!existing) throw new Error(`webhook event ${eventKey} not found after storing it`);
  return { status: 200, eventId: existing._id.toHexString(), duplicate: true };
}

interface ParsedEvent {
  event: string;
  data: Record<string, unknown>;
  raw: Record<string, unknown>;
}

function parseEvent(rawBody: Buffer): ParsedEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { event, data } = raw as { event?: unknown; data?: unknown };
  if (typeof event !== 'string' || event.length === 0 || event.length > 100) return null;
  if (typeof data !== 'object' || data === null) return null;
  return { event, data: data as Record<string, unknown>, raw: raw as Record<string, unknown> };
}

/**
 * Paystack sends no event id. A charge is identified by its reference (so a
 * re-sent `charge.success` with a slightly different body is still one event);
 * anything else by the digest of its exact body, which Paystack repeats verbatim.
 */
function eventKeyOf(event: string, data: Record<string, unknown>, rawBody: Buffer): string {
  if (event === 'charge.success' && typeof data.reference === 'string') {
    return `charge.success:${data.reference}`;
  }
  return `${event}:${createHash('sha256').update(rawBody).digest('hex')}`;
}

export type ProcessOutcome = 'processed' | 'ignored' | 'retry' | 'busy';

const MAX_ATTEMPTS = 12;
const LEASE_MS = 60_000;
/** A claim handed over in memory is used only while this much of its lease is left. */
const LEASE_MARGIN_MS = 15_000;

/**
 * Claims one stored event (or takes one the caller claimed when storing it)
 * and handles it; safe to call from several processes at once.
 */
export async function processWebhookEvent(
  ctx: PaymentsContext,
  target: string | ClaimedEvent,
): Promise<ProcessOutcome> {
  const now = ctx.clock.now();
  const event =
    typeof target !== 'string' && target.leaseUntil.getTime() - now.getTime() > LEASE_MARGIN_MS
      ? target
      : await claimEvent(typeof target === 'string' ? target : target._id.toHexString(), now);
  if (!event) return 'busy';
  const eventId = event._id.toHexString();

  let result: { outcome: 'processed' | 'ignored' | 'retry'; note: string };
  try {
    result = await dispatch(ctx, event);
  } catch (err) {
    ctx.logger.error({ err, eventId, event: event.event }, 'webhook.processing_failed');
    result = { outcome: 'retry', note: err instanceof Error ? err.message : String(err) };
  }

  const done = ctx.clock.now();
  if (result.outcome === 'retry') {
    const attempts = event.attempts;
    const finalFailure = attempts >= MAX_ATTEMPTS;
    await updateOne(WebhookEvent, {
      filter: { _id: event._id, status: 'processing' },
      update: {
        $set: {
          status: finalFailure ? 'failed' : 'received',
          lastError: result.note,
          nextAttemptAt: new Date(done.getTime() + backoffMs(attempts)),
        },
        $unset: { leaseUntil: 1 },
      },
    });
    return 'retry';
  }
  await updateOne(WebhookEvent, {
    filter: { _id: event._id, status: 'processing' },
    update: {
      $set: { status: result.outcome, outcome: result.note, processedAt: done },
      $unset: { leaseUntil: 1, lastError: 1 },
    },
  });
  return result.outcome;
}

async function claimEvent(eventId: string, now: Date): Promise<ClaimedEvent | null> {
  return WebhookEvent.findOneAndUpdate(
    {
      _id: eventId,
      $or: [
        { status: 'received', nextAttemptAt: { $lte: now } },
        { status: 'processing', leaseUntil: { $lt: now } },
      ],
    },
    {
      $set: { status: 'processing', leaseUntil: new Date(now.getTime() + LEASE_MS) },
      $inc: { attempts: 1 },
    },
    { returnDocument: 'after' },
  ).lean<ClaimedEvent>();
}

/** 30 s, 1 min, 2 min ... capped at 1 h. */
function backoffMs(attempts: number): number {
  return Math.min(3_600_000, 30_000 * 2 ** Math.max(0, attempts - 1));
}

/** Processes every stored event that is due (the jobs role and tests call it). */
export async function processDueWebhookEvents(
  ctx: PaymentsContext,
  options: { limit?: number } = {},
): Promise<number> {
  const now = ctx.clock.now();
  const due = await WebhookEvent.find(
    {
      $or: [
        { status: 'received', nextAttemptAt: { $lte: now } },
        { status: 'processing', leaseUntil: { $lt: now } },
      ],
    },
    { _id: 1 },
  )
    .sort({ receivedAt: 1 })
    .limit(options.limit ?? 100);
  let handled = 0;
  for (const { _id } of due) {
    if ((await processWebhookEvent(ctx, String(_id))) !== 'busy') handled += 1;
  }
  return handled;
}

const refundEvents: Record<string, RefundStatus> = {
  'refund.pending': 'pending',
  'refund.processing': 'processing',
  'refund.processed': 'processed',
  'refund.failed': 'failed',
  'refund.needs-attention': 'needs-attention',
};

async function dispatch(
  ctx: PaymentsContext,
  event: ClaimedEvent,
): Promise<{ outcome: 'processed' | 'ignored' | 'retry'; note: string }> {
  const payload = event.payload as { data?: Record<string, unknown> };
  const data = payload.data ?? {};
  const name = event.event;

  if (name === 'charge.success') {
    const reference = typeof data.reference === 'string' ? data.reference : '';
    const outcome = await fulfilPayment(ctx, reference);
    switch (outcome.state) {
      case 'fulfilled':
        return { outcome: 'processed', note: 'fulfilled' };
      case 'retry_later':
        return { outcome: 'retry', note: outcome.reason };
      case 'pending':
        // Paystack announced a success its own verify does not show yet: ask again later.
        return { outcome: 'retry', note: 'verify does not confirm success yet' };
      case 'unknown_reference':
        return { outcome: 'ignored', note: 'no payment of ours has this reference' };
      case 'failed':
      case 'flagged':
        return { outcome: 'processed', note: outcome.state };
    }
  }

  const refundStatus = refundEvents[name];
  if (refundStatus) {
    const applied = await applyRefundEvent(ctx, {
      status: refundStatus,
      providerRefundId: stringOf(data.id),
      reference: refundTransactionReference(data),
      amountMinor: amountOf(data.amount),
    });
    if (applied === 'unknown') {
      return { outcome: 'ignored', note: 'no refund of ours for this transaction' };
    }
    return {
      outcome: 'processed',
      note: applied === 'moved' ? `refund ${refundStatus}` : 'refund already further',
    };
  }

  if (name.startsWith('charge.dispute.')) {
    const transaction = (data.transaction ?? {}) as Record<string, unknown>;
    const reference = stringOf(transaction.reference);
    const payment = reference ? await Payment.findOne({ reference }) : null;
    if (payment && name === 'charge.dispute.create') {
      await Account.updateOne(
        { _id: payment.accountId, 'flags.reference': { $ne: `dispute:${reference}` } },
        {
          $push: {
            flags: {
              kind: 'dispute',
              reason: `Card dispute opened on payment ${reference}`,
              reference: `dispute:${reference}`,
              at: ctx.clock.now(),
            },
          },
        },
      );
    }
    await notifyAdmins(
      {
        event: 'dispute_opened',
        dedupKey: `${name}:${event.eventKey}`,
        data: {
          event: name,
          reference,
          accountId: payment ? String(payment.accountId) : undefined,
          status: stringOf(data.status),
          amountMinor: data.refund_amount ?? transaction.amount,
          dueAt: stringOf(data.dueAt ?? data.due_at),
        },
      },
      { clock: ctx.clock },
    );
    return { outcome: 'processed', note: payment ? 'admins told, account flagged' : 'admins told' };
  }

  if (name.startsWith('subscription.') || name.startsWith('invoice.')) {
    // Atlantic renews with charge_authorization and creates no Paystack subscriptions.
    return { outcome: 'ignored', note: 'no linked Paystack subscription' };
  }
  return { outcome: 'ignored', note: 'event not used by Atlantic' };
}

function refundTransactionReference(data: Record<string, unknown>): string | undefined {
  const direct = stringOf(data.transaction_reference);
  if (direct) return direct;
  const transaction = data.transaction;
  if (typeof transaction === 'object' && transaction !== null) {
    return stringOf((transaction as Record<string, unknown>).reference);
  }
  return undefined;
}

/** Paystack sends refund amounts as numbers or as digit strings. */
function amountOf(value: unknown): number | undefined {
  const amount = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0
    ? amount
    : undefined;
}

function stringOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}
