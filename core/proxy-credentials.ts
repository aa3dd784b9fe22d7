/**
 * Proxy credentials: a username and a random secret per account, separate
 * from any login, and the options a client may append to the username.
 *
 * The secret is 256 random bits shown once; only its SHA-256 is stored. A fast
 * hash is enough for a secret nobody chose (there is no dictionary to try),
 * and it lets the gateway check a password per connection from memory.
 *
 * Rotation: the old secret stops working as soon as each gateway's cache
 * refreshes (within about a second), and tunnels opened with the old secret
 * are cut at the same moment. People rotate because a secret leaked, so
 * letting a leaked secret's tunnels run on would defeat the point; the
 * customer's own clients simply reconnect with the new secret.
 *
 * Every write here touches `updatedAt` (mongoose timestamps), which is what
 * the gateways poll.
 */
import { toAccountId, type AccountId } from './account-id.js';
import { createHash, randomBytes } from 'node:crypto';
import mongoose, { Types, type Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { newSecret } from '../lib/ids.js';
import type { Currency } from '../lib/money.js';
import { Account, type AccountStatus } from '../models/account.js';
import { isDuplicateKeyError } from '../models/errors.js';
import { Plan, type PlanRecord } from '../models/plan.js';
import { quotaUsageModelOn, type QuotaUsageModel } from '../models/quota-usage.js';
import { Subscription, type SubscriptionRecord } from '../models/subscription.js';
import { teamSeatModelOn, type TeamSeatModel } from '../models/team-seat.js';
import { walletModelOn, type WalletModel } from '../models/wallet.js';
import {
  PROXY_USERNAME_PATTERN,
  proxyCredentialModelOn,
  type ProxyCredentialModel,
} from '../models/proxy-credential.js';

export interface CredentialDatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

export interface IssuedProxyCredentials {
  accountId: string;
  username: string;
  /** Shown to the customer once; never stored. */
  secret: string;
}

export interface ProxyCredentialView {
  accountId: string;
  username: string;
  secretVersion: number;
  revoked: boolean;
  accessPaused: boolean;
  exitEpoch: number;
}

/** What a gateway keeps in memory per credential. */
export interface ProxyCredentialRecord extends ProxyCredentialView {
  secretHash: string;
  updatedAt: Date;
}

function model(options: CredentialDatabaseOption): ProxyCredentialModel {
  return proxyCredentialModelOn(options.connection ?? mongoose.connection);
}

/** SHA-256 of a proxy secret, hex: what is stored and compared. */
export function hashProxySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------
// Username options
// ---------------------------------------------------------------------------

export interface ProxyUsernameOptions {
  /** The account's proxy username, lower-case, without options. */
  username: string;
  /** `-country-<code>`: a location code, lower-case. */
  location: string | null;
  /** `-session-<id>`: keep one exit for this id. */
  sessionId: string | null;
}

export type ParsedProxyUsername =
  ({ ok: true } & ProxyUsernameOptions) | { ok: false; message: string };

const OPTION_VALUE: Readonly<Record<'country' | 'session', RegExp>> = {
  country: /^[a-z][a-z0-9]{1,15}$/,
  session: /^[a-z0-9]{1,32}$/,
};
const MAX_USERNAME_LENGTH = 255;

/**
 * Splits `alice-country-ng-session-ab12` into the username and its options.
 * Options come as `-<name>-<value>` pairs in any order, each at most once;
 * values are case-insensitive letters and digits. Anything else is refused
 * with a message that says what is wrong, so a typo is not silently ignored.
 */
export function parseProxyUsername(raw: string): ParsedProxyUsername {
  if (raw.length === 0 || raw.length > MAX_USERNAME_LENGTH) {
    return { ok: false, message: 'The proxy username is empty or too long.' };
  }
  const [head = '', ...rest] = raw.toLowerCase().split('-');
  if (!PROXY_USERNAME_PATTERN.test(head)) {
    return { ok: false, message: 'The proxy username is not valid.' };
  }
  if (rest.length % 2 !== 0) {
    return {
      ok: false,
      message: 'Username options come in pairs, e.g. -country-ng or -session-ab12.',
    };
  }
  const parsed: ProxyUsernameOptions = { username: head, location: null, sessionId: null };
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i] ?? '';
    const value = rest[i + 1] ?? '';
    if (name !== 'country' && name !== 'session') {
      return { ok: false, message: `Unknown username option "${name}" (use country or session).` };
    }
    if (!OPTION_VALUE[name].test(value)) {
      return { ok: false, message: `The ${name} option "${value}" is not valid.` };
    }
    const field = name === 'country' ? 'location' : 'sessionId';
    if (parsed[field] !== null) {
      return { ok: false, message: `The ${name} option is given twice.` };
    }
    parsed[field] = value;
  }
  return { ok: true, ...parsed };
}

// ---------------------------------------------------------------------------
// Issue, rotate, revoke, connect / disconnect, new exit
// ---------------------------------------------------------------------------

interface StoredCredential {
  _id: Types.ObjectId;
  accountId: Types.ObjectId;
  username: string;
  secretHash: string;
  secretVersion: number;
  revokedAt?: Date | null;
  accessPaused: boolean;
  exitEpoch: number;
  updatedAt: Date;
}

function toRecord(stored: StoredCredential): ProxyCredentialRecord {
  return {
    accountId: String(stored.accountId),
    username: stored.username,
    secretHash: stored.secretHash,
    secretVersion: stored.secretVersion,
    revoked: stored.revokedAt !== undefined && stored.revokedAt !== null,
    accessPaused: stored.accessPaused,
    exitEpoch: stored.exitEpoch,
    updatedAt: stored.updatedAt,
  };
}

function toView(stored: StoredCredential): ProxyCredentialView {
  const { secretHash: _hash, updatedAt: _at, ...view } = toRecord(stored);
  return view;
}

/** A random username: `u` + 48 random bits in base 36, so collisions are rare. */
function randomUsername(): string {
  return `u${randomBytes(6).readUIntBE(0, 6).toString(36).padStart(10, '0')}`;
}

const MAX_USERNAME_ATTEMPTS = 5;

/**
 * Gives an account its proxy credentials. `username` is the customer's pick
 * (validated, unique); without one a random name is used. An account has one
 * set of credentials: asking again is a CONFLICT (rotate the secret instead).
 */
export async function issueProxyCredentials(
  accountId: AccountId,
  options: CredentialDatabaseOption & { username?: string },
): Promise<IssuedProxyCredentials> {
  const ProxyCredential = model(options);
  const account = toAccountId(accountId);
  const wanted = options.username?.trim().toLowerCase();
  if (wanted !== undefined && !PROXY_USERNAME_PATTERN.test(wanted)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'A proxy username is 3 to 32 letters and digits, starting with a letter.',
      { details: { field: 'username' } },
    );
  }
  for (let attempt = 0; attempt < MAX_USERNAME_ATTEMPTS; attempt++) {
    const username = wanted ?? randomUsername();
    const secret = newSecret();
    try {
      await ProxyCredential.create({
        accountId: account,
        username,
        secretHash: hashProxySecret(secret),
      });
      return { accountId: String(account), username, secret };
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      if (await ProxyCredential.exists({ accountId: account })) {
        throw new DomainError('CONFLICT', 'This account already has proxy credentials.', {
          details: { accountId: String(account) },
        });
      }
      if (wanted !== undefined) {
        throw new DomainError('CONFLICT', 'That proxy username is taken.', {
          details: { field: 'username' },
        });
      }
      // A random name collided: draw another.
    }
  }
  throw new DomainError('CONFLICT', 'Could not find a free proxy username; try again.');
}

async function updateCredential(
  accountId: AccountId,
  update: Record<string, unknown>,
  options: CredentialDatabaseOption,
): Promise<StoredCredential> {
  const stored = await model(options)
    .findOneAndUpdate({ accountId: toAccountId(accountId) }, update, { returnDocument: 'after' })
    .lean<StoredCredential>();
  if (!stored) {
    throw new DomainError('NOT_FOUND', 'This account has no proxy credentials yet.', {
      details: { accountId: String(accountId) },
    });
  }
  return stored;
}

/**
 * A new secret for the account; the old one stops working on every gateway
 * within about a second and its open tunnels are cut (see the module comment).
 * Also lifts a revocation.
 */
export async function rotateProxySecret(
  accountId: AccountId,
  options: CredentialDatabaseOption & { clock: Clock },
): Promise<IssuedProxyCredentials> {
  const secret = newSecret();
  const stored = await updateCredential(
    accountId,
    {
      $set: { secretHash: hashProxySecret(secret), secretRotatedAt: options.clock.now() },
      $unset: { revokedAt: 1 },
      $inc: { secretVersion: 1 },
    },
    options,
  );
  return { accountId: String(stored.accountId), username: stored.username, secret };
}

/** The credentials stop working everywhere and open tunnels are cut, until the secret is rotated. */
export async function revokeProxyCredentials(
  accountId: AccountId,
  options: CredentialDatabaseOption & { clock: Clock },
): Promise<ProxyCredentialView> {
  return toView(
    await updateCredential(accountId, { $set: { revokedAt: options.clock.now() } }, options),
  );
}

/**
 * The Connect / Disconnect buttons. Disconnect cuts the account's live tunnels
 * on every gateway (each sees the flag on its next refresh) and refuses new
 * ones until Connect.
 */
export async function setProxyAccess(
  accountId: AccountId,
  access: 'connected' | 'paused',
  options: CredentialDatabaseOption & { clock: Clock },
): Promise<ProxyCredentialView> {
  const update =
    access === 'paused'
      ? { $set: { accessPaused: true, accessPausedAt: options.clock.now() } }
      : { $set: { accessPaused: false }, $unset: { accessPausedAt: 1 } };
  return toView(await updateCredential(accountId, update, options));
}

/** "Give me a new IP": every gateway chooses this account's exits afresh. */
export async function requestNewExit(
  accountId: AccountId,
  options: CredentialDatabaseOption = {},
): Promise<ProxyCredentialView> {
  return toView(await updateCredential(accountId, { $inc: { exitEpoch: 1 } }, options));
}

export async function getProxyCredentials(
  accountId: AccountId,
  options: CredentialDatabaseOption = {},
): Promise<ProxyCredentialView | null> {
  const stored = await model(options)
    .findOne({ accountId: toAccountId(accountId) })
    .lean<StoredCredential>();
  return stored ? toView(stored) : null;
}

/**
 * Credentials changed at or after `since` (every one when `since` is null),
 * oldest change first, for the gateways' in-memory table. Callers re-read an
 * overlap before their last mark, because `updatedAt` comes from each
 * writer's clock and two writes may share a millisecond.
 */
export async function listProxyCredentialsChangedSince(
  since: Date | null,
  options: CredentialDatabaseOption = {},
): Promise<ProxyCredentialRecord[]> {
  const filter = since === null ? {} : { updatedAt: { $gte: since } };
  const stored = await model(options)
    .find(filter)
    .sort({ updatedAt: 1 })
    .lean<StoredCredential[]>();
  return stored.map(toRecord);
}

// ---------------------------------------------------------------------------
// What a gateway needs to ask computeEntitlements about an account
// ---------------------------------------------------------------------------

/** A quota counter as the gateway reads it. */
export interface AccessQuotaFacts {
  periodStart: Date;
  periodEnd: Date;
  limitBytes: number;
  usedBytes: number;
  leasedBytes: number;
  /** limit - used - leased, never below 0. */
  availableBytes: number;
}

/** What makes an account a seat of a team (core/team.ts). */
export interface AccessSeatFacts {
  ownerAccountId: string;
  /** Bytes per quota window; null = the team's pool only. */
  capBytes: number | null;
  /** null = the team's limit only. */
  maxConnections: number | null;
  /** The member's own counter for the current window, which counts its cap; null when none is open. */
  capCounter: AccessQuotaFacts | null;
}

/**
 * The facts behind one account's entitlements, as stored now. For a seat of
 * a team, `subscription`, `wallet` and `quota` are the OWNER's (the pooled
 * counter), `accountStatus` is the member's own unless the owner's account is
 * suspended or closed (then the owner's), and `seat` says whose seat
 * it is and its caps. The member's own subscriptions are not consulted.
 */
export interface AccessFacts {
  accountId: string;
  /** `deleted` when the account document is gone. */
  accountStatus: AccountStatus;
  /** Live subscription, else the latest ended one, else null. */
  subscription: SubscriptionRecord | null;
  wallet: { balanceMinor: number; currency: Currency } | null;
  /** The quota counter containing `now`, or null when none is open (pooled for a team). */
  quota: AccessQuotaFacts | null;
  /** Set when the account is a member of a team. */
  seat?: AccessSeatFacts | null;
  /**
   * Set for a team owner and for its seats: every account whose open
   * connections count against the team's limit (the owner first).
   */
  team?: { ownerAccountId: string; accountIds: string[] } | null;
}

type Models = {
  Account: typeof Account;
  Subscription: typeof Subscription;
  Plan: typeof Plan;
  Wallet: WalletModel;
  QuotaUsage: QuotaUsageModel;
  TeamSeat: TeamSeatModel;
};

/** The core models on a connection (the default one, or another "process" in tests). */
function modelsOn(connection: Connection = mongoose.connection): Models {
  if (connection === mongoose.connection) {
    return {
      Account,
      Subscription,
      Plan,
      Wallet: walletModelOn(connection),
      QuotaUsage: quotaUsageModelOn(connection),
      TeamSeat: teamSeatModelOn(connection),
    };
  }
  const on = <M>(name: string, fallback: { schema: mongoose.Schema }): M =>
    (connection.models[name] ?? connection.model(name, fallback.schema)) as M;
  return {
    Account: on<typeof Account>('Account', Account),
    Subscription: on<typeof Subscription>('Subscription', Subscription),
    Plan: on<typeof Plan>('Plan', Plan),
    Wallet: walletModelOn(connection),
    QuotaUsage: quotaUsageModelOn(connection),
    TeamSeat: teamSeatModelOn(connection),
  };
}

interface StoredQuota {
  accountId: Types.ObjectId;
  periodStart: Date;
  periodEnd: Date;
  limitBytes: number;
  usedBytes: number;
  leasedBytes: number;
  availableBytes: number;
}

interface StoredSeat {
  ownerAccountId: Types.ObjectId;
  memberAccountId: Types.ObjectId;
  capBytes?: number | null;
  maxConnections?: number | null;
}

/**
 * Reads the facts for many accounts at once (seven queries whatever the
 * count), so a gateway can refresh every account it is serving each half
 * second. An account id that is not valid is skipped. Seats get their
 * owner's subscription and pooled counter (see AccessFacts).
 */
export async function loadAccessFacts(
  accountIds: readonly string[],
  now: Date,
  options: CredentialDatabaseOption = {},
): Promise<Map<string, AccessFacts>> {
  const ids = accountIds
    .filter((id) => Types.ObjectId.isValid(id))
    .map((id) => new Types.ObjectId(id));
  if (ids.length === 0) return new Map();
  const models = modelsOn(options.connection);
  const seatsOfMembers = await models.TeamSeat.find({ memberAccountId: { $in: ids } }).lean<
    StoredSeat[]
  >();
  const asked = new Set(ids.map(String));
  const owners = [
    ...new Map(seatsOfMembers.map((seat) => [String(seat.ownerAccountId), seat.ownerAccountId])),
  ]
    .filter(([id]) => !asked.has(id))
    .map(([, id]) => id);
  const [own, rosters] = await Promise.all([
    loadOwnFacts(models, [...ids, ...owners], now),
    models.TeamSeat.find({ ownerAccountId: { $in: [...ids, ...owners] } })
      .sort({ slot: 1 })
      .lean<StoredSeat[]>(),
  ]);
  const teams = new Map<string, string[]>();
  for (const seat of rosters) {
    const owner = String(seat.ownerAccountId);
    const team = teams.get(owner) ?? [owner];
    team.push(String(seat.memberAccountId));
    teams.set(owner, team);
  }
  const facts = new Map<string, AccessFacts>();
  for (const id of ids) {
    const key = String(id);
    const mine = own.get(key);
    if (!mine) continue;
    const team = teams.get(key);
    facts.set(key, team ? { ...mine, team: { ownerAccountId: key, accountIds: team } } : mine);
  }
  for (const seat of seatsOfMembers) {
    const member = String(seat.memberAccountId);
    const owner = String(seat.ownerAccountId);
    const mine = own.get(member);
    const ownerFacts = own.get(owner);
    if (!mine || !ownerFacts) continue;
    facts.set(member, {
      accountId: member,
      // A suspended or closed owner switches the whole team off.
      accountStatus:
        mine.accountStatus === 'active' ? ownerFacts.accountStatus : mine.accountStatus,
      subscription: ownerFacts.subscription,
      wallet: ownerFacts.wallet,
      quota: ownerFacts.quota,
      seat: {
        ownerAccountId: owner,
        capBytes: seat.capBytes ?? null,
        maxConnections: seat.maxConnections ?? null,
        capCounter: mine.quota,
      },
      team: { ownerAccountId: owner, accountIds: teams.get(owner) ?? [owner, member] },
    });
  }
  return facts;
}

/** A write to one of the documents an account's access facts are read from. */
export interface AccessFactChange {
  accountId: string;
  /** Collection, document, write time and content: the same write read twice has the same key. */
  key: string;
  updatedAt: Date;
}

/**
 * Writes at or after `since` to the documents loadAccessFacts reads for an
 * account (the account, its subscriptions, wallet and quota counters), by
 * their `updatedAt`, so a gateway re-reads the facts of the accounts that
 * changed instead of every account it serves. `updatedAt` comes from each
 * writer's clock: callers re-read an overlap before their last mark. Team
 * seats are not read here: a seat change marks the owner's and the member's
 * accounts as written (core/team.ts), since a removed seat leaves nothing of
 * its own to find.
 */
export async function listAccessFactChangesSince(
  since: Date,
  options: CredentialDatabaseOption = {},
): Promise<AccessFactChange[]> {
  const models = modelsOn(options.connection);
  const written = { updatedAt: { $gte: since } };
  type Row = { _id: Types.ObjectId; accountId?: Types.ObjectId; updatedAt: Date };
  // The fields facts are made of (not the long arrays: history, lease
  // entries, decisions): they go into the key, so two writes stamped with
  // the same time (a frozen test clock) are still told apart.
  const [accounts, subscriptions, wallets, quotas] = await Promise.all([
    models.Account.find(written, { status: 1, updatedAt: 1 }).lean<Row[]>(),
    models.Subscription.find(written, { history: 0, renewalPaymentRefs: 0 }).lean<Row[]>(),
    models.Wallet.find(written, { accountId: 1, balanceMinor: 1, updatedAt: 1 }).lean<Row[]>(),
    models.QuotaUsage.find(written, { leases: 0, addedRefs: 0 }).lean<Row[]>(),
  ]);
  const changes: AccessFactChange[] = [];
  const add = (collection: string, rows: readonly Row[]): void => {
    for (const row of rows) {
      changes.push({
        accountId: String(row.accountId ?? row._id),
        key: `${collection}:${JSON.stringify(row)}`,
        updatedAt: row.updatedAt,
      });
    }
  };
  add('account', accounts);
  add('subscription', subscriptions);
  add('wallet', wallets);
  add('quota', quotas);
  return changes;
}

/** Each account's own facts (four queries), as if none were a seat. */
async function loadOwnFacts(
  models: Models,
  ids: readonly Types.ObjectId[],
  now: Date,
): Promise<Map<string, AccessFacts>> {
  const facts = new Map<string, AccessFacts>();
  const [accounts, subscriptions, wallets, quotas] = await Promise.all([
    models.Account.find({ _id: { $in: ids } }, { status: 1 }).lean<
      { _id: Types.ObjectId; status: AccountStatus }[]
    >(),
    models.Subscription.find({ accountId: { $in: ids } })
      .sort({ createdAt: -1, _id: -1 })
      .lean<SubscriptionRecord[]>(),
    models.Wallet.find(
      { accountId: { $in: ids } },
      { accountId: 1, balanceMinor: 1, currency: 1 },
    ).lean<{ accountId: Types.ObjectId; balanceMinor: number; currency: Currency }[]>(),
    models.QuotaUsage.find({
      accountId: { $in: ids },
      periodStart: { $lte: now },
      periodEnd: { $gt: now },
    })
      .sort({ periodStart: -1 })
      .lean<StoredQuota[]>(),
  ]);
  for (const id of ids) {
    facts.set(String(id), {
      accountId: String(id),
      accountStatus: 'deleted',
      subscription: null,
      wallet: null,
      quota: null,
    });
  }
  for (const account of accounts) {
    const entry = facts.get(String(account._id));
    if (entry) entry.accountStatus = account.status;
  }
  for (const subscription of subscriptions) {
    const entry = facts.get(String(subscription.accountId));
    // Newest first: the first one wins unless a later-listed one is live.
    if (!entry) continue;
    if (
      entry.subscription === null ||
      (!entry.subscription.liveAccountId && subscription.liveAccountId)
    ) {
      entry.subscription = subscription;
    }
  }
  for (const wallet of wallets) {
    const entry = facts.get(String(wallet.accountId));
    if (entry) entry.wallet = { balanceMinor: wallet.balanceMinor, currency: wallet.currency };
  }
  for (const quota of quotas) {
    const entry = facts.get(String(quota.accountId));
    if (!entry || entry.quota !== null) continue;
    entry.quota = {
      periodStart: quota.periodStart,
      periodEnd: quota.periodEnd,
      limitBytes: quota.limitBytes,
      usedBytes: quota.usedBytes,
      leasedBytes: quota.leasedBytes,
      availableBytes: Math.max(0, quota.availableBytes),
    };
  }
  return facts;
}

/** Every plan, for entitlement checks (the catalogue is small). */
export async function loadPlansForAccess(
  options: CredentialDatabaseOption = {},
): Promise<PlanRecord[]> {
  return modelsOn(options.connection).Plan.find({}).lean<PlanRecord[]>();
}
