/**
 * One closed list of business error codes. Edges map each code exhaustively,
 * e.g. `const HTTP_STATUS = { NOT_FOUND: 404, ... } satisfies Record<DomainErrorCode, number>`,
 * so adding a code here makes the compiler point at every table that must learn it.
 *
 * Business outcomes that a caller is expected to handle (quota spent, plan does
 * not allow a protocol) are values, not errors; DomainError is for failures.
 */
export const DOMAIN_ERROR_CODES = [
  /** The thing asked for does not exist (or is not visible to the caller). */
  'NOT_FOUND',
  /** Input broke a rule; `details` may say which field and why. */
  'VALIDATION_FAILED',
  /** The request clashes with the current state (duplicate, already done, stale version). */
  'CONFLICT',
  /** No valid identity was presented. */
  'UNAUTHENTICATED',
  /** The identity is known but not allowed to do this. */
  'FORBIDDEN',
  /** Too many attempts; `details.retryAfterMs` may say when to come back. */
  'RATE_LIMITED',
  /** The database could not be reached or answered with an infrastructure error. */
  'DATABASE_UNAVAILABLE',
  /** The feature or operation is not available in this deployment or for this input. */
  'UNSUPPORTED',
  /** A bug or an invariant broken; never shown to people in detail. */
  'INTERNAL',
  /** An outside service (Paystack, SMTP, an upstream proxy) failed, timed out or answered 5xx; safe to retry later. */
  'UPSTREAM_FAILED',
  /** The payment provider refused the request (bad card, invalid key, duplicate reference); `details.providerMessage` holds its words. */
  'PAYMENT_REJECTED',
  /** A wallet debit asked for more than the balance. */
  'INSUFFICIENT_BALANCE',
  /** A plan code that is not in the catalogue (or not on sale). */
  'PLAN_NOT_FOUND',
  /** This person, identity or card already had a trial. */
  'TRIAL_NOT_ALLOWED',
  /** A signed message (webhook) whose signature is missing or wrong. */
  'INVALID_SIGNATURE',
] as const;

export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

export interface DomainErrorOptions {
  /** The lower-level error that led to this one (kept for logs, never shown to people). */
  cause?: unknown;
  /** Machine-readable facts for the edge to use (field names, limits, retry hints). */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * A failure the business layer names. `message` is written for people (a
 * customer or an operator may read it); the technical story goes in `cause`.
 */
export class DomainError extends Error {
  override readonly name = 'DomainError';
  readonly code: DomainErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: DomainErrorCode, message: string, options: DomainErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

const codeSet: ReadonlySet<string> = new Set(DOMAIN_ERROR_CODES);

export function isDomainErrorCode(value: unknown): value is DomainErrorCode {
  return typeof value === 'string' && codeSet.has(value);
}

/** True for a DomainError, optionally only for the given code(s). */
export function isDomainError(
  error: unknown,
  code?: DomainErrorCode | readonly DomainErrorCode[],
): error is DomainError {
  if (!(error instanceof DomainError)) return false;
  if (code === undefined) return true;
  return typeof code === 'string' ? error.code === code : code.includes(error.code);
}
