/**
 * One process at a time (models/role-lease.ts): `tryAcquire` takes the lease
 * when it is free, expired or already ours, with one conditional upsert; the
 * holder renews it every third of its lifetime; `release` gives it up on a
 * clean stop so a standby takes over at once instead of at expiry.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import { RoleLease } from '../models/role-lease.js';

/** True when `holder` holds the lease `name` until now + ttlMs. */
export async function tryAcquireLease(
  name: string,
  holder: string,
  ttlMs: number,
  now: Date,
): Promise<boolean> {
  try {
    const taken = await RoleLease.findOneAndUpdate(
      { name, $or: [{ holder }, { expiresAt: { $lte: now } }] },
      { $set: { holder, expiresAt: new Date(now.getTime() + ttlMs) } },
      { upsert: true, returnDocument: 'after' },
    ).lean<{ holder: string }>();
    return taken?.holder === holder;
  } catch (error) {
    // Held by someone else and not expired: the upsert collided with it.
    if (isDuplicateKeyError(error)) return false;
    throw error;
  }
}

export async function releaseLease(name: string, holder: string): Promise<void> {
  await RoleLease.deleteOne({ name, holder });
}

export interface LeaseHolderOptions {
  name: string;
  holder: string;
  ttlMs: number;
  /** Real time (the lease is about processes, not the business clock). */
  now?: () => Date;
  /** Called once the lease is ours; resolves when the work started. */
  onAcquired: () => Promise<void>;
  /** Called when the lease is lost (a renewal found someone else holding it). */
  onLost: () => Promise<void>;
  onError?: (error: unknown) => void;
}

/**
 * Keeps trying to hold a lease: standby until it is free, then the holder,
 * renewing every third of `ttlMs`; `stop()` ends the work and releases it.
 */
export class LeaseHolder {
  private timer: NodeJS.Timeout | undefined;
  private holding = false;
  private stopped = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaseHolderOptions) {}

  get isHolder(): boolean {
    return this.holding;
  }

  /** Tries once now (so a free lease is taken before this resolves), then on a timer. */
  async start(): Promise<void> {
    await this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.busy = this.tick();
      },
      Math.max(50, Math.floor(this.options.ttlMs / 3)),
    );
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { name, holder, ttlMs } = this.options;
    try {
      const now = this.options.now?.() ?? new Date();
      const ours = await tryAcquireLease(name, holder, ttlMs, now);
      if (ours && !this.holding && !this.stopped) {
        this.holding = true;
        await this.options.onAcquired();
      } else if (!ours && this.holding) {
        this.holding = false;
        await this.options.onLost();
      }
    } catch (error) {
      this.options.onError?.(error);
    } finally {
      this.schedule();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
    if (this.holding) {
      this.holding = false;
      await this.options.onLost();
      await releaseLease(this.options.name, this.options.holder);
    }
  }
}
