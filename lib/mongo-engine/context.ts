import { Long } from 'bson';
import type { Document } from 'bson';
import type { CursorStore } from './cursors.js';
import { CommandError, badValue, unknownField } from './errors.js';
import type { Catalog } from './storage.js';
import { isPlainObject } from './values.js';

/** What a command handler may touch: the data, the cursors, and who is asking. */
export interface EngineContext {
  readonly catalog: Catalog;
  readonly cursors: CursorStore;
  readonly connectionId: number;
  readonly startedAtMs: number;
  readonly openConnections: () => number;
}

export type CommandHandler = (ctx: EngineContext, db: string, cmd: Document) => Document;

/**
 * Fields every command may carry that are not options of the command itself:
 * the OP_MSG envelope (`$db`, `lsid`, `$readPreference`, `$clusterTime`, the Stable API
 * fields) and options that cannot change a result on a single in-memory node
 * (`comment`; `maxTimeMS`, as every command runs to completion at once; `readConcern`
 * and `writeConcern`, as every write is applied and visible before the reply).
 * https://www.mongodb.com/docs/manual/reference/command/#user-commands
 */
const ENVELOPE_FIELDS = new Set([
  '$db',
  'lsid',
  '$readPreference',
  '$clusterTime',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  'comment',
  'maxTimeMS',
  'readConcern',
  'writeConcern',
]);

export function isEnvelopeField(field: string): boolean {
  return ENVELOPE_FIELDS.has(field);
}

/** Refuses any field that is neither the command name, an allowed option nor envelope. */
export function checkOptions(cmd: Document, allowed: readonly string[]): void {
  const [name] = Object.keys(cmd);
  for (const field of Object.keys(cmd)) {
    if (field === name || ENVELOPE_FIELDS.has(field) || allowed.includes(field)) continue;
    throw unknownField(name ?? '', field);
  }
}

/** Refuses unknown fields inside a nested statement (`updates[i]`, `deletes[i]`, ...). */
export function checkFields(where: string, doc: Document, allowed: readonly string[]): void {
  for (const field of Object.keys(doc)) {
    if (!allowed.includes(field)) throw unknownField(where, field);
  }
}

export function collectionName(cmd: Document, command: string): string {
  const value: unknown = cmd[command];
  if (typeof value !== 'string' || value.length === 0) {
    throw new CommandError('InvalidNamespace', `collection name has invalid type ${typeof value}`);
  }
  return value;
}

/** Reads an optional integer that the driver may send as int32, double or Long. */
export function optionalInt(cmd: Document, field: string): number | undefined {
  const value: unknown = cmd[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (value instanceof Long) return value.toNumber();
  throw new CommandError(
    'TypeMismatch',
    `BSON field '${field}' is the wrong type '${typeof value}', expected types '[long, int, decimal, double]'`,
  );
}

export function optionalBool(cmd: Document, field: string): boolean | undefined {
  const value: unknown = cmd[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  throw new CommandError(
    'TypeMismatch',
    `BSON field '${field}' is the wrong type '${typeof value}', expected type 'bool'`,
  );
}

export function optionalDocument(cmd: Document, field: string): Document | undefined {
  const value: unknown = cmd[field];
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) {
    throw new CommandError(
      'TypeMismatch',
      `BSON field '${field}' is the wrong type '${typeof value}', expected type 'object'`,
    );
  }
  return value;
}

/** Collation changes string comparison; only the default ("simple") is implemented. */
export function refuseCollation(doc: Document): void {
  const collation: unknown = doc.collation;
  if (collation === undefined || collation === null) return;
  if (isPlainObject(collation) && collation.locale === 'simple') return;
  throw badValue(
    'collation other than { locale: "simple" } is not supported by the in-process test engine',
  );
}

/** Cursor ids arrive as Long, or as a number when the driver's Long fits 53 bits. */
export function toCursorId(value: unknown): bigint {
  if (value instanceof Long) return value.toBigInt();
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'bigint') return value;
  throw new CommandError('TypeMismatch', `cursor id must be a long, not ${typeof value}`);
}
