import type { Document } from 'bson';

/**
 * Server error codes the engine answers with, named as MongoDB names them.
 * https://github.com/mongodb/mongo/blob/master/src/mongo/base/error_codes.yml
 */
export const errorCodes = {
  InternalError: 1,
  BadValue: 2,
  FailedToParse: 9,
  TypeMismatch: 14,
  IllegalOperation: 20,
  InvalidBSON: 22,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  ConflictingUpdateOperators: 40,
  CursorNotFound: 43,
  NamespaceExists: 48,
  CommandNotFound: 59,
  ImmutableField: 66,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  DuplicateKey: 11000,
  UnrecognizedPipelineStage: 40324,
  InvalidPipelineOperator: 168,
  Location40415: 40415,
} as const;

export type ErrorCodeName = keyof typeof errorCodes;

/**
 * A failure reported to the client as `{ ok: 0, code, codeName, errmsg, ...extra }`.
 * Thrown anywhere inside a command handler; the dispatcher turns it into the reply.
 */
export class CommandError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly extra: Document;

  constructor(codeName: ErrorCodeName, message: string, extra: Document = {}) {
    super(message);
    this.name = 'CommandError';
    this.code = errorCodes[codeName];
    this.codeName = codeName;
    this.extra = extra;
  }

  toReply(): Document {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }

  /** The `writeErrors[i]` shape used by insert/update/delete replies. */
  toWriteError(index: number): Document {
    return { index, code: this.code, codeName: this.codeName, errmsg: this.message, ...this.extra };
  }
}

export const badValue = (message: string): CommandError => new CommandError('BadValue', message);

/** An option MongoDB does not know at all: mirrors the server's IDL parser error. */
export function unknownField(command: string, field: string): CommandError {
  return new CommandError('Location40415', `BSON field '${command}.${field}' is an unknown field.`);
}

/** An option MongoDB knows but this engine does not implement: refused, never ignored. */
export function unsupported(what: string): CommandError {
  return new CommandError('BadValue', `${what} is not supported by the in-process test engine`);
}
