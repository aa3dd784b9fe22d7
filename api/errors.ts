/**
 * The HTTP edge's one translation of errors: domain codes to statuses (a table
 * the compiler keeps complete), a few transport-level codes of its own, and the
 * body every error response has.
 */
import { isDomainError, type DomainErrorCode } from '../lib/errors.js';

export const httpStatusByCode = {
  NOT_FOUND: 404,
  VALIDATION_FAILED: 400,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  DATABASE_UNAVAILABLE: 503,
  UNSUPPORTED: 501,
  INTERNAL: 500,
  UPSTREAM_FAILED: 502,
  PAYMENT_REJECTED: 402,
  INSUFFICIENT_BALANCE: 402,
  PLAN_NOT_FOUND: 404,
  TRIAL_NOT_ALLOWED: 409,
  INVALID_SIGNATURE: 401,
} satisfies Record<DomainErrorCode, number>;

/** Codes that only exist at the HTTP edge (the request itself was unusable). */
const transportStatusByCode = {
  MALFORMED_JSON: 400,
  PAYLOAD_TOO_LARGE: 413,
} as const;

export type ApiErrorCode = DomainErrorCode | keyof typeof transportStatusByCode;

export interface ErrorBody {
  error: { code: ApiErrorCode; message: string; requestId: string; details?: unknown };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  /** True for failures nobody planned for: log them once with their stack. */
  isUnexpected: boolean;
}

/** Translates anything thrown in a request into the status and body the client gets. */
export function errorResponse(err: unknown, requestId: string): ErrorResponse {
  if (isDomainError(err)) {
    return respond(httpStatusByCode[err.code], err.code, err.message, requestId, err.details);
  }
  const bodyParserType = (err as { type?: unknown } | null)?.type;
  if (bodyParserType === 'entity.parse.failed') {
    return respond(
      transportStatusByCode.MALFORMED_JSON,
      'MALFORMED_JSON',
      'The request body is not valid JSON.',
      requestId,
    );
  }
  if (bodyParserType === 'entity.too.large') {
    return respond(
      transportStatusByCode.PAYLOAD_TOO_LARGE,
      'PAYLOAD_TOO_LARGE',
      'The request body is too large.',
      requestId,
    );
  }
  if (isPlainError(err)) {
    return respond(httpStatusByCode[err.code], err.code, err.message, requestId);
  }
  return {
    status: 500,
    isUnexpected: true,
    body: {
      error: {
        code: 'INTERNAL',
        message: `Something went wrong (ref ${requestId}).`,
        requestId,
      },
    },
  };
}

function respond(
  status: number,
  code: ApiErrorCode,
  message: string,
  requestId: string,
  details?: unknown,
): ErrorResponse {
  const error: ErrorBody['error'] = { code, message, requestId };
  if (details !== undefined) error.details = details;
  return { status, isUnexpected: false, body: { error } };
}

function isPlainError(err: unknown): err is { code: DomainErrorCode; message: string } {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return typeof code === 'string' && code in httpStatusByCode && typeof message === 'string';
}
