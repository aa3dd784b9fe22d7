/**
 * Text gauges for chat messages: a usage bar, byte counts and durations.
 *
 * Every function rounds down. A customer who reads "10 GB of 10 GB" or
 * "100 %" while the proxy still works has been misled; one who reads
 * "9.99 GB" a moment before the cut has not.
 */

const FILLED = '▓';
const EMPTY = '░';

function assertFiniteNumber(value: number, name: string): void {
  if (!Number.isFinite(value))
    throw new RangeError(`${name} must be a finite number, got ${value}`);
}

/**
 * A bar of `width` cells and the share of `limit` used, e.g. `▓▓▓▓▓▓░░░░ 62 %`.
 *
 * The percentage is rounded down to a whole percent and the bar has one filled
 * cell per whole `100 / width` percent, so both reach full only once the limit
 * is spent. Past the limit the bar stays full and the number shows the real
 * share (`▓▓▓▓▓▓▓▓▓▓ 104 %`): tunnels open at the cut and pay-as-you-go overage
 * can carry use past a quota, and "100 %" would hide that. Negative use counts
 * as none; a limit of 0 (or less) is spent from the start: a full bar, `100 %`.
 */
export function usageBar(used: number, limit: number, width = 10): string {
  assertFiniteNumber(used, 'used');
  assertFiniteNumber(limit, 'limit');
  if (!Number.isSafeInteger(width) || width < 1) {
    throw new RangeError(`width must be a positive integer, got ${width}`);
  }
  const usedClamped = Math.max(0, used);
  const percent = limit <= 0 ? 100 : Math.floor((usedClamped * 100) / limit);
  const filled = limit <= 0 ? width : Math.min(width, Math.floor((usedClamped * width) / limit));
  return `${FILLED.repeat(filled)}${EMPTY.repeat(width - filled)} ${percent} %`;
}

/** Decimal units, as the plans count them: 1 kB = 1000 B, 1 GB = 10^9 B. */
const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/**
 * A byte count in decimal units with at most three significant digits, rounded
 * down and without trailing zeros: `0 B`, `512 B`, `1.5 MB`, `10 GB`, `2.35 GB`,
 * `999 MB` for 999,999,999 bytes. Fractions of a byte are dropped.
 */
export function formatBytes(bytes: number): string {
  assertFiniteNumber(bytes, 'bytes');
  if (bytes < 0) throw new RangeError(`bytes must not be negative, got ${bytes}`);
  const whole = Math.floor(bytes);
  let exponent = 0;
  while (exponent < BYTE_UNITS.length - 1 && whole >= 1000 ** (exponent + 1)) exponent += 1;
  const unit = BYTE_UNITS[exponent] ?? 'B';
  if (exponent === 0) return `${whole} B`;
  const unitBytes = 1000 ** exponent;
  const integerDigits = String(Math.floor(whole / unitBytes)).length;
  const decimals = Math.max(0, 3 - integerDigits);
  // unitBytes / 10^decimals is a whole number (unitBytes >= 1000, decimals <= 2),
  // so this division is exact for any safe integer and rounds down, not to nearest.
  const scaled = Math.floor(whole / (unitBytes / 10 ** decimals));
  const value = scaled / 10 ** decimals;
  return `${value} ${unit}`;
}

const MINUTE_S = 60;
const HOUR_S = 3600;
const DAY_S = 86_400;

/**
 * A duration in its two largest units, rounded down: `45 s`, `12 min`,
 * `3 h 05 min`, `2 d 4 h`. A zero second unit is left out (`3 h`, `2 d`).
 * Minutes beside hours are padded to two digits, as on a clock.
 */
export function formatDuration(seconds: number): string {
  assertFiniteNumber(seconds, 'seconds');
  if (seconds < 0) throw new RangeError(`seconds must not be negative, got ${seconds}`);
  const whole = Math.floor(seconds);
  if (whole < MINUTE_S) return `${whole} s`;
  if (whole < HOUR_S) return `${Math.floor(whole / MINUTE_S)} min`;
  if (whole < DAY_S) {
    const hours = Math.floor(whole / HOUR_S);
    const minutes = Math.floor((whole % HOUR_S) / MINUTE_S);
    return minutes === 0 ? `${hours} h` : `${hours} h ${String(minutes).padStart(2, '0')} min`;
  }
  const days = Math.floor(whole / DAY_S);
  const hours = Math.floor((whole % DAY_S) / HOUR_S);
  return hours === 0 ? `${days} d` : `${days} d ${hours} h`;
}
