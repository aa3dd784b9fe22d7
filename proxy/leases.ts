/**
 * Byte leases per account for one gateway process, over the quota counter in
 * core/quota.ts.
 *
 *   take:   leaseBytes (one guarded $inc) moves bytes from the counter's
 *           `available` to `leased`; the sum of every gateway's leases never
 *           passes the limit, so spending only leased bytes cannot overshoot.
 *   spend:  allow() takes from the local lease synchronously (no I/O).
 *   renew:  when the local lease falls below half of the last lease, a
 *           background renewal asks for more; the next lease is sized from
 *           how fast the account spends (twice the bytes spent since the last
 *           renewal), between `minLeaseBytes` and `maxLeaseBytes`.
 *   settle: every flush books the bytes spent (settleLease used = leased =
 *           spent), keeping the unspent rest of the lease.
 *   return: an account idle on this process for `idleReturnMs`, and every
 *           account at shutdown, gives its unspent bytes back.
 *
 * When a renewal gets nothing (the counter is spent) and the local lease runs
 * dry, `onExhausted` fires: the controller cuts every live tunnel of the
 * account here and refuses new ones until the counter has bytes again.
 *
 * Each account's database operations run one at a time (a promise chain), so
 * a settle never races a renewal or a period change.
 */
import type { Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { leaseBytes, settleLease, type QuotaLease } from '../core/quota.js';

const MiB = 1_048_576;

export interface LeaseManagerOptions {
  clock: Clock;
  connection?: Connection;
  logger?: Logger;
  /** Smallest lease asked for (default 1 MiB). */
  minLeaseBytes?: number;
  /** Largest lease asked for (default 64 MiB). */
  maxLeaseBytes?: number;
  /** Return the lease of an account with no open tunnel here for this long (default 10 s). */
  idleReturnMs?: number;
  /**
   * Called when the account has no quota period open: open the current one
   * (idempotently) and say whether it did. Without it, no period = no bytes.
   */
  openPeriod?: (accountId: string) => Promise<boolean>;
  /** Every local byte is spent and the counter has no more. */
  onExhausted: (accountId: string) => void;
}

interface AccountLease {
  accountId: string;
  periodStart: Date | null;
  /** Leased from the counter and not yet settled (spent or not). */
  heldBytes: number;
  /** Part of heldBytes already handed out by spend(). */
  spentBytes: number;
  /** Spent since the last renewal started, to size the next lease. */
  spentSinceRenewal: number;
  lastLeaseBytes: number;
  /** The last renewal got less than it asked: the counter is (nearly) spent. */
  drained: boolean;
  renewing: Promise<void> | null;
  /** Serialises this account's database operations. */
  chain: Promise<void>;
  /** Wall time (clock ms) the account was last active here. */
  lastActiveMs: number;
}

export class LeaseManager {
  private readonly clock: Clock;
  private readonly connection: Connection | undefined;
  private readonly logger: Logger | undefined;
  private readonly minLeaseBytes: number;
  private readonly maxLeaseBytes: number;
  private readonly idleReturnMs: number;
  private readonly openPeriod: (accountId: string) => Promise<boolean>;
  private readonly onExhausted: (accountId: string) => void;
  private readonly leases = new Map<string, AccountLease>();

  constructor(options: LeaseManagerOptions) {
    this.clock = options.clock;
    this.connection = options.connection;
    this.logger = options.logger;
    this.minLeaseBytes = options.minLeaseBytes ?? MiB;
    this.maxLeaseBytes = Math.max(this.minLeaseBytes, options.maxLeaseBytes ?? 64 * MiB);
    this.idleReturnMs = options.idleReturnMs ?? 10_000;
    this.openPeriod = options.openPeriod ?? (() => Promise.resolve(false));
    this.onExhausted = options.onExhausted;
  }

  /** Unspent bytes this process holds for the account. */
  availableBytes(accountId: string): number {
    const lease = this.leases.get(accountId);
    return lease ? lease.heldBytes - lease.spentBytes : 0;
  }

  /** True when the local lease is empty and the counter had nothing more at the last try. */
  isExhausted(accountId: string): boolean {
    const lease = this.leases.get(accountId);
    return lease !== undefined && lease.drained && lease.heldBytes - lease.spentBytes <= 0;
  }

  /**
   * Makes sure the account holds some bytes (the first tunnel of an account
   * here, or one after the lease ran dry): takes a lease if none is held.
   * Resolves to the bytes available; 0 means the quota is spent.
   */
  async ensure(accountId: string): Promise<number> {
    const lease = this.leaseOf(accountId);
    lease.lastActiveMs = this.clock.now().getTime();
    if (this.availableBytes(accountId) > 0) return this.availableBytes(accountId);
    lease.drained = false;
    await this.renew(lease);
    return this.availableBytes(accountId);
  }

  /**
   * Hands out up to `bytes` from the local lease, synchronously. Starts a
   * background renewal when the lease runs low; calls onExhausted when it is
   * empty and the counter has nothing more.
   */
  spend(accountId: string, bytes: number): number {
    const lease = this.leases.get(accountId);
    if (!lease || bytes <= 0) return 0;
    const granted = Math.max(0, Math.min(bytes, lease.heldBytes - lease.spentBytes));
    lease.spentBytes += granted;
    lease.spentSinceRenewal += granted;
    const left = lease.heldBytes - lease.spentBytes;
    if (left < lease.lastLeaseBytes / 2 && !lease.drained) {
      this.renew(lease).catch((error: unknown) =>
        this.logger?.warn({ err: error, accountId }, 'proxy.lease_renew_failed'),
      );
    }
    if (left <= 0 && lease.drained) this.onExhausted(accountId);
    return granted;
  }

  /** Marks the account active (keeps its lease from being returned as idle). */
  touch(accountId: string): void {
    const lease = this.leases.get(accountId);
    if (lease) lease.lastActiveMs = this.clock.now().getTime();
  }

  /**
   * Books spent bytes on the counter for every account, and returns the
   * leases of accounts idle since `idleReturnMs` (or all with `returnAll`).
   * `isBusy` says which accounts still have open tunnels here.
   */
  async settleAll(options: {
    isBusy: (accountId: string) => boolean;
    returnAll?: boolean;
  }): Promise<void> {
    const nowMs = this.clock.now().getTime();
    const work: Promise<void>[] = [];
    for (const lease of this.leases.values()) {
      const busy = options.isBusy(lease.accountId);
      if (busy) lease.lastActiveMs = nowMs;
      const idle = !busy && nowMs - lease.lastActiveMs >= this.idleReturnMs;
      const giveBack = options.returnAll === true || idle;
      work.push(this.enqueue(lease, () => this.settle(lease, giveBack)));
    }
    const results = await Promise.allSettled(work);
    for (const result of results) {
      if (result.status === 'rejected') {
        this.logger?.warn({ err: result.reason as unknown }, 'proxy.lease_settle_failed');
      }
    }
  }

  private leaseOf(accountId: string): AccountLease {
    let lease = this.leases.get(accountId);
    if (!lease) {
      lease = {
        accountId,
        periodStart: null,
        heldBytes: 0,
        spentBytes: 0,
        spentSinceRenewal: 0,
        lastLeaseBytes: this.minLeaseBytes,
        drained: false,
        renewing: null,
        chain: Promise.resolve(),
        lastActiveMs: this.clock.now().getTime(),
      };
      this.leases.set(accountId, lease);
    }
    return lease;
  }

  private enqueue(lease: AccountLease, step: () => Promise<void>): Promise<void> {
    const run = lease.chain.then(step);
    lease.chain = run.catch(() => undefined);
    return run;
  }

  private renew(lease: AccountLease): Promise<void> {
    lease.renewing ??= this.enqueue(lease, () => this.takeMore(lease)).finally(() => {
      lease.renewing = null;
    });
    return lease.renewing;
  }

  private nextLeaseSize(lease: AccountLease): number {
    const wanted = Math.max(this.minLeaseBytes, lease.spentSinceRenewal * 2, lease.lastLeaseBytes);
    return Math.min(this.maxLeaseBytes, Math.ceil(wanted));
  }

  private async takeMore(lease: AccountLease): Promise<void> {
    const requested = this.nextLeaseSize(lease);
    lease.spentSinceRenewal = 0;
    const options = { connection: this.connection };
    let granted = await leaseBytes(lease.accountId, requested, this.clock.now(), options);
    if (granted === null && (await this.openPeriod(lease.accountId))) {
      granted = await leaseBytes(lease.accountId, requested, this.clock.now(), options);
    }
    if (granted === null) {
      lease.drained = true;
      return;
    }
    await this.switchPeriodIfNeeded(lease, granted);
    lease.heldBytes += granted.grantedBytes;
    // A short grant means the counter is nearly spent; keep later leases small so
    // the last bytes are shared between gateways instead of stranded in one.
    lease.lastLeaseBytes = granted.grantedBytes < requested ? this.minLeaseBytes : requested;
    lease.drained = granted.grantedBytes < requested;
    if (lease.drained && lease.heldBytes - lease.spentBytes <= 0) this.onExhausted(lease.accountId);
  }

  /** A lease from a new quota period: the old period's lease is settled first. */
  private async switchPeriodIfNeeded(lease: AccountLease, granted: QuotaLease): Promise<void> {
    const previous = lease.periodStart;
    if (previous !== null && previous.getTime() !== granted.periodStart.getTime()) {
      await this.settleLeaseIn(lease, previous, lease.heldBytes, lease.spentBytes);
      lease.heldBytes = 0;
      lease.spentBytes = 0;
    }
    lease.periodStart = granted.periodStart;
  }

  private async settle(lease: AccountLease, giveBack: boolean): Promise<void> {
    if (lease.periodStart === null) {
      if (giveBack) this.leases.delete(lease.accountId);
      return;
    }
    const spent = lease.spentBytes;
    const held = lease.heldBytes;
    if (giveBack) {
      // Empty the local lease first, so a tunnel opening during the write
      // takes a fresh lease (queued after this one) instead of spending bytes
      // that are on their way back.
      lease.heldBytes = 0;
      lease.spentBytes = 0;
      try {
        await this.settleLeaseIn(lease, lease.periodStart, held, spent);
      } catch (error) {
        lease.heldBytes += held;
        lease.spentBytes += spent;
        throw error;
      }
      if (lease.heldBytes === 0 && lease.renewing === null) this.leases.delete(lease.accountId);
      return;
    }
    if (spent === 0) return;
    // Spending may continue during the write; only what was read is settled.
    await this.settleLeaseIn(lease, lease.periodStart, spent, spent);
    lease.heldBytes -= spent;
    lease.spentBytes -= spent;
  }

  private async settleLeaseIn(
    lease: AccountLease,
    periodStart: Date,
    leasedBytes: number,
    usedBytes: number,
  ): Promise<void> {
    if (leasedBytes === 0 && usedBytes === 0) return;
    await settleLease(
      lease.accountId,
      periodStart,
      { leasedBytes, usedBytes },
      {
        connection: this.connection,
      },
    );
  }
}
