/**
 * The PAYG wallet and its ledger, without multi-document transactions.
 *
 * Flow of one credit or debit (every step may die; a rerun with the same key,
 * or recoverPendingEntries, finishes the job):
 *
 *   0. read (or lazily create) the wallet; note its `decisionSeq` as `w`;
 *   1. insert the ledger entry `pending` under its unique idempotency key, with
 *      `seqAtRecord: w` (a duplicate key means "already recorded": continue
 *      with the stored entry);                             -> `wallet.entry_recorded`
 *   2. decide the entry with ONE conditional update of the wallet:
 *        filter  { accountId, currency, balanceMinor >= debit,
 *                  recentDecisions ∌ "+id", "-id", decisionSeq < w + WINDOW }
 *        update  $inc balanceMinor by the signed amount, $inc decisionSeq,
 *                $push "+id" keeping the last WINDOW tokens
 *      or, for a debit the balance cannot cover, the same filter with
 *      `balanceMinor < debit` pushing "-id" and moving no money;  -> `wallet.decided`
 *   3. mark the entry `applied` / `rejected` with its decision number `seq`.
 *
 * Why an entry is never applied twice: say E was decided as decision number s.
 * The wallet was read (w) before E existed, so s > w. A later step-2 update
 * can only match a wallet whose decisionSeq q < w + WINDOW, so s > w > q - WINDOW:
 * decision s is one of the last WINDOW decisions, whose tokens the wallet keeps,
 * so `recentDecisions ∌ "±id"` fails. Hence each entry is decided at most once,
 * the balance equals the sum of the applied entries, and the `$gte` guard keeps
 * it non-negative. An entry that stays undecided while WINDOW other decisions
 * pass can no longer be told apart; it is reported (INTERNAL error from the
 * retry, `unresolved` from recovery and reconciliation) instead of guessed.
 * With WINDOW = 500 and recovery run every few minutes, that needs 500 wallet
 * movements of one account within minutes of a crash.
 *
 * Why a refusal is a wallet decision too: if step 2's refusal were only written
 * on the entry, a racing retry of the same key could still apply it after a
 * top-up arrived, leaving a "rejected" entry whose money moved.
 */
import { notifyAdmins } from './notifications.js';
import { toAccountId, type AccountId } from './account-id.js';
import { isDuplicateKeyError } from '../models/errors.js';
import { findOneByKey, insertOne, updateOne } from '../models/batching.js';
import mongoose, { Types, type Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { noFaults, type FaultPoints } from '../lib/faults.js';
import { isCurrency, type Currency } from '../lib/money.js';
import {
  ledgerEntryModelOn,
  type LedgerEntryData,
  type LedgerEntryKind,
  type LedgerEntryModel,
  type LedgerEntryStatus,
} from '../models/ledger-entry.js';
import {
  WALLET_DECISION_WINDOW,
  walletModelOn,
  type WalletData,
  type WalletModel,
} from '../models/wallet.js';

export type { AccountId };

export const DEFAULT_WALLET_CURRENCY: Currency = 'NGN';

/** A step-2 retry only repeats when the balance moved between its two guarded updates. */
const MAX_DECISION_ATTEMPTS = 20;

export interface DatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

export interface MoneyFlowOptions extends DatabaseOption {
  clock: Clock;
  /** Crash points for tests: `wallet.entry_recorded`, `wallet.decided`. */
  faults?: FaultPoints;
}

export type CreditKind = Exclude<LedgerEntryKind, 'debit'>;
export type DebitKind = Extract<LedgerEntryKind, 'debit' | 'adjustment' | 'reversal'>;

export interface CreditRequest {
  /** Positive, in minor units of `currency`. */
  amountMinor: number;
  currency: Currency;
  /** Idempotency key, unique across all ledger entries: `topup:<reference>`. */
  key: string;
  /** Defaults to `credit`. */
  kind?: CreditKind;
  /** The payment reference behind the money, if any. */
  reference?: string;
  description: string;
}

export interface DebitRequest {
  /** Positive, in minor units of `currency`; the entry stores it negated. */
  amountMinor: number;
  currency: Currency;
  key: string;
  /** Defaults to `debit`. */
  kind?: DebitKind;
  reference?: string;
  description: string;
}

export interface CreditResult {
  ok: true;
  /** Balance right after this entry, or (when a recovery applied it) the balance now. */
  balanceMinor: number;
  entryId: string;
}

export type DebitResult =
  | { ok: true; balanceMinor: number; entryId: string }
  | { ok: false; code: 'INSUFFICIENT_BALANCE'; balanceMinor: number; entryId: string };

export interface WalletView {
  accountId: string;
  currency: Currency;
  balanceMinor: number;
}

export interface LedgerEntryView {
  id: string;
  accountId: string;
  idempotencyKey: string;
  kind: LedgerEntryKind;
  /** Signed: credits positive, debits negative. */
  amountMinor: number;
  currency: Currency;
  status: LedgerEntryStatus;
  /** Position of this entry among the wallet's decisions (1-based). */
  seq: number | undefined;
  balanceAfterMinor: number | undefined;
  reference: string | undefined;
  description: string;
  createdAt: Date;
  appliedAt: Date | undefined;
}

interface Models {
  Wallet: WalletModel;
  LedgerEntry: LedgerEntryModel;
}

type WalletRecord = WalletData & { _id: Types.ObjectId };
type EntryRecord = LedgerEntryData & { _id: Types.ObjectId };

function modelsOn(connection: Connection = mongoose.connection): Models {
  return { Wallet: walletModelOn(connection), LedgerEntry: ledgerEntryModelOn(connection) };
}

function walletView(wallet: WalletRecord): WalletView {
  return {
    accountId: String(wallet.accountId),
    currency: wallet.currency,
    balanceMinor: wallet.balanceMinor,
  };
}

async function findOrCreateWallet(
  models: Models,
  accountId: Types.ObjectId,
  currency: Currency,
): Promise<WalletRecord> {
  const found = await findOneByKey<WalletRecord>(models.Wallet, 'accountId', accountId);
  if (found) return found;
  try {
    return await insertOne<WalletRecord>(models.Wallet, {
      accountId,
      currency,
      balanceMinor: 0,
      decisionSeq: 0,
      recentDecisions: [],
    });
  } catch (error) {
    // Two first uses raced on the unique accountId; the loser reads the winner's wallet.
    if (!isDuplicateKeyError(error)) throw error;
    const winner = await findOneByKey<WalletRecord>(models.Wallet, 'accountId', accountId);
    if (!winner) throw error;
    return winner;
  }
}

/** The account's wallet, created empty in `currency` (default NGN) on first use. */
export async function getWallet(
  accountId: AccountId,
  options: DatabaseOption & { currency?: Currency } = {},
): Promise<WalletView> {
  const wallet = await findOrCreateWallet(
    modelsOn(options.connection),
    toAccountId(accountId),
    options.currency ?? DEFAULT_WALLET_CURRENCY,
  );
  return walletView(wallet);
}

interface EntrySpec {
  accountId: Types.ObjectId;
  idempotencyKey: string;
  kind: LedgerEntryKind;
  amountMinor: number;
  currency: Currency;
  reference: string | undefined;
  description: string;
}

function validateRequest(request: {
  amountMinor: number;
  currency: string;
  key: string;
  description: string;
}): void {
  const problem = (field: string, message: string): DomainError =>
    new DomainError('VALIDATION_FAILED', message, { details: { field } });
  if (!Number.isSafeInteger(request.amountMinor) || request.amountMinor <= 0) {
    throw problem('amountMinor', 'The amount must be a positive whole number of minor units.');
  }
  if (!isCurrency(request.currency)) throw problem('currency', 'That currency is not supported.');
  if (typeof request.key !== 'string' || request.key.length === 0 || request.key.length > 200) {
    throw problem('key', 'An idempotency key of 1 to 200 characters is required.');
  }
  if (request.description.trim().length === 0) {
    throw problem('description', 'A ledger entry needs a description.');
  }
}

async function recordEntry(
  models: Models,
  spec: EntrySpec,
  seqAtRecord: number,
  clock: Clock,
): Promise<EntryRecord> {
  try {
    return await insertOne<EntryRecord>(models.LedgerEntry, {
      ...spec,
      status: 'pending',
      seqAtRecord,
      createdAt: clock.now(),
    });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    const existing = await models.LedgerEntry.findOne({
      idempotencyKey: spec.idempotencyKey,
    }).lean<EntryRecord>();
    if (!existing) throw error;
    if (
      !existing.accountId.equals(spec.accountId) ||
      existing.amountMinor !== spec.amountMinor ||
      existing.currency !== spec.currency ||
      existing.kind !== spec.kind
    ) {
      throw new DomainError(
        'CONFLICT',
        `The key ${spec.idempotencyKey} was already used for a different ledger entry.`,
        { details: { key: spec.idempotencyKey, entryId: String(existing._id) } },
      );
    }
    return existing;
  }
}

interface Decision {
  status: 'applied' | 'rejected';
  seq: number;
  balanceAfterMinor?: number;
}

/** Finds an entry's token among the wallet's remembered decisions. */
function locateDecision(wallet: WalletRecord, entryId: string): Decision | null {
  const tokens = wallet.recentDecisions;
  for (const [status, token] of [
    ['applied', `+${entryId}`],
    ['rejected', `-${entryId}`],
  ] as const) {
    const index = tokens.indexOf(token);
    if (index >= 0) return { status, seq: wallet.decisionSeq - (tokens.length - 1 - index) };
  }
  return null;
}

async function markDecided(
  models: Models,
  entry: EntryRecord,
  decision: Decision,
  clock: Clock,
): Promise<EntryRecord> {
  const set: Record<string, unknown> = {
    status: decision.status,
    seq: decision.seq,
    appliedAt: clock.now(),
  };
  if (decision.balanceAfterMinor !== undefined) set.balanceAfterMinor = decision.balanceAfterMinor;
  // Batched with the other entries decided in this turn. Whether this statement
  // or a racing caller's (a retry, the recovery job) marked the entry, both took
  // the decision from the wallet's record, so the entry reads as below.
  await updateOne(models.LedgerEntry, {
    filter: { _id: entry._id, status: 'pending' },
    update: { $set: set },
  });
  return { ...entry, ...set };
}

/** Step 2 and 3 for one pending entry; safe to run any number of times, concurrently. */
async function decideEntry(
  models: Models,
  entry: EntryRecord,
  clock: Clock,
  faults: FaultPoints,
): Promise<EntryRecord> {
  if (entry.status !== 'pending') return entry;
  const entryId = String(entry._id);
  const applyToken = `+${entryId}`;
  const refuseToken = `-${entryId}`;
  const debitMinor = entry.amountMinor < 0 ? -entry.amountMinor : 0;
  const undecided = {
    accountId: entry.accountId,
    currency: entry.currency,
    recentDecisions: { $nin: [applyToken, refuseToken] },
    decisionSeq: { $lt: entry.seqAtRecord + WALLET_DECISION_WINDOW },
  };
  const push = (token: string) => ({
    recentDecisions: { $each: [token], $slice: -WALLET_DECISION_WINDOW },
  });

  for (let attempt = 0; attempt < MAX_DECISION_ATTEMPTS; attempt++) {
    const applied = await models.Wallet.findOneAndUpdate(
      { ...undecided, balanceMinor: { $gte: debitMinor } },
      { $inc: { balanceMinor: entry.amountMinor, decisionSeq: 1 }, $push: push(applyToken) },
      { returnDocument: 'after' },
    ).lean<WalletRecord>();
    if (applied) {
      faults.reach('wallet.decided');
      return markDecided(
        models,
        entry,
        { status: 'applied', seq: applied.decisionSeq, balanceAfterMinor: applied.balanceMinor },
        clock,
      );
    }
    if (debitMinor > 0) {
      const refused = await models.Wallet.findOneAndUpdate(
        { ...undecided, balanceMinor: { $lt: debitMinor } },
        { $inc: { decisionSeq: 1 }, $push: push(refuseToken) },
        { returnDocument: 'after' },
      ).lean<WalletRecord>();
      if (refused) {
        faults.reach('wallet.decided');
        return markDecided(
          models,
          entry,
          { status: 'rejected', seq: refused.decisionSeq, balanceAfterMinor: refused.balanceMinor },
          clock,
        );
      }
    }
    const wallet = await models.Wallet.findOne({
      accountId: entry.accountId,
    }).lean<WalletRecord>();
    if (!wallet) {
      throw new DomainError('INTERNAL', 'The wallet of a ledger entry is missing.', {
        details: { entryId },
      });
    }
    const earlier = locateDecision(wallet, entryId);
    if (earlier) return markDecided(models, entry, earlier, clock);
    if (wallet.currency !== entry.currency) {
      throw new DomainError('INTERNAL', 'A ledger entry does not match its wallet currency.', {
        details: { entryId, walletCurrency: wallet.currency, currency: entry.currency },
      });
    }
    if (wallet.decisionSeq >= entry.seqAtRecord + WALLET_DECISION_WINDOW) {
      throw new DomainError(
        'INTERNAL',
        'A ledger entry stayed undecided for too long to tell whether it reached the balance; it needs an operator.',
        { details: { entryId, key: entry.idempotencyKey } },
      );
    }
    // Neither guard matched: the balance moved between the two updates. Try again.
  }
  throw new DomainError('CONFLICT', 'The wallet is busy; try again.', { details: { entryId } });
}

async function runEntry(
  spec: EntrySpec,
  options: MoneyFlowOptions,
): Promise<{ entry: EntryRecord; models: Models }> {
  const models = modelsOn(options.connection);
  const faults = options.faults ?? noFaults;
  const wallet = await findOrCreateWallet(models, spec.accountId, spec.currency);
  if (wallet.currency !== spec.currency) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `This wallet holds ${wallet.currency}; an amount in ${spec.currency} cannot move it.`,
      { details: { field: 'currency', walletCurrency: wallet.currency, currency: spec.currency } },
    );
  }
  const recorded = await recordEntry(models, spec, wallet.decisionSeq, options.clock);
  faults.reach('wallet.entry_recorded');
  const entry = await decideEntry(models, recorded, options.clock, faults);
  return { entry, models };
}

async function balanceOf(models: Models, entry: EntryRecord): Promise<number> {
  if (typeof entry.balanceAfterMinor === 'number') return entry.balanceAfterMinor;
  const wallet = await models.Wallet.findOne({ accountId: entry.accountId }).lean<WalletRecord>();
  return wallet?.balanceMinor ?? 0;
}

/**
 * Adds money to the wallet, once per key. A repeated key returns the first
 * outcome; the same key with a different amount, currency, kind or account is a
 * CONFLICT, and a currency other than the wallet's is VALIDATION_FAILED.
 */
export async function credit(
  accountId: AccountId,
  request: CreditRequest,
  options: MoneyFlowOptions,
): Promise<CreditResult> {
  validateRequest(request);
  const { entry, models } = await runEntry(
    {
      accountId: toAccountId(accountId),
      idempotencyKey: request.key,
      kind: request.kind ?? 'credit',
      amountMinor: request.amountMinor,
      currency: request.currency,
      reference: request.reference,
      description: request.description,
    },
    options,
  );
  return { ok: true, balanceMinor: await balanceOf(models, entry), entryId: String(entry._id) };
}

/**
 * Takes money from the wallet if the balance covers it, once per key. A refusal
 * is an outcome (`INSUFFICIENT_BALANCE`) and is final for that key: a retry
 * returns it again even after a top-up (use a new key to try again).
 */
export async function debit(
  accountId: AccountId,
  request: DebitRequest,
  options: MoneyFlowOptions,
): Promise<DebitResult> {
  validateRequest(request);
  const { entry, models } = await runEntry(
    {
      accountId: toAccountId(accountId),
      idempotencyKey: request.key,
      kind: request.kind ?? 'debit',
      amountMinor: -request.amountMinor,
      currency: request.currency,
      reference: request.reference,
      description: request.description,
    },
    options,
  );
  const balanceMinor = await balanceOf(models, entry);
  const entryId = String(entry._id);
  if (entry.status === 'rejected') {
    return { ok: false, code: 'INSUFFICIENT_BALANCE', balanceMinor, entryId };
  }
  return { ok: true, balanceMinor, entryId };
}

function entryView(entry: EntryRecord): LedgerEntryView {
  return {
    id: String(entry._id),
    accountId: String(entry.accountId),
    idempotencyKey: entry.idempotencyKey,
    kind: entry.kind,
    amountMinor: entry.amountMinor,
    currency: entry.currency,
    status: entry.status,
    seq: entry.seq ?? undefined,
    balanceAfterMinor: entry.balanceAfterMinor ?? undefined,
    reference: entry.reference ?? undefined,
    description: entry.description,
    createdAt: entry.createdAt,
    appliedAt: entry.appliedAt ?? undefined,
  };
}

export interface ListLedgerOptions extends DatabaseOption {
  /** At most this many entries (default 50, at most 500). */
  limit?: number;
  /** Only entries decided before this position (`seq`): pass the previous page's `nextBefore`. */
  before?: number;
  /** Also list debits refused for balance (default false). */
  includeRejected?: boolean;
}

/**
 * The account's decided entries, newest first, in the order the wallet applied
 * them. Entries still being decided (or left pending by a crash until recovery)
 * are not listed.
 */
export async function listLedger(
  accountId: AccountId,
  options: ListLedgerOptions = {},
): Promise<{ entries: LedgerEntryView[]; nextBefore: number | null }> {
  const { LedgerEntry } = modelsOn(options.connection);
  const limit = Math.min(Math.max(Math.trunc(options.limit ?? 50), 1), 500);
  const entries = await LedgerEntry.find({
    accountId: toAccountId(accountId),
    status: options.includeRejected === true ? { $in: ['applied', 'rejected'] } : 'applied',
    seq: options.before === undefined ? { $exists: true } : { $lt: options.before },
  })
    .sort({ seq: -1 })
    .limit(limit)
    .lean<EntryRecord[]>();
  const last = entries.at(-1);
  return {
    entries: entries.map(entryView),
    nextBefore: entries.length === limit && typeof last?.seq === 'number' ? last.seq : null,
  };
}

export interface RecoveryReport {
  applied: number;
  rejected: number;
  /** Entries that could not be decided; each needs an operator (see the module comment). */
  unresolved: { entryId: string; key: string; message: string }[];
}

/**
 * Decides every entry left pending (by a crash between steps 1 and 3) that was
 * recorded at least `olderThanMs` ago (default 0: all). Safe to run while
 * debits are in flight and on several workers at once.
 */
export async function recoverPendingEntries(
  clock: Clock,
  options: DatabaseOption & { olderThanMs?: number; limit?: number; faults?: FaultPoints } = {},
): Promise<RecoveryReport> {
  const models = modelsOn(options.connection);
  const cutoff = new Date(clock.now().getTime() - (options.olderThanMs ?? 0));
  const pending = await models.LedgerEntry.find({ status: 'pending', createdAt: { $lte: cutoff } })
    .sort({ createdAt: 1 })
    .limit(options.limit ?? 1000)
    .lean<EntryRecord[]>();
  const report: RecoveryReport = { applied: 0, rejected: 0, unresolved: [] };
  for (const entry of pending) {
    try {
      const decided = await decideEntry(models, entry, clock, options.faults ?? noFaults);
      if (decided.status === 'applied') report.applied += 1;
      if (decided.status === 'rejected') report.rejected += 1;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      report.unresolved.push({
        entryId: String(entry._id),
        key: entry.idempotencyKey,
        message: error.message,
      });
    }
  }
  return report;
}

export interface WalletDrift {
  accountId: string;
  currency: Currency;
  /** The balance the wallet held when it was checked. */
  balanceMinor: number;
  /** The sum of the applied ledger entries up to the same decision. */
  ledgerBalanceMinor: number;
  /** balanceMinor - ledgerBalanceMinor. */
  driftMinor: number;
  /** True when `fix` rebuilt the balance from the ledger. */
  fixed: boolean;
  /** Why a drifted balance was left alone, if it was. */
  note?: string;
  /** Pending entries too old to tell whether they reached the balance. */
  unresolvedEntryIds: string[];
}

export interface ReconcileReport {
  checkedWallets: number;
  /** Only the wallets that drifted or have unresolved entries. */
  drifts: WalletDrift[];
}

const MAX_FIX_ATTEMPTS = 5;

/**
 * Compares each wallet's balance with the sum of its applied entries, as of
 * the same decision: the sum counts the entries decided as applied at positions
 * up to the wallet's `decisionSeq` (marked ones by their `seq`, and ones a crash
 * left unmarked by their token in `recentDecisions`), so debits in flight do not
 * show up as drift.
 *
 * With `fix`, a drifted balance is set to the ledger's sum with one update
 * conditional on the wallet being exactly as read (same `decisionSeq` and
 * balance), so a debit that lands in between makes it re-read instead of being
 * overwritten, and running it twice or on two workers fixes once.
 *
 * Limits: the ledger is trusted (a wrong entry is not drift); a sum below zero
 * (a balance that was too high and has been spent) is reported, not fixed; a
 * wallet with unresolved entries is reported, not fixed; the sum is computed per
 * wallet from all its entries (fine for thousands, slow for millions of entries).
 */
export async function reconcileWallets(
  options: DatabaseOption & { fix: boolean },
): Promise<ReconcileReport> {
  const models = modelsOn(options.connection);
  const report: ReconcileReport = { checkedWallets: 0, drifts: [] };
  const ids = await models.Wallet.find({}, { _id: 1 }).sort({ _id: 1 }).lean<WalletRecord[]>();
  for (const { _id } of ids) {
    const drift = await reconcileWallet(models, _id, options.fix);
    if (drift === undefined) continue;
    report.checkedWallets += 1;
    if (drift) report.drifts.push(drift);
  }
  return report;
}

/** undefined: the wallet is gone; null: no drift. */
async function reconcileWallet(
  models: Models,
  walletId: Types.ObjectId,
  fix: boolean,
): Promise<WalletDrift | null | undefined> {
  let drift: WalletDrift | null = null;
  for (let attempt = 0; attempt < MAX_FIX_ATTEMPTS; attempt++) {
    const wallet = await models.Wallet.findById(walletId).lean<WalletRecord>();
    if (!wallet) return undefined;
    const measured = await measureWallet(models, wallet);
    drift = measured;
    if (measured.driftMinor === 0 && measured.unresolvedEntryIds.length === 0) return null;
    if (!fix || measured.driftMinor === 0) return measured;
    if (measured.unresolvedEntryIds.length > 0) {
      return { ...measured, note: 'unresolved entries: fix by hand' };
    }
    if (measured.ledgerBalanceMinor < 0) {
      return { ...measured, note: 'the ledger sums to less than zero: fix by hand' };
    }
    const result = await models.Wallet.updateOne(
      { _id: wallet._id, decisionSeq: wallet.decisionSeq, balanceMinor: wallet.balanceMinor },
      { $set: { balanceMinor: measured.ledgerBalanceMinor } },
    );
    if (result.modifiedCount === 1) return { ...measured, fixed: true };
    // The wallet moved (a debit, or another reconciler) since it was read: measure again.
  }
  return drift === null ? null : { ...drift, note: 'the wallet kept changing: try again' };
}

async function measureWallet(models: Models, wallet: WalletRecord): Promise<WalletDrift> {
  const accountId = wallet.accountId;
  const lastSeq = wallet.decisionSeq;
  const windowIds = wallet.recentDecisions
    .filter((token) => token.startsWith('+'))
    .map((token) => new Types.ObjectId(token.slice(1)));
  // Entries applied within the remembered window, whatever their status says yet.
  const windowEntries = await models.LedgerEntry.find(
    { _id: { $in: windowIds } },
    { amountMinor: 1 },
  ).lean<EntryRecord[]>();
  // Older applied entries; their status and seq were set long ago and do not change.
  const older = await models.LedgerEntry.aggregate<{ total: number }>([
    {
      $match: {
        accountId,
        status: 'applied',
        seq: { $lte: lastSeq },
        _id: { $nin: windowIds },
      },
    },
    { $group: { _id: null, total: { $sum: '$amountMinor' } } },
  ]);
  let ledgerBalanceMinor = older[0]?.total ?? 0;
  for (const entry of windowEntries) ledgerBalanceMinor += entry.amountMinor;

  const tokens = new Set(wallet.recentDecisions);
  const stale = await models.LedgerEntry.find(
    { accountId, status: 'pending', seqAtRecord: { $lte: lastSeq - WALLET_DECISION_WINDOW } },
    { _id: 1 },
  ).lean<EntryRecord[]>();
  const unresolvedEntryIds = stale
    .map((entry) => String(entry._id))
    .filter((id) => !tokens.has(`+${id}`) && !tokens.has(`-${id}`));

  return {
    accountId: String(accountId),
    currency: wallet.currency,
    balanceMinor: wallet.balanceMinor,
    ledgerBalanceMinor,
    driftMinor: wallet.balanceMinor - ledgerBalanceMinor,
    fixed: false,
    unresolvedEntryIds,
  };
}

/**
 * The reconciliation pass the jobs role runs: fixes what can be fixed (see
 * reconcileWallets) and tells the admins about every drift it found, once
 * per hour (the dedup key), with the first wallets' figures.
 */
export async function reconcileAndAlert(
  options: DatabaseOption & { clock: Clock },
): Promise<ReconcileReport> {
  const report = await reconcileWallets({ fix: true, ...options });
  if (report.drifts.length > 0) {
    const now = options.clock.now();
    await notifyAdmins(
      {
        event: 'ledger_drift',
        dedupKey: `ledger_drift:${now.toISOString().slice(0, 13)}`,
        data: {
          wallets: report.drifts.length,
          totalDriftMinor: report.drifts.reduce((sum, d) => sum + Math.abs(d.driftMinor), 0),
          fixed: report.drifts.filter((d) => d.fixed).length,
          drifts: report.drifts.slice(0, 20).map((d) => ({
            accountId: d.accountId,
            driftMinor: d.driftMinor,
            fixed: d.fixed,
            note: d.note,
          })),
        },
      },
      { clock: options.clock },
    );
  }
  return report;
}
