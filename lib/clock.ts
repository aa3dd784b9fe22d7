/**
 * Every core function that reads the time takes a Clock, so tests can move
 * time instead of sleeping. Times are UTC `Date`s.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

export interface Duration {
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  ms?: number;
}

const MS_PER = { days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1_000, ms: 1 };

/** Milliseconds in a duration; every part must be a finite number. */
export function durationMs(duration: Duration): number {
  let total = 0;
  for (const unit of ['days', 'hours', 'minutes', 'seconds', 'ms'] as const) {
    const value = duration[unit] ?? 0;
    if (!Number.isFinite(value)) throw new RangeError(`${unit} must be a finite number`);
    total += value * MS_PER[unit];
  }
  return total;
}

/** A clock that only moves when told to. Starts at 2025-01-01T00:00:00Z unless given a start. */
export class TestClock implements Clock {
  private currentMs: number;

  constructor(start: Date | string | number = '2025-01-01T00:00:00.000Z') {
    this.currentMs = toMs(start);
  }

  /** A fresh Date each call, so callers cannot move the clock by mutating it. */
  now(): Date {
    return new Date(this.currentMs);
  }

  /** Moves forward by `ms` milliseconds; time never goes backwards here (use `set`). */
  advance(ms: number): Date {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`advance(ms) needs a finite, non-negative number, got ${ms}`);
    }
    this.currentMs += ms;
    return this.now();
  }

  /** `advanceBy({ days: 3, hours: 1 })` */
  advanceBy(duration: Duration): Date {
    return this.advance(durationMs(duration));
  }

  /** Jumps to an exact time, forwards or backwards. */
  set(time: Date | string | number): Date {
    this.currentMs = toMs(time);
    return this.now();
  }
}

function toMs(time: Date | string | number): number {
  const ms = time instanceof Date ? time.getTime() : new Date(time).getTime();
  if (Number.isNaN(ms)) throw new RangeError(`not a valid time: ${String(time)}`);
  return ms;
}
