import mongoose, {
  Schema,
  type Connection,
  type HydratedDocument,
  type InferSchemaType,
} from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

/**
 * How many of its latest decisions a wallet remembers (`recentDecisions`). An
 * entry must be decided within this many decisions of being recorded; core/wallet.ts
 * explains why that makes applying a ledger entry exactly-once.
 */
export const WALLET_DECISION_WINDOW = 500;

/**
 * The prepaid (PAYG) balance of one account, in one currency for its whole life.
 *
 * The balance moves only through core/wallet.ts, together with a ledger entry:
 * each entry is *decided* once by one conditional update of this document that
 * bumps `decisionSeq` and pushes `+<entryId>` (applied) or `-<entryId>`
 * (refused for balance) onto `recentDecisions`, keeping the last
 * WALLET_DECISION_WINDOW tokens. The `min: 0` here documents the invariant; the
 * guard that keeps it is the `balanceMinor: { $gte: debit }` filter.
 */
const walletSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    currency: { type: String, enum: CURRENCIES, required: true },
    balanceMinor: { type: Number, required: true, min: 0, default: 0 },
    /** Count of entries decided (applied or refused) on this wallet. */
    decisionSeq: { type: Number, required: true, min: 0, default: 0 },
    /** Tokens of the latest decisions, oldest first: `+id` applied, `-id` refused. */
    recentDecisions: { type: [String], required: true, default: () => [] },
    /**
     * Auto top-up, set by the customer (off unless set): when the balance is
     * below `thresholdMinor`, the saved card is charged `amountMinor`
     * (core/payments/auto-topup.ts).
     */
    autoTopUp: {
      type: new Schema(
        {
          thresholdMinor: { type: Number, required: true, min: 0 },
          amountMinor: { type: Number, required: true, min: 1 },
        },
        { _id: false, strict: 'throw' },
      ),
      default: undefined,
    },
  },
  // updatedAt: gateways re-read the access facts of accounts written lately (core/proxy-credentials.ts).
  { strict: 'throw', versionKey: false, timestamps: { createdAt: false, updatedAt: true } },
);

walletSchema.index({ accountId: 1 }, { unique: true });
walletSchema.index({ updatedAt: 1 });

export type WalletData = InferSchemaType<typeof walletSchema>;
export type WalletDocument = HydratedDocument<WalletData>;

export const Wallet = mongoose.model('Wallet', walletSchema);
export type WalletModel = typeof Wallet;

/** The Wallet model on another connection (tests use it to act as a second process). */
export function walletModelOn(connection: Connection): WalletModel {
  if (connection === mongoose.connection) return Wallet;
  return (
    (connection.models.Wallet as WalletModel | undefined) ??
    connection.model('Wallet', walletSchema)
  );
}
