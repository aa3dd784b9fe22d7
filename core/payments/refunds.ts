/**
 * Refunds: a paid payment, or part of it, back to the card it came from
 * (Paystack's refund API) or into the wallet (a ledger credit). Trial
 * deposits, cancelled periods and admins' refunds all go this one way.
 *
 *   record the refund under the caller's idempotency key        `refund.recorded`
 *   -> count it against the payment: ONE conditional update adds the amount to
 *      `refundedMinor` (and the refund's id to `refundHolds`) only while the
 *      total stays within the payment's amount; else it is refused  `refund.reserved`
 *   -> with `endPlan`, the plan the payment bought stops now      `refund.plan_ended`
 *   -> wallet: credit `refund:<id>` -> processed                  `refund.wallet_credited`
 *   -> card: money of this payment that sits in the wallet (a top-up) is taken
 *      out first, `refund-reversal:<id>`; already spent: refused  `refund.wallet_debited`
 *      -> one process at a time (a lease) reads Paystack's refund list: ours is
 *      there already (its id is in the merchant note)? take it    `refund.checked_provider`
 *      -> else POST /refund                                        `refund.provider_called`
 *   -> Paystack's states, from its answer, its webhooks (by its refund id, else
 *      the transaction reference and our oldest unsettled refund of that amount)
 *      or its refund list, move the refund forward only:
 *        processed: a credit note against the payment's invoice, the customer told;
 *        failed: the amount counts no more, top-up money goes back to the wallet,
 *          a cancelled period's money goes to the wallet instead, admins told.
 *      Each effect is announced before the status is written     `refund.announced`
 *
 * Every step is keyed by the refund's id, so a repeat, a concurrent request
 * with the same key or a resumed run (resumeRefunds, which the jobs role runs
 * through re-verification) never moves money twice. The one call that is not
 * idempotent by itself, Paystack's POST /refund, is guarded twice: a lease lets
 * one process at a time make it, and the refund list is read first, so a run
 * that died after Paystack took the refund adopts it instead of refunding again.
 */
import { Account } from '../../models/account.js';
import { BillingQuote } from '../../models/billing-quote.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { LedgerEntry } from '../../models/ledger-entry.js';
import { Payment, type PaymentRecord } from '../../models/payment.js';
import {
  Refund,
  type RefundKind,
  type RefundMethod,
  type RefundRecord,
  type RefundRefusal,
  type RefundStatus,
} from '../../models/refund.js';
import { Subscription, isLiveStatus, type SubscriptionRecord } from '../../models/subscription.js';
import { DomainError, isDomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import type { RefundResult } from '../../lib/payment-provider.js';
import { recordAudit, type AuditChannel } from '../audit.js';
import { getInvoiceByPaymentReference, issueInvoice, type IssuedInvoice } from '../invoices.js';
import { notify, notifyAdmins } from '../notifications.js';
import { cancel } from '../subscriptions.js';
import { credit, debit } from '../wallet.js';
import type { PaymentsContext } from './context.js';

/** What refunds need of the payments context (cancellations pass theirs). */
export type RefundsContext = Pick<
  PaymentsContext,
  'provider' | 'settings' | 'clock' | 'logger' | 'faults'
>;

export interface RefundRequest {
  /** Unique per refund the caller means: a repeat with the same key is the same refund. */
  key: string;
  paymentReference: string;
  /** Minor units of the payment's currency; default: everything still refundable. */
  amountMinor?: number;
  method: RefundMethod;
  kind: RefundKind;
  reason: string;
  requestedBy: { actor: string; channel: AuditChannel };
  /** Also stop, now, the plan this payment bought. */
  endPlan?: boolean;
}

interface OutcomeBase {
  /** null only when nothing was left to refund and no refund was recorded. */
  refundId: string | null;
  method: RefundMethod;
  amountMinor: number;
  currency: Currency;
  creditNoteNumber?: string | undefined;
}

export type RefundOutcome = OutcomeBase &
  (
    | { state: 'requested' | 'pending' | 'processing' | 'processed' }
    | { state: 'failed' | 'needs-attention' | 'retry_later'; reason: string }
    | { state: 'refused'; refusal: RefundRefusal | 'NOTHING_LEFT'; reason: string }
  );

/** A refund as admins and the API read it. */
export interface RefundView {
  id: string;
  paymentReference: string;
  accountId: string;
  amountMinor: number;
  currency: Currency;
  method: RefundMethod;
  kind: RefundKind;
  reason: string;
  status: RefundStatus;
  refusal?: RefundRefusal | undefined;
  providerRefundId?: string | undefined;
  creditNoteNumber?: string | undefined;
  requestedBy: { actor: string; channel: AuditChannel };
  requestedAt: Date;
  processedAt?: Date | undefined;
}

/** How long one process may talk to Paystack about one refund before another may try. */
const CALL_LEASE_MS = 120_000;
/** A card refund Paystack has been quiet about this long is looked up in its refund list. */
const QUIET_MS = 3_600_000;

const refusalText: Record<RefundRefusal | 'NOTHING_LEFT', string> = {
  EXCEEDS_REFUNDABLE: 'That is more than is left to refund on this payment.',
  ALREADY_SPENT:
    'This money was put in the wallet and has been spent since, so it cannot go back to the card.',
  NOTHING_LEFT: 'Everything this payment brought in has been refunded already.',
};

// ---------------------------------------------------------------------------
// Asking for a refund
// ---------------------------------------------------------------------------

/** An admin's refund (refundPayment; PaymentsService.refundPayment). */
export interface AdminRefundRequest {
  /** The admin's account id; the account must hold the admin role. */
  adminId: string;
  /** Where the admin asked from (recorded in the audit trail). */
  channel: AuditChannel;
  /** One per admin command (a chat message id, an API idempotency key): a repeat refunds once. */
  requestId: string;
  paymentReference: string;
  /** Minor units of the payment's currency; default: everything still refundable. */
  amountMinor?: number;
  /** 'card': back through Paystack; 'wallet': a credit to the customer's wallet. */
  method: RefundMethod;
  reason: string;
  /** Also stop the plan this payment bought, now. Default false. */
  endPlan?: boolean;
}

/**
 * An admin's refund of (part of) a payment, to the card or the wallet, with a
 * reason; audited. A repeat with the same `requestId` is the same refund.
 * Refused (CONFLICT, `details.reason` EXCEEDS_REFUNDABLE, ALREADY_SPENT or
 * NOTHING_LEFT) when it would take more than is left or the top-up it would
 * send back to the card has been spent; FORBIDDEN for a non-admin.
 */
export async function refundPayment(
  ctx: RefundsContext,
  input: AdminRefundRequest,
): Promise<RefundOutcome> {
  const admin = /^[0-9a-f]{24}$/i.test(input.adminId)
    ? await Account.findById(input.adminId, { roles: 1, status: 1 }).lean()
    : null;
  if (!admin || admin.status !== 'active' || !admin.roles.includes('admin')) {
    ctx.logger.warn({ adminId: input.adminId, channel: input.channel }, 'refund.not_admin');
    throw new DomainError('FORBIDDEN', 'Only an admin can refund a payment.');
  }
  const request: RefundRequest = {
    key: `admin:${input.adminId}:${input.requestId}`,
    paymentReference: input.paymentReference,
    method: input.method,
    kind: 'admin',
    reason: input.reason,
    requestedBy: { actor: input.adminId, channel: input.channel },
    ...(input.amountMinor === undefined ? {} : { amountMinor: input.amountMinor }),
    ...(input.endPlan === undefined ? {} : { endPlan: input.endPlan }),
  };
  const recorded = await recordRefund(ctx, request);
  if ('refused' in recorded) throw refusalError(recorded.refused, null);
  const refund = recorded.refund;
  await recordAudit(
    {
      actor: input.adminId,
      channel: input.channel,
      action: 'refund.requested',
      target: { kind: 'payment', id: refund.paymentReference },
      details: {
        refundId: String(refund._id),
        accountId: String(refund.accountId),
        amountMinor: refund.amountMinor,
        currency: refund.currency,
        method: refund.method,
        reason: refund.reason,
        endPlan: refund.endPlan,
      },
      key: `refund.requested:${String(refund._id)}`,
    },
    { clock: ctx.clock },
  );
  ctx.faults.reach('refund.audited');
  const outcome = await driveRefund(ctx, refund);
  if (outcome.state === 'refused') throw refusalError(outcome.refusal, outcome.refundId);
  return outcome;
}

/** Any refund (deposits, cancellations, admins' after their checks): records it and moves it on. */
export async function requestRefund(
  ctx: RefundsContext,
  request: RefundRequest,
): Promise<RefundOutcome> {
  const recorded = await recordRefund(ctx, request);
  if ('refused' in recorded) {
    return {
      state: 'refused',
      refusal: recorded.refused,
      reason: refusalText[recorded.refused],
      refundId: null,
      method: request.method,
      amountMinor: 0,
      currency: recorded.currency,
    };
  }
  return driveRefund(ctx, recorded.refund);
}

function refusalError(refusal: RefundRefusal | 'NOTHING_LEFT', refundId: string | null) {
  return new DomainError('CONFLICT', refusalText[refusal], {
    details: { reason: refusal, ...(refundId ? { refundId } : {}) },
  });
}

/** Step 1: the refund's record, new or found by its key. */
async function recordRefund(
  ctx: RefundsContext,
  request: RefundRequest,
): Promise<{ refund: RefundRecord } | { refused: 'NOTHING_LEFT'; currency: Currency }> {
  const key = request.key.trim();
  const reason = request.reason.trim();
  if (key === '' || key.length > 200)
    invalid('key', 'A refund needs a key of 1 to 200 characters.');
  if (reason === '' || reason.length > 500) {
    invalid('reason', 'A refund needs a reason (at most 500 characters).');
  }
  if (
    request.amountMinor !== undefined &&
    (!Number.isSafeInteger(request.amountMinor) || request.amountMinor < 1)
  ) {
    invalid('amountMinor', 'The amount must be a positive whole number of minor units.');
  }

  let refund = await Refund.findOne({ idempotencyKey: key }).lean<RefundRecord>();
  if (!refund) {
    const payment = await Payment.findOne({ reference: request.paymentReference }).lean();
    if (!payment) throw new DomainError('NOT_FOUND', 'No payment has that reference.');
    if (payment.status !== 'paid') {
      throw new DomainError('CONFLICT', 'Only a paid payment can be refunded.', {
        details: { reason: 'NOT_PAID', status: payment.status },
      });
    }
    if (request.method === 'wallet' && (await walletHoldsMoneyOf(payment.reference))) {
      invalid('method', 'This payment is already in the wallet; refund it to the card instead.');
    }
    if (request.endPlan === true && !(await subscriptionBoughtBy(payment))) {
      invalid('endPlan', 'This payment did not buy a plan, so there is no plan to stop.');
    }
    const left = payment.amountMinor - (payment.refundedMinor ?? 0);
    const amountMinor = request.amountMinor ?? left;
    if (amountMinor <= 0) return { refused: 'NOTHING_LEFT', currency: payment.currency };
    if (amountMinor > payment.amountMinor) {
      invalid('amountMinor', 'A refund cannot be larger than the payment.');
    }
    const now = ctx.clock.now();
    try {
      refund = (
        await Refund.create({
          idempotencyKey: key,
          paymentReference: payment.reference,
          accountId: payment.accountId,
          amountMinor,
          currency: payment.currency,
          method: request.method,
          kind: request.kind,
          reason,
          status: 'requested',
          requestedBy: request.requestedBy,
          endPlan: request.endPlan === true,
          requestedAt: now,
          statusAt: now,
        })
      ).toObject<RefundRecord>();
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      refund = await Refund.findOne({ idempotencyKey: key }).lean<RefundRecord>();
      if (!refund) throw error;
    }
    ctx.faults.reach('refund.recorded');
  }
  if (
    refund.paymentReference !== request.paymentReference ||
    refund.method !== request.method ||
    (request.amountMinor !== undefined && refund.amountMinor !== request.amountMinor)
  ) {
    throw new DomainError('CONFLICT', `The key ${key} was already used for a different refund.`, {
      details: { reason: 'KEY_REUSED', refundId: String(refund._id) },
    });
  }
  return { refund };
}

// ---------------------------------------------------------------------------
// Moving a refund on
// ---------------------------------------------------------------------------

/** Steps 2 onwards for a recorded refund; safe to run again at any point. */
async function driveRefund(ctx: RefundsContext, recorded: RefundRecord): Promise<RefundOutcome> {
  let refund = recorded;
  if (refund.status !== 'requested') return outcomeOf(refund);
  refund = await reserve(ctx, refund);
  if (refund.status !== 'requested') return outcomeOf(refund);

  if (refund.endPlan) {
    await endPlanBoughtBy(ctx, refund);
    ctx.faults.reach('refund.plan_ended');
  }

  if (refund.method === 'wallet') {
    await credit(
      String(refund.accountId),
      {
        amountMinor: refund.amountMinor,
        currency: refund.currency,
        key: `refund:${String(refund._id)}`,
        kind: 'refund',
        reference: refund.paymentReference,
        description: walletLineOf(refund),
      },
      { clock: ctx.clock, faults: ctx.faults },
    );
    ctx.faults.reach('refund.wallet_credited');
    await settleRefund(ctx, refund, 'processed');
    return outcomeOf(await reload(refund));
  }

  if (await walletHoldsMoneyOf(refund.paymentReference)) {
    // A top-up (or a payment put in the wallet) goes back to the card only
    // if it is still in the wallet: take it out first, once per refund.
    const taken = await debit(
      String(refund.accountId),
      {
        amountMinor: refund.amountMinor,
        currency: refund.currency,
        key: `refund-reversal:${String(refund._id)}`,
        kind: 'reversal',
        reference: refund.paymentReference,
        description: 'Refunded to your card',
      },
      { clock: ctx.clock, faults: ctx.faults },
    );
    if (!taken.ok) {
      await releaseHold(refund);
      return outcomeOf(await markRefused(ctx, refund, 'ALREADY_SPENT'));
    }
    ctx.faults.reach('refund.wallet_debited');
  }
  return refundToCard(ctx, refund);
}

/**
 * Counts the refund against its payment, once (its id in `refundHolds`), only
 * while the payment's refunds stay within its amount; refused otherwise.
 */
async function reserve(ctx: RefundsContext, refund: RefundRecord): Promise<RefundRecord> {
  const id = String(refund._id);
  const payment = await Payment.findOne(
    { reference: refund.paymentReference },
    { amountMinor: 1, refundHolds: 1, refundReleases: 1 },
  ).lean();
  if (!payment) throw new DomainError('INTERNAL', `the payment of refund ${id} vanished`);
  if (payment.refundHolds?.includes(id)) return refund;
  if (!payment.refundReleases?.includes(id)) {
    const room = payment.amountMinor - refund.amountMinor;
    const counted = await Payment.updateOne(
      {
        _id: payment._id,
        status: 'paid',
        refundHolds: { $ne: id },
        refundReleases: { $ne: id },
        $or: [{ refundedMinor: { $lte: room } }, { refundedMinor: { $exists: false } }],
      },
      { $inc: { refundedMinor: refund.amountMinor }, $push: { refundHolds: id } },
    );
    if (counted.modifiedCount === 1) {
      ctx.faults.reach('refund.reserved');
      return refund;
    }
    // Counted by a concurrent run of the same refund in between?
    const again = await Payment.findById(payment._id, { refundHolds: 1 }).lean();
    if (again?.refundHolds?.includes(id)) return refund;
  }
  return markRefused(ctx, refund, 'EXCEEDS_REFUNDABLE');
}

/** The refund counts against its payment no more (it failed or was refused), once. */
async function releaseHold(refund: RefundRecord): Promise<void> {
  const id = String(refund._id);
  await Payment.updateOne(
    { reference: refund.paymentReference, refundHolds: id },
    {
      $inc: { refundedMinor: -refund.amountMinor },
      $pull: { refundHolds: id },
      $addToSet: { refundReleases: id },
    },
  );
}

async function markRefused(
  ctx: RefundsContext,
  refund: RefundRecord,
  refusal: RefundRefusal,
): Promise<RefundRecord> {
  await Refund.updateOne(
    { _id: refund._id, status: 'requested' },
    { $set: { status: 'refused', refusal, statusAt: ctx.clock.now() } },
  );
  ctx.logger.info(
    { refundId: String(refund._id), reference: refund.paymentReference, refusal },
    'refund.refused',
  );
  return reload(refund);
}

/** The card part: one process at a time asks Paystack, after looking for an earlier request. */
async function refundToCard(ctx: RefundsContext, refund: RefundRecord): Promise<RefundOutcome> {
  const now = ctx.clock.now();
  const leaseUntil = new Date(now.getTime() + CALL_LEASE_MS);
  const leased = await Refund.findOneAndUpdate(
    {
      _id: refund._id,
      status: 'requested',
      $or: [{ callLeaseUntil: { $exists: false } }, { callLeaseUntil: { $lte: now } }],
    },
    { $set: { callLeaseUntil: leaseUntil } },
    { returnDocument: 'after' },
  ).lean<RefundRecord>();
  // Another process is asking Paystack right now, or the refund moved on meanwhile.
  if (!leased) return outcomeOf(await reload(refund));
  try {
    const earlier = await findAtProvider(ctx, leased);
    ctx.faults.reach('refund.checked_provider');
    if (earlier) {
      await settleRefund(ctx, leased, earlier.status, String(earlier.id));
      return outcomeOf(await reload(leased));
    }
    const result = await ctx.provider.refund({
      reference: leased.paymentReference,
      amountMinor: leased.amountMinor,
      currency: leased.currency,
      merchantNote: merchantNoteOf(leased),
      customerNote: customerNoteOf(leased),
    });
    ctx.faults.reach('refund.provider_called');
    await settleRefund(ctx, leased, result.status, String(result.id));
    return outcomeOf(await reload(leased));
  } catch (err) {
    // Only Paystack's own answers are outcomes here; anything else is a bug or a crash.
    if (!isDomainError(err, ['PAYMENT_REJECTED', 'UPSTREAM_FAILED'])) throw err;
    const message = err.message;
    if (err.code === 'PAYMENT_REJECTED') {
      const given = err.details?.providerMessage;
      const reason = typeof given === 'string' ? given : message;
      await settleRefund(ctx, leased, 'failed', undefined, reason);
      return { ...outcomeOf(await reload(leased)), state: 'failed', reason };
    }
    ctx.logger.warn(
      { refundId: String(leased._id), reference: leased.paymentReference, err },
      'refund.provider_unreachable',
    );
    await Refund.updateOne({ _id: leased._id }, { $set: { lastError: message } });
    return { ...outcomeOf(leased), state: 'retry_later', reason: message };
  } finally {
    // Let the next attempt in at once; a process that dies keeps it out until the lease ends.
    await Refund.updateOne(
      { _id: leased._id, callLeaseUntil: leaseUntil },
      { $unset: { callLeaseUntil: 1 } },
    );
  }
}

/** Tags every refund we send, so Paystack's refund list tells ours apart. */
function tagOf(refund: RefundRecord): string {
  return `[atl:${String(refund._id)}]`;
}

const TAG = /\[atl:[0-9a-f]{24}\]/;

function merchantNoteOf(refund: RefundRecord): string {
  const what = {
    deposit: 'trial deposit',
    cancellation: 'unused part of a cancelled plan',
    admin: 'refund',
  }[refund.kind];
  return `Atlantic ${what} ${tagOf(refund)}: ${refund.reason.slice(0, 200)}`;
}

function customerNoteOf(refund: RefundRecord): string {
  return {
    deposit: 'Your Atlantic trial deposit',
    cancellation: 'The unused part of your Atlantic plan',
    admin: 'A refund from Atlantic',
  }[refund.kind];
}

/**
 * This refund as Paystack already has it, if it does: the one tagged with our
 * id; else an untagged refund of the same amount that none of ours holds (one
 * asked for before refunds were tagged, or on Paystack's dashboard): in doubt,
 * the money is taken as already on its way rather than sent twice.
 */
async function findAtProvider(
  ctx: RefundsContext,
  refund: RefundRecord,
): Promise<RefundResult | null> {
  const refunds = await ctx.provider.listRefunds({ reference: refund.paymentReference });
  // Read now: a webhook may have told us this refund's Paystack id since `refund` was read.
  const held = await Refund.find(
    { paymentReference: refund.paymentReference, providerRefundId: { $exists: true } },
    { providerRefundId: 1 },
  ).lean();
  const mine =
    held.find((r) => r._id.equals(refund._id))?.providerRefundId ?? refund.providerRefundId;
  const known = mine ? refunds.find((r) => String(r.id) === mine) : undefined;
  if (known) return known;
  const tag = tagOf(refund);
  const tagged = refunds.find((r) => r.merchantNote?.includes(tag));
  if (tagged) return tagged;
  const taken = new Set(
    held.filter((r) => !r._id.equals(refund._id)).map((r) => r.providerRefundId),
  );
  return (
    refunds.find(
      (r) =>
        r.status !== 'failed' &&
        !TAG.test(r.merchantNote ?? '') &&
        r.amountMinor === refund.amountMinor &&
        !taken.has(String(r.id)),
    ) ?? null
  );
}

// ---------------------------------------------------------------------------
// Paystack's states
// ---------------------------------------------------------------------------

const rank: Record<RefundStatus, number> = {
  requested: 0,
  pending: 1,
  processing: 2,
  'needs-attention': 3,
  processed: 4,
  failed: 4,
  refused: 5,
};

/**
 * Moves a refund forward only (Paystack's events may arrive late, twice or out
 * of order). What a final state sets off is done before the state is written,
 * each part keyed by the refund, so a process that dies in between repeats
 * nothing and loses nothing. Returns whether this call moved it.
 */
async function settleRefund(
  ctx: RefundsContext,
  given: RefundRecord,
  status: RefundStatus,
  providerRefundId?: string,
  providerMessage?: string,
): Promise<boolean> {
  const refund = await reload(given);
  const newId = providerRefundId && !refund.providerRefundId ? providerRefundId : undefined;
  if (rank[refund.status] >= rank[status]) {
    if (newId) await recordProviderId(refund, newId);
    return false;
  }
  const id = String(refund._id);
  const now = ctx.clock.now();
  const set: Record<string, unknown> = { status, statusAt: now };
  if (newId) set.providerRefundId = newId;
  if (providerMessage) set.lastError = providerMessage;

  if (status === 'processed') {
    const note = await issueCreditNote(ctx, refund);
    if (note) set.creditNoteNumber = note.number;
    set.processedAt = now;
    await notify(
      {
        accountId: String(refund.accountId),
        event: refund.kind === 'deposit' ? 'deposit_refunded' : 'refund_processed',
        // A deposit is refunded once per payment; other refunds once each.
        period: refund.kind === 'deposit' ? refund.paymentReference : `refund:${id}`,
        data: { ...factsOf(refund, 'customer'), creditNoteNumber: note?.number },
      },
      { clock: ctx.clock },
    );
  } else if (status === 'failed') {
    await releaseHold(refund);
    await restoreTopUp(ctx, refund);
    let movedToWallet: RefundOutcome | undefined;
    if (refund.kind === 'cancellation' && refund.method === 'card') {
      // The customer was promised this money: it goes to the wallet instead.
      movedToWallet = await requestRefund(ctx, {
        key: `card-failed:${id}`,
        paymentReference: refund.paymentReference,
        amountMinor: refund.amountMinor,
        method: 'wallet',
        kind: 'cancellation',
        reason: `${refund.reason} (the card refund failed)`,
        requestedBy: { actor: 'system', channel: 'system' },
      });
    }
    await tellAdmins(ctx, refund, status, {
      providerMessage,
      movedToWallet: movedToWallet?.state === 'processed',
    });
  } else if (status === 'needs-attention') {
    await tellAdmins(ctx, refund, status, { providerMessage });
  }
  ctx.faults.reach('refund.announced');

  const earlier = (Object.keys(rank) as RefundStatus[]).filter(
    (s) => rank[s] < rank[status] && s !== 'refused',
  );
  try {
    const changed = await Refund.updateOne(
      { _id: refund._id, status: { $in: earlier } },
      { $set: set },
    );
    return changed.modifiedCount === 1;
  } catch (error) {
    // That Paystack id is held by another refund of ours (two of the same amount crossed).
    if (!isDuplicateKeyError(error) || !newId) throw error;
    delete set.providerRefundId;
    const changed = await Refund.updateOne(
      { _id: refund._id, status: { $in: earlier } },
      { $set: set },
    );
    return changed.modifiedCount === 1;
  }
}

async function recordProviderId(refund: RefundRecord, providerRefundId: string): Promise<void> {
  try {
    await Refund.updateOne(
      { _id: refund._id, providerRefundId: { $exists: false } },
      { $set: { providerRefundId } },
    );
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
}

async function tellAdmins(
  ctx: RefundsContext,
  refund: RefundRecord,
  status: 'failed' | 'needs-attention',
  extra: Record<string, unknown>,
): Promise<void> {
  const deposit = refund.kind === 'deposit';
  await notifyAdmins(
    {
      event: deposit ? 'deposit_refund_failed' : 'refund_failed',
      dedupKey: deposit
        ? `deposit_refund_failed:${refund.paymentReference}:${status}`
        : `refund_failed:${String(refund._id)}:${status}`,
      data: {
        ...factsOf(refund, 'admins'),
        accountId: String(refund.accountId),
        status,
        ...extra,
      },
    },
    { clock: ctx.clock },
  );
}

/** A failed card refund of wallet money: the money taken out goes back in, once. */
async function restoreTopUp(ctx: RefundsContext, refund: RefundRecord): Promise<void> {
  const id = String(refund._id);
  const taken = await LedgerEntry.findOne(
    { idempotencyKey: `refund-reversal:${id}`, status: 'applied' },
    { _id: 1 },
  ).lean();
  if (!taken) return;
  await credit(
    String(refund.accountId),
    {
      amountMinor: refund.amountMinor,
      currency: refund.currency,
      key: `refund-restore:${id}`,
      kind: 'reversal',
      reference: refund.paymentReference,
      description: 'The card refund failed: the money is back in your wallet',
    },
    { clock: ctx.clock, faults: ctx.faults },
  );
}

function factsOf(refund: RefundRecord, audience: 'customer' | 'admins'): Record<string, unknown> {
  return {
    refundId: String(refund._id),
    reference: refund.paymentReference,
    amountMinor: refund.amountMinor,
    currency: refund.currency,
    method: refund.method,
    kind: refund.kind,
    // An admin's reason is written for admins; the customer is told the kind.
    ...(audience === 'admins' || refund.kind !== 'admin' ? { reason: refund.reason } : {}),
  };
}

/**
 * A `refund.*` webhook: finds our refund by Paystack's refund id, else by the
 * transaction and the oldest of our unsettled card refunds on it without a
 * Paystack id yet (of the event's amount, when it names one), and moves it on.
 */
export async function applyRefundEvent(
  ctx: RefundsContext,
  event: {
    status: RefundStatus;
    providerRefundId?: string | undefined;
    reference?: string | undefined;
    amountMinor?: number | undefined;
  },
): Promise<'moved' | 'already' | 'unknown'> {
  // A refund an older version kept on the payment becomes a record first.
  if (event.reference) await adoptLegacyRefund(event.reference);
  let refund = event.providerRefundId
    ? await Refund.findOne({ providerRefundId: event.providerRefundId }).lean<RefundRecord>()
    : null;
  if (!refund && event.reference) {
    const open = await Refund.find({
      paymentReference: event.reference,
      method: 'card',
      status: { $in: ['requested', 'pending', 'processing', 'needs-attention'] },
      providerRefundId: { $exists: false },
    })
      .sort({ requestedAt: 1, _id: 1 })
      .lean<RefundRecord[]>();
    refund =
      open.find((r) => event.amountMinor === undefined || r.amountMinor === event.amountMinor) ??
      null;
  }
  if (!refund) return 'unknown';
  const moved = await settleRefund(ctx, refund, event.status, event.providerRefundId);
  return moved ? 'moved' : 'already';
}

// ---------------------------------------------------------------------------
// Credit notes, plans, wallet money
// ---------------------------------------------------------------------------

/**
 * The credit note of a processed refund, against its payment's invoice, once
 * (its reference is the refund's). null while the payment has no invoice yet
 * (resumeRefunds issues it later).
 */
async function issueCreditNote(
  ctx: RefundsContext,
  refund: RefundRecord,
): Promise<IssuedInvoice | null> {
  const credited = await getInvoiceByPaymentReference(refund.paymentReference);
  if (!credited || credited.kind !== 'invoice') return null;
  const what = credited.lines[0]?.description ?? 'payment';
  const description = {
    deposit: 'Trial deposit returned',
    cancellation: `Unused part of the period: ${what}`,
    admin: `Refund: ${what}`,
  }[refund.kind];
  const settings = await ctx.settings.get();
  const note = await issueInvoice(
    {
      accountId: String(refund.accountId),
      paymentReference: `refund:${String(refund._id)}`,
      kind: 'credit_note',
      credits: { invoiceNumber: credited.number, paymentReference: credited.paymentReference },
      customer: credited.customer,
      lines: [
        {
          description: `${description} (${refund.method === 'card' ? 'to your card' : 'to your wallet'})`,
          quantity: 1,
          unitMinor: refund.amountMinor,
        },
      ],
      currency: refund.currency,
      // The VAT of the credited invoice, so the VAT given back matches the VAT charged.
      vat: credited.vat,
      business: settings.business,
      paidAt: ctx.clock.now(),
    },
    { clock: ctx.clock, faults: ctx.faults },
  );
  ctx.faults.reach('refund.credit_noted');
  return note;
}

/** Whether money of this payment was put in the wallet (a top-up, or a purchase that came too late). */
async function walletHoldsMoneyOf(paymentReference: string): Promise<boolean> {
  const entry = await LedgerEntry.findOne(
    {
      idempotencyKey: { $in: [`topup:${paymentReference}`, `unapplied:${paymentReference}`] },
      status: { $in: ['pending', 'applied'] },
    },
    { _id: 1 },
  ).lean();
  return entry !== null;
}

/** The subscription a payment started, renewed or changed, if any. */
async function subscriptionBoughtBy(
  payment: Pick<PaymentRecord, 'reference' | 'purpose' | 'metadata'>,
): Promise<Pick<SubscriptionRecord, '_id' | 'status'> | null> {
  const sub = await Subscription.findOne(
    {
      $or: [
        { activatedByPaymentRef: payment.reference },
        { renewalPaymentRefs: payment.reference },
      ],
    },
    { _id: 1, status: 1 },
  ).lean<Pick<SubscriptionRecord, '_id' | 'status'>>();
  if (sub) return sub;
  if (payment.purpose !== 'plan_change') return null;
  const quoteId: unknown = (payment.metadata as { quoteId?: unknown } | undefined)?.quoteId;
  if (typeof quoteId !== 'string' || !/^[0-9a-f]{24}$/i.test(quoteId)) return null;
  const quote = await BillingQuote.findById(quoteId, { subscriptionId: 1 }).lean();
  if (!quote) return null;
  return Subscription.findById(quote.subscriptionId, { _id: 1, status: 1 }).lean<
    Pick<SubscriptionRecord, '_id' | 'status'>
  >();
}

async function endPlanBoughtBy(ctx: RefundsContext, refund: RefundRecord): Promise<void> {
  const payment = await Payment.findOne({ reference: refund.paymentReference }).lean();
  const sub = payment ? await subscriptionBoughtBy(payment) : null;
  if (!sub || !isLiveStatus(sub.status)) return;
  await cancel(sub._id, {
    atPeriodEnd: false,
    clock: ctx.clock,
    reason: `refunded (refund ${String(refund._id)}): ${refund.reason}`,
  });
}

function walletLineOf(refund: RefundRecord): string {
  return {
    deposit: 'Trial deposit returned to the wallet',
    cancellation: 'Unused part of the cancelled plan',
    admin: 'Refund to the wallet',
  }[refund.kind];
}

// ---------------------------------------------------------------------------
// Reading and resuming
// ---------------------------------------------------------------------------

/** A payment's refunds, oldest first. */
export async function listRefundsOfPayment(paymentReference: string): Promise<RefundView[]> {
  const refunds = await Refund.find({ paymentReference })
    .sort({ requestedAt: 1, _id: 1 })
    .lean<RefundRecord[]>();
  return refunds.map(viewOf);
}

/** Finds a refund by its key (the caller's idempotency key). */
export async function getRefundByKey(key: string): Promise<RefundView | null> {
  const refund = await Refund.findOne({ idempotencyKey: key }).lean<RefundRecord>();
  return refund ? viewOf(refund) : null;
}

/**
 * The safety net (re-verification runs it): refunds a process left
 * `requested` (Paystack unreachable, a crash) are moved on; processed ones
 * without a credit note get it; card refunds Paystack has been quiet about for
 * an hour are looked up in its refund list, in case a webhook was lost; refunds
 * older versions kept on the payment are moved to their own records. Returns
 * how many refunds it moved or finished.
 */
export async function resumeRefunds(ctx: RefundsContext): Promise<number> {
  let done = await adoptLegacyRefunds();
  const now = ctx.clock.now();

  const stuck = await Refund.find({
    status: 'requested',
    $or: [{ callLeaseUntil: { $exists: false } }, { callLeaseUntil: { $lte: now } }],
  })
    .sort({ requestedAt: 1 })
    .limit(100)
    .lean<RefundRecord[]>();
  for (const refund of stuck) {
    try {
      await driveRefund(ctx, refund);
      done += 1;
    } catch (error) {
      if (!isDomainError(error)) throw error;
      ctx.logger.warn({ err: error, refundId: String(refund._id) }, 'refund.resume_failed');
    }
  }

  const unnoted = await Refund.find({ status: 'processed', creditNoteNumber: { $exists: false } })
    .limit(100)
    .lean<RefundRecord[]>();
  for (const refund of unnoted) {
    const note = await issueCreditNote(ctx, refund);
    if (!note) continue;
    await Refund.updateOne(
      { _id: refund._id, creditNoteNumber: { $exists: false } },
      { $set: { creditNoteNumber: note.number } },
    );
    done += 1;
  }

  const quietSince = new Date(now.getTime() - QUIET_MS);
  const quiet = await Refund.find({
    method: 'card',
    status: { $in: ['pending', 'processing', 'needs-attention'] },
    statusAt: { $lte: quietSince },
    $or: [{ checkedAt: { $exists: false } }, { checkedAt: { $lte: quietSince } }],
  })
    .sort({ statusAt: 1 })
    .limit(50)
    .lean<RefundRecord[]>();
  for (const refund of quiet) {
    await Refund.updateOne({ _id: refund._id }, { $set: { checkedAt: now } });
    try {
      const found = await findAtProvider(ctx, refund);
      if (found && (await settleRefund(ctx, refund, found.status, String(found.id)))) done += 1;
    } catch (error) {
      if (!isDomainError(error, ['PAYMENT_REJECTED', 'UPSTREAM_FAILED'])) throw error;
      ctx.logger.warn({ err: error, refundId: String(refund._id) }, 'refund.check_failed');
    }
  }
  return done;
}

/** Moves refunds that older versions kept on their payment (`Payment.refund`) to records. */
async function adoptLegacyRefunds(): Promise<number> {
  const payments = await Payment.find({ refund: { $exists: true } }, { reference: 1 })
    .limit(100)
    .lean();
  for (const payment of payments) await adoptLegacyRefund(payment.reference);
  return payments.length;
}

async function adoptLegacyRefund(reference: string): Promise<void> {
  const payment = await Payment.findOne({ reference, refund: { $exists: true } }).lean();
  const legacy = payment?.refund;
  if (!payment || !legacy) return;
  const key = `deposit:${reference}`;
  try {
    await Refund.create({
      idempotencyKey: key,
      paymentReference: reference,
      accountId: payment.accountId,
      amountMinor: legacy.amountMinor,
      currency: payment.currency,
      method: legacy.method,
      kind: payment.purpose === 'trial_deposit' ? 'deposit' : 'admin',
      reason: legacy.reason,
      status: legacy.status,
      requestedBy: { actor: 'system', channel: 'system' },
      requestedAt: legacy.requestedAt,
      statusAt: legacy.updatedAt,
      ...(legacy.providerRefundId ? { providerRefundId: legacy.providerRefundId } : {}),
      ...(legacy.status === 'processed' ? { processedAt: legacy.updatedAt } : {}),
    });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
  const refund = await Refund.findOne({ idempotencyKey: key }).lean<RefundRecord>();
  if (refund && refund.status !== 'failed' && refund.status !== 'refused') {
    const id = String(refund._id);
    await Payment.updateOne(
      { _id: payment._id, refundHolds: { $ne: id } },
      { $inc: { refundedMinor: refund.amountMinor }, $push: { refundHolds: id } },
    );
  }
  await Payment.updateOne({ _id: payment._id }, { $unset: { refund: 1 } });
}

async function reload(refund: RefundRecord): Promise<RefundRecord> {
  const fresh = await Refund.findById(refund._id).lean<RefundRecord>();
  if (!fresh) throw new DomainError('INTERNAL', `refund ${String(refund._id)} vanished`);
  return fresh;
}

function outcomeOf(refund: RefundRecord): RefundOutcome {
  const base: OutcomeBase = {
    refundId: String(refund._id),
    method: refund.method,
    amountMinor: refund.amountMinor,
    currency: refund.currency,
    creditNoteNumber: refund.creditNoteNumber ?? undefined,
  };
  switch (refund.status) {
    case 'refused': {
      const refusal = refund.refusal ?? 'EXCEEDS_REFUNDABLE';
      return { ...base, state: 'refused', refusal, reason: refusalText[refusal] };
    }
    case 'failed':
    case 'needs-attention':
      return {
        ...base,
        state: refund.status,
        reason: refund.lastError ?? 'the refund did not go through',
      };
    default:
      return { ...base, state: refund.status };
  }
}

function viewOf(refund: RefundRecord): RefundView {
  return {
    id: String(refund._id),
    paymentReference: refund.paymentReference,
    accountId: String(refund.accountId),
    amountMinor: refund.amountMinor,
    currency: refund.currency,
    method: refund.method,
    kind: refund.kind,
    reason: refund.reason,
    status: refund.status,
    refusal: refund.refusal ?? undefined,
    providerRefundId: refund.providerRefundId ?? undefined,
    creditNoteNumber: refund.creditNoteNumber ?? undefined,
    requestedBy: { actor: refund.requestedBy.actor, channel: refund.requestedBy.channel },
    requestedAt: refund.requestedAt,
    processedAt: refund.processedAt ?? undefined,
  };
}

function invalid(field: string, message: string): never {
  throw new DomainError('VALIDATION_FAILED', message, { details: { field } });
}
