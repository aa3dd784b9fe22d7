/**
 * Stored quotes (models/billing-quote.ts): what a customer was shown before
 * confirming something that moves money, claimed once when they confirm.
 */
import type { Types } from 'mongoose';
import { DomainError } from '../lib/errors.js';
import { BillingQuote, type BillingQuoteRecord } from '../models/billing-quote.js';
import { getSubscription } from './subscriptions.js';

/** How long a customer has to confirm what they were shown. */
export const QUOTE_TTL_MS = 15 * 60_000;

/**
 * open and unexpired -> confirming (one conditional update), after checking
 * the subscription is as quoted; confirming or done are returned as they are.
 */
export async function claimQuote(
  accountId: Types.ObjectId,
  quoteId: string,
  now: Date,
  family: 'cancel' | 'plan_change',
): Promise<BillingQuoteRecord> {
  const found = /^[0-9a-f]{24}$/i.test(quoteId)
    ? await BillingQuote.findOne({ _id: quoteId, accountId }).lean<BillingQuoteRecord>()
    : null;
  const ours =
    found &&
    (family === 'plan_change' ? found.kind === 'plan_change' : found.kind !== 'plan_change');
  if (!found || !ours)
    throw new DomainError('NOT_FOUND', 'That quote does not exist; ask for a new one.');
  if (found.status === 'confirming' || found.status === 'done') return found;
  if (found.status === 'stale') throw staleQuote();
  if (found.expiresAt.getTime() <= now.getTime()) {
    throw new DomainError('CONFLICT', 'That quote has expired; ask for a new one.', {
      details: { reason: 'EXPIRED' },
    });
  }
  const sub = await getSubscription(found.subscriptionId);
  if (sub.revision !== found.subscriptionRevision) {
    await BillingQuote.updateOne({ _id: found._id, status: 'open' }, { $set: { status: 'stale' } });
    throw staleQuote();
  }
  const claimed = await BillingQuote.findOneAndUpdate(
    { _id: found._id, status: 'open', expiresAt: { $gt: now } },
    { $set: { status: 'confirming', confirmedAt: now } },
    { returnDocument: 'after' },
  ).lean<BillingQuoteRecord>();
  // Lost a race with another confirm of the same quote: carry on with its state.
  return claimed ?? (await claimQuote(accountId, quoteId, now, family));
}

export function staleQuote(): DomainError {
  return new DomainError('CONFLICT', 'Your plan changed since that quote; ask for a new one.', {
    details: { reason: 'STALE' },
  });
}

/** confirming -> done, once; returns the quote as it is then. */
export async function markQuoteDone(
  quoteId: Types.ObjectId | string,
  now: Date,
): Promise<BillingQuoteRecord | null> {
  await BillingQuote.updateOne(
    { _id: quoteId, status: 'confirming' },
    { $set: { status: 'done', doneAt: now } },
  );
  return BillingQuote.findById(quoteId).lean<BillingQuoteRecord>();
}
