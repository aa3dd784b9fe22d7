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
 *   settle: books the bytes spent (settleLease used = leased = spent),
 *           keeping the unspent rest of the lease: at a flush when the last
 *           settle of the account is `settleEveryMs` old or its lease is
 *           drained (an explicit flush settles every account). Leases, not settles, keep the quota from
 *           being overshot; settling moves spent bytes from the counter's
 *           `leased` to its `used`, so the counter's figure of used bytes
 *           trails by at most that interval (usage buckets are flushed apart).
 *   return: an account idle on this process for `idleReturnMs`, and every
 *           account at shutdown, gives its unspent bytes back.
 *
 * When a renewal gets nothing (the counter is spent) and the local lease runs
 * dry, `onExhausted` fires: the controller cuts every live tunnel of the
 * account here and refuses new ones until the counter has bytes again.
 *
 * Each account's database operations run one at a time (a promise chain), so
 * a settle never races a renewal or a period change.
 *
 * Crash safety: every lease is booked to this process's `gatewayId` on the
 * counter, and `settleAll` sends a heartbeat every `heartbeatMs`, so the jobs
 * role can give back the leases of a gateway that died (reclaimStaleLeases in
 * core/quota.ts). Should this process be taken for dead (cut off from the
 * database for longer than the reclaim's stale time) and come back, its next
 * settle finds the lease gone: the bytes it relayed are booked as plain usage
 * and a new lease is taken.
 */
import type { Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { DomainError } from '../lib/errors.js';
import {
  leaseBytes,
  recordUsage,
  renewGatewayLeases,
  settleLease,
  type QuotaLease,
  type QuotaPeriodView,
} from '../core/quota.js';
import type { AccessMetrics } from './access-metrics.js';

const MiB = 1_048_576;
/** Failed renewals a waiting tunnel sits through before it ends (see waitForBytes). */
const MAX_WAIT_FAILURES = 3;

export interface LeaseManagerOptions {
  clock: Clock;
  connection?: Connection;
  logger?: Logger;
  metrics?: AccessMetrics;
  /** This process, as named in the counters' lease entries. */
  gatewayId: string;
  /** Renew this process's lease entries at least this often (default 15 s; clock time). */
  heartbeatMs?: number;
  /** Smallest lease asked for (default 1 MiB). */
  minLeaseBytes?: number;
  /** Largest lease asked for (default 64 MiB). */
  maxLeaseBytes?: number;
  /** Return the lease of an account with no open tunnel here for this long (default 10 s). */
  idleReturnMs?: number;
  /**
   * Book an account's spent bytes on its counter at most this often from the
   * background flush (default 10 s): one write per active account per
   * interval, instead of one per account per flush (256 accounts at 1 s
   * flushes were 95 % of the gateway's database commands).
   */
  settleEveryMs?: number;
  /**
   * Called when the account has no quota period open: open the current one
   * (idempotently) and say whether it did. Without it, no period = no bytes.
   */
  openPeriod?: (accountId: string) => Promise<boolean>;
  /**
   * Called when the open period has fewer bytes than asked for: add bytes to
   * it (PAYG per-GB charging buys data from the wallet) and say whether it
   * did. Without it, or when it says false, a short grant means the counter
   * is (nearly) spent. Must answer false without I/O for keys it does not serve.
   */
  buyMore?: (accountId: string) => Promise<boolean>;
  /** Every local byte is spent and the counter has no more. */
  onExhausted: (accountId: string) => void;
  /**
   * A settle booked `bookedBytes` on `counter` (as the settle returned it).
   * Called synchronously on the account's chain: must not throw or wait.
   */
  onSettled?: (counter: QuotaPeriodView, bookedBytes: number) => void;
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
  /** Clock time (ms) of the last settle, for settleEveryMs. */
  lastSettledMs: number;
}

export class LeaseManager {
  private readonly clock: Clock;
  private readonly connection: Connection | undefined;
  private readonly logger: Logger | undefined;
  private readonly minLeaseBytes: number;
  private readonly maxLeaseBytes: number;
  private readonly idleReturnMs: number;
  private readonly settleEveryMs: number;
  private readonly openPeriod: (accountId: string) => Promise<boolean>;
  private readonly buyMore: (accountId: string) => Promise<boolean>;
  private readonly onExhausted: (accountId: string) => void;
  private readonly onSettled: ((counter: QuotaPeriodView, bookedBytes: number) => void) | undefined;
  private readonly gatewayId: string;
  private readonly heartbeatMs: number;
  private readonly metrics: AccessMetrics | undefined;
  private readonly leases = new Map<string, AccountLease>();
  private lastHeartbeatMs = Number.NEGATIVE_INFINITY;

  constructor(options: LeaseManagerOptions) {
    this.clock = options.clock;
    this.connection = options.connection;
    this.logger = options.logger;
    this.minLeaseBytes = options.minLeaseBytes ?? MiB;
    this.maxLeaseBytes = Math.max(this.minLeaseBytes, options.maxLeaseBytes ?? 64 * MiB);
    this.idleReturnMs = options.idleReturnMs ?? 10_000;
    this.settleEveryMs = options.settleEveryMs ?? 10_000;
    this.openPeriod = options.openPeriod ?? (() => Promise.resolve(false));
    this.buyMore = options.buyMore ?? (() => Promise.resolve(false));
    this.onExhausted = options.onExhausted;
    this.onSettled = options.onSettled;
    this.gatewayId = options.gatewayId;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
    this.metrics = options.metrics;
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

  /**
   * For a tunnel whose allow() came up short: resolves true once the local
   * lease has bytes again (a renewal landed), false when the counter has none
   * left. A lease that ran dry before is asked once more, so an admin top-up
   * since is seen. Concurrent callers share one renewal; losing its bytes to
   * other tunnels just means waiting for the next, while a failing database
   * is tried a few times before the tunnel is given up. Stops as soon as
   * `stillWanted` says the tunnel is gone (cut, closed).
   */
  async waitForBytes(accountId: string, stillWanted: () => boolean): Promise<boolean> {
    let askedAgain = false;
    let failures = 0;
    for (;;) {
      if (!stillWanted()) return false;
      if (this.availableBytes(accountId) > 0) return true;
      // Looked up each time: a lease given back meanwhile is not renewed behind the map's back.
      const lease = this.leaseOf(accountId);
      lease.lastActiveMs = this.clock.now().getTime();
      if (lease.drained) {
        if (askedAgain) return false;
        askedAgain = true;
        lease.drained = false;
      }
      try {
        await this.renew(lease);
      } catch (error) {
        this.logger?.warn({ err: error, accountId }, 'proxy.lease_renew_failed');
        if (++failures >= MAX_WAIT_FAILURES) return false;
      }
    }
  }

  /**
   * Gives the account's unspent bytes back now (the next spend takes a fresh
   * lease), or only when they are from a period starting before
   * `periodBefore`: PAYG data bought in an hour that has ended stays with it.
   */
  release(accountId: string, options: { periodBefore?: Date } = {}): void {
    const lease = this.leases.get(accountId);
    if (!lease || lease.heldBytes === 0 || lease.periodStart === null) return;
    const before = options.periodBefore;
    if (before !== undefined && lease.periodStart.getTime() >= before.getTime()) return;
    this.enqueue(lease, () => this.settle(lease, true)).catch((error: unknown) =>
      this.logger?.warn({ err: error, accountId }, 'proxy.lease_settle_failed'),
    );
  }

  /** Marks the account active (keeps its lease from being returned as idle). */
  touch(accountId: string): void {
    const lease = this.leases.get(accountId);
    if (lease) lease.lastActiveMs = this.clock.now().getTime();
  }

  /**
   * Books spent bytes on the counter for every account (with `onlyDue`: for
   * the accounts last settled `settleEveryMs` ago), and returns the leases of
   * accounts idle since `idleReturnMs` (or all with `returnAll`). `isBusy`
   * says which accounts still have open tunnels here.
   */
  async settleAll(options: {
    isBusy: (accountId: string) => boolean;
    returnAll?: boolean;
    onlyDue?: boolean;
  }): Promise<void> {
    const nowMs = this.clock.now().getTime();
    const work: Promise<void>[] = [];
    for (const lease of this.leases.values()) {
      const busy = options.isBusy(lease.accountId);
      if (busy) lease.lastActiveMs = nowMs;
      const idle = !busy && nowMs - lease.lastActiveMs >= this.idleReturnMs;
      const giveBack = options.returnAll === true || idle;
      // A drained lease (the counter had no more) is settled at once: the
      // account is at its limit and the counter should say so.
      const due = lease.drained || nowMs - lease.lastSettledMs >= this.settleEveryMs;
      if (!giveBack && options.onlyDue === true && !due) continue;
      work.push(this.enqueue(lease, () => this.settle(lease, giveBack)));
    }
    work.push(this.heartbeat(nowMs));
    const results = await Promise.allSettled(work);
    for (const result of results) {
      if (result.status === 'rejected') {
        this.logger?.warn({ err: result.reason as unknown }, 'proxy.lease_settle_failed');
      }
    }
  }

  /** Tells the counters this process is alive, so its leases are not reclaimed. */
  private async heartbeat(nowMs: number): Promise<void> {
    if (this.leases.size === 0 || nowMs - this.lastHeartbeatMs < this.heartbeatMs) return;
    this.lastHeartbeatMs = nowMs;
    await renewGatewayLeases(this.gatewayId, new Date(nowMs), { connection: this.connection });
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
        lastSettledMs: this.clock.now().getTime(),
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
    lease.renewing ??= this.enqueue(lease, () => this.takeMore(lease))
      .catch((error: unknown) => {
        this.metrics?.leaseFailed('error');
        throw error;
      })
      .finally(() => {
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
    const options = { connection: this.connection, gatewayId: this.gatewayId };
    let granted = await leaseBytes(lease.accountId, requested, this.clock.now(), options);
    if (granted === null && (await this.openPeriod(lease.accountId))) {
      granted = await leaseBytes(lease.accountId, requested, this.clock.now(), options);
    }
    // Bytes were added to a short counter: this grant is not the last one.
    let replenished = false;
    if (granted !== null && granted.grantedBytes < requested) {
      replenished = await this.buyMore(lease.accountId);
      if (replenished && granted.grantedBytes === 0) {
        granted = await leaseBytes(lease.accountId, requested, this.clock.now(), options);
      }
    }
    if (granted === null || granted.grantedBytes === 0) this.metrics?.leaseFailed('exhausted');
    else this.metrics?.leaseRenewed(granted.grantedBytes);
    if (granted === null) {
      lease.drained = true;
      return;
    }
    await this.switchPeriodIfNeeded(lease, granted);
    lease.heldBytes += granted.grantedBytes;
    // A short grant means the counter is nearly spent; keep later leases small so
    // the last bytes are shared between gateways instead of stranded in one.
    lease.lastLeaseBytes = granted.grantedBytes < requested ? this.minLeaseBytes : requested;
    lease.drained = !replenished && granted.grantedBytes < requested;
    if (lease.drained && lease.heldBytes - lease.spentBytes <= 0) this.onExhausted(lease.accountId);
  }

  /** A lease from a new quota period: the old period's lease is settled first. */
  private async switchPeriodIfNeeded(lease: AccountLease, granted: QuotaLease): Promise<void> {
    const previous = lease.periodStart;
    if (previous !== null && previous.getTime() !== granted.periodStart.getTime()) {
      // Lost or not, the old period's lease is over: either way it ends here.
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
        // A lost lease is over anyway: its usage was booked, nothing to give back.
        await this.settleLeaseIn(lease, lease.periodStart, held, spent);
      } catch (error) {
        lease.heldBytes += held;
        lease.spentBytes += spent;
        throw error;
      }
      if (lease.heldBytes === 0 && lease.renewing === null) this.leases.delete(lease.accountId);
      return;
    }
    lease.lastSettledMs = this.clock.now().getTime();
    if (spent === 0) return;
    // Spending may continue during the write; only what was read is settled.
    const outcome = await this.settleLeaseIn(lease, lease.periodStart, spent, spent);
    if (outcome === 'lost') {
      // The whole lease went back to the counter and others may have taken
      // it, so nothing more is spent from it (zero overshoot). Bytes spent
      // since the read are charged to a new lease, taken right here (this
      // runs inside the account's chain) to keep the gap one round trip.
      lease.heldBytes = 0;
      lease.spentBytes -= spent;
      lease.drained = false;
      await this.takeMore(lease);
      return;
    }
    lease.heldBytes -= spent;
    lease.spentBytes -= spent;
  }

  /**
   * Settles on the counter. 'lost': the lease was reclaimed as stale (this
   * process looked dead); the bytes relayed are booked as usage all the same.
   */
  private async settleLeaseIn(
    lease: AccountLease,
    periodStart: Date,
    leasedBytes: number,
    usedBytes: number,
  ): Promise<'settled' | 'lost'> {
    if (leasedBytes === 0 && usedBytes === 0) return 'settled';
    const options = { connection: this.connection };
    try {
      const counter = await settleLease(
        lease.accountId,
        periodStart,
        { leasedBytes, usedBytes },
        { ...options, gatewayId: this.gatewayId },
      );
      if (usedBytes > 0) this.onSettled?.(counter, usedBytes);
      return 'settled';
    } catch (error) {
      if (!isLeaseNotHeld(error)) throw error;
    }
    this.metrics?.leaseFailed('lost');
    this.logger?.warn({ accountId: lease.accountId, leasedBytes, usedBytes }, 'proxy.lease_lost');
    // The period starts at periodStart, so it is the one containing that instant.
    if (usedBytes > 0) await recordUsage(lease.accountId, usedBytes, periodStart, options);
    return 'lost';
  }
}

function isLeaseNotHeld(error: unknown): boolean {
  return (
    error instanceof DomainError &&
    error.code === 'CONFLICT' &&
    error.details?.reason === 'LEASE_NOT_HELD'
  );
}
