import { DomainError } from './errors.js';

/**
 * Money is an integer count of minor units (kobo, cents, pesewas) plus a
 * currency. No floats: amounts are checked to be safe integers, and the only
 * place that rounds is `prorate` (and `applyBasisPoints`, built on it).
 */

/** The currencies Paystack settles in. */
export const CURRENCIES = ['NGN', 'USD', 'GHS', 'KES', 'ZAR'] as const;
export type Currency = (typeof CURRENCIES)[number];

export interface Money {
  readonly amountMinor: number;
  readonly currency: Currency;
}

export type Rounding = 'down' | 'up' | 'half-even';

interface CurrencyInfo {
  /** Shown before the amount. */
  symbol: string;
  /** Digits after the decimal point; minor units per major unit = 10^decimals. */
  decimals: number;
}

/** All five have 100 minor units per major unit (https://paystack.com/docs/api/#supported-currency). */
export const CURRENCY_INFO: Readonly<Record<Currency, Readonly<CurrencyInfo>>> = {
  NGN: { symbol: '₦', decimals: 2 },
  USD: { symbol: '$', decimals: 2 },
  GHS: { symbol: 'GH₵', decimals: 2 },
  KES: { symbol: 'KSh', decimals: 2 },
  ZAR: { symbol: 'R', decimals: 2 },
};

const currencySet: ReadonlySet<string> = new Set(CURRENCIES);

export function isCurrency(value: unknown): value is Currency {
  return typeof value === 'string' && currencySet.has(value);
}

/** Throws a RangeError unless `value` is a safe integer (a programming error, not user input). */
export function assertMinorUnits(value: number, name = 'amountMinor'): number {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${name} must be a safe integer number of minor units, got ${value}`);
  }
  return value;
}

export function assertCurrency(value: unknown): Currency {
  if (!isCurrency(value)) {
    throw new RangeError(`currency must be one of ${CURRENCIES.join(', ')}, got ${String(value)}`);
  }
  return value;
}

/** Builds a checked Money value. */
export function money(amountMinor: number, currency: Currency): Money {
  return { amountMinor: assertMinorUnits(amountMinor), currency: assertCurrency(currency) };
}

function assertSameCurrency(a: Money, b: Money): Currency {
  if (a.currency !== b.currency) {
    throw new RangeError(`cannot combine ${a.currency} with ${b.currency}`);
  }
  return a.currency;
}

export function addMoney(a: Money, b: Money): Money {
  const currency = assertSameCurrency(a, b);
  return money(assertMinorUnits(a.amountMinor) + assertMinorUnits(b.amountMinor), currency);
}

export function subtractMoney(a: Money, b: Money): Money {
  const currency = assertSameCurrency(a, b);
  return money(assertMinorUnits(a.amountMinor) - assertMinorUnits(b.amountMinor), currency);
}

/** Sum of amounts in one currency; an empty list is zero. */
export function sumMoney(items: readonly Money[], currency: Currency): Money {
  return items.reduce((total, item) => addMoney(total, item), money(0, currency));
}

/**
 * `amountMinor * numerator / denominator`, rounded to a whole minor unit, in
 * exact integer (BigInt) arithmetic. Rounding: `down` = towards minus
 * infinity (floor), `up` = towards plus infinity (ceiling), `half-even` = to
 * the nearest, ties to the even neighbour (banker's rounding).
 * Example: the share of a 30-day price for 7 days is `prorate(price, 7, 30, 'down')`.
 */
export function prorate(
  amountMinor: number,
  numerator: number,
  denominator: number,
  rounding: Rounding,
): number {
  assertMinorUnits(amountMinor);
  assertMinorUnits(numerator, 'numerator');
  assertMinorUnits(denominator, 'denominator');
  if (denominator <= 0) throw new RangeError(`denominator must be positive, got ${denominator}`);
  const result = divide(BigInt(amountMinor) * BigInt(numerator), BigInt(denominator), rounding);
  if (result > BigInt(Number.MAX_SAFE_INTEGER) || result < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`result ${result} is not a safe integer`);
  }
  return Number(result);
}

/** `amountMinor * bps / 10000` (750 bps = 7.5 %), rounded as asked. */
export function applyBasisPoints(amountMinor: number, bps: number, rounding: Rounding): number {
  return prorate(amountMinor, bps, 10_000, rounding);
}

/** Integer division with an explicit rounding rule; `d` is positive. */
function divide(n: bigint, d: bigint, rounding: Rounding): bigint {
  const q = n / d; // BigInt division truncates towards zero
  const r = n % d; // same sign as n
  if (r === 0n) return q;
  const floor = n < 0n ? q - 1n : q;
  switch (rounding) {
    case 'down':
      return floor;
    case 'up':
      return floor + 1n;
    case 'half-even': {
      // Distance above the floor, doubled, compared with d.
      const above = n < 0n ? r + d : r;
      const twice = above * 2n;
      if (twice < d) return floor;
      if (twice > d) return floor + 1n;
      return floor % 2n === 0n ? floor : floor + 1n;
    }
  }
}

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * For people: `formatMoney({ amountMinor: 1200000, currency: 'NGN' })` is
 * `₦12,000.00`; negatives read `-₦50.00`. Built from integers, not `Intl`, so
 * the output does not depend on the ICU data Node was built with.
 */
export function formatMoney(value: Money): string {
  const { symbol, decimals } = CURRENCY_INFO[assertCurrency(value.currency)];
  const amount = assertMinorUnits(value.amountMinor);
  const abs = String(Math.abs(amount)).padStart(decimals + 1, '0');
  const major = abs.slice(0, abs.length - decimals);
  const minor = abs.slice(abs.length - decimals);
  const sign = amount < 0 ? '-' : '';
  return `${sign}${symbol}${groupThousands(major)}${decimals > 0 ? `.${minor}` : ''}`;
}

/**
 * Reads an amount typed by a person, in major units, into minor units, without
 * floats: `parseMajorUnits('12,000.50', 'NGN') === 1200050`. Accepts an
 * optional sign, the currency's symbol or code in front (`₦12,000`,
 * `NGN 12000`), thousands separators only in their proper places, and at most
 * as many decimals as the currency has. Anything else is a VALIDATION_FAILED
 * DomainError, never a silent rounding.
 */
export function parseMajorUnits(input: string, currency: Currency): number {
  const { symbol, decimals } = CURRENCY_INFO[assertCurrency(currency)];
  let text = input.trim();
  let negative = false;
  if (text.startsWith('-')) {
    negative = true;
    text = text.slice(1).trimStart();
  }
  for (const prefix of [symbol, currency]) {
    if (text.toUpperCase().startsWith(prefix.toUpperCase())) {
      text = text.slice(prefix.length).trimStart();
      break;
    }
  }
  const match = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(text);
  const whole = match?.[1];
  const fraction = match?.[2] ?? '';
  if (whole === undefined || fraction.length > decimals) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `"${input}" is not an amount in ${currency}: write it like 12,000.50 (at most ${decimals} decimals)`,
      { details: { input, currency } },
    );
  }
  const minor = BigInt(whole.replaceAll(',', '') + fraction.padEnd(decimals, '0'));
  const signed = negative ? -minor : minor;
  if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DomainError('VALIDATION_FAILED', `"${input}" is too large an amount`, {
      details: { input, currency },
    });
  }
  return Number(signed);
}
