import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

export const ledgerEntryKinds = [
  'topup',
  'debit',
  'refund',
  'credit',
  'adjustment',
  'reversal',
] as const;
export type LedgerEntryKind = (typeof ledgerEntryKinds)[number];

/**
 * pending: recorded, not yet decided by the wallet (a crash may leave it so; any
 *   retry with the same key, or recoverPendingEntries, decides it).
 * applied: the amount is in the wallet balance.
 * rejected: a debit the wallet refused for lack of balance; it never moves money.
 */
export const ledgerEntryStatuses = ['pending', 'applied', 'rejected'] as const;
export type LedgerEntryStatus = (typeof ledgerEntryStatuses)[number];

/**
 * One movement of money in a wallet, keyed by the caller's idempotency key
 * (`topup:<paystack reference>`, `payg:<account>:<hour>`). Amounts are signed:
 * credits positive, debits negative. The wallet balance is the sum of the
 * applied entries; reconcileWallets checks and restores that.
 */
const ledgerEntrySchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    idempotencyKey: { type: String, required: true, minlength: 1, maxlength: 200 },
    kind: { type: String, enum: ledgerEntryKinds, required: true },
    amountMinor: {
      type: Number,
      required: true,
      validate: {
        validator: (v: number) => Number.isSafeInteger(v) && v !== 0,
        message: 'amountMinor must be a non-zero whole number of minor units',
      },
    },
    currency: { type: String, enum: CURRENCIES, required: true },
    status: { type: String, enum: ledgerEntryStatuses, required: true, default: 'pending' },
    /** The wallet's `decisionSeq` read before this entry was recorded (see core/wallet.ts). */
    seqAtRecord: { type: Number, required: true, min: 0 },
    /** The wallet decision that applied or refused this entry (1-based, per account). */
    seq: { type: Number, min: 1 },
    /** Balance right after this entry was decided, when the deciding call lived to see it. */
    balanceAfterMinor: { type: Number, min: 0 },
    /** The payment reference behind a top-up or refund. */
    reference: { type: String, maxlength: 200 },
    description: { type: String, required: true, maxlength: 500 },
    createdAt: { type: Date, required: true },
    /** When the entry was applied (or refused): set with its status. */
    appliedAt: { type: Date },
  },
  { strict: 'throw', versionKey: false },
);

ledgerEntrySchema.index({ idempotencyKey: 1 }, { unique: true });
// One entry per wallet decision: a second writer of the same position fails loudly.
ledgerEntrySchema.index(
  { accountId: 1, seq: -1 },
  { unique: true, partialFilterExpression: { seq: { $exists: true } } },
);
ledgerEntrySchema.index({ status: 1, createdAt: 1 });
ledgerEntrySchema.index({ accountId: 1, status: 1, createdAt: 1 });

export type LedgerEntryData = InferSchemaType<typeof ledgerEntrySchema>;
export type LedgerEntryDocument = HydratedDocument<LedgerEntryData>;

export const LedgerEntry = mongoose.model('LedgerEntry', ledgerEntrySchema);
export type LedgerEntryModel = typeof LedgerEntry;

/** The LedgerEntry model on another connection (tests use it to act as a second process). */
export function ledgerEntryModelOn(connection: Connection): LedgerEntryModel {
  if (connection === mongoose.connection) return LedgerEntry;
  return (
    (connection.models.LedgerEntry as LedgerEntryModel | undefined) ??
    connection.model('LedgerEntry', ledgerEntrySchema)
  );
}
