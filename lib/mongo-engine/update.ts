import { update as mingoUpdate } from 'mingo';
import { ObjectId, Timestamp } from 'bson';
import type { Document } from 'bson';
import { CommandError, badValue, unsupported } from './errors.js';
import { equalityFields, fromMingoError, setPath } from './query.js';
import { cloneDocument, cloneValue, getPath, isPlainObject, keyOf } from './values.js';
import type { PlainObject } from './values.js';

/*
 * Update documents: operator updates run through mingo's updater on a private copy of
 * the stored document; the checks mingo skips (it silently ignores `$inc` on a string,
 * `$push` onto a number) are done here first so the client gets MongoDB's error.
 * https://www.mongodb.com/docs/manual/reference/operator/update/
 */

const UPDATE_OPERATORS = new Set([
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$push',
  '$pull',
  '$pullAll',
  '$addToSet',
  '$pop',
  '$rename',
  '$currentDate',
  '$setOnInsert',
  '$bit',
]);

const NUMERIC_TAGS = new Set(['Long', 'Int32', 'Double', 'Decimal128']);

function isNumeric(value: unknown): boolean {
  if (typeof value === 'number') return true;
  if (typeof value !== 'object' || value === null) return false;
  const tag: unknown = (value as { _bsontype?: unknown })._bsontype;
  return typeof tag === 'string' && NUMERIC_TAGS.has(tag);
}

export function bsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'double';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  if (value instanceof RegExp) return 'regex';
  const tag: unknown = (value as { _bsontype?: unknown })._bsontype;
  if (typeof tag === 'string') return tag.charAt(0).toLowerCase() + tag.slice(1);
  return 'object';
}

export type UpdateKind = 'operators' | 'replacement';

/** Classifies the `u` of an update statement, refusing pipelines and mixtures. */
export function classifyUpdate(update: unknown): UpdateKind {
  if (Array.isArray(update)) throw unsupported('pipeline-style update (an array of stages)');
  if (!isPlainObject(update)) {
    throw new CommandError('FailedToParse', 'Update argument must be either an object or an array');
  }
  const keys = Object.keys(update);
  const operators = keys.filter((k) => k.startsWith('$'));
  if (operators.length === 0) return 'replacement';
  if (operators.length !== keys.length) {
    const field = keys.find((k) => !k.startsWith('$')) ?? '';
    throw new CommandError(
      'FailedToParse',
      `Unknown modifier: ${field}. Expected a valid update modifier or pipeline-style update specified as an array`,
    );
  }
  for (const op of operators) {
    if (!UPDATE_OPERATORS.has(op)) {
      throw new CommandError(
        'FailedToParse',
        `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`,
      );
    }
    if (!isPlainObject(update[op])) {
      throw new CommandError(
        'FailedToParse',
        `Modifiers operate on fields but we found type ${bsonTypeName(update[op])} instead. For example: {$mod: {<field>: ...}} not {${op}: ${bsonTypeName(update[op])}}`,
      );
    }
  }
  return 'operators';
}

function idText(doc: Document): string {
  return `{_id: ${String(doc._id)}}`;
}

/** Folds `$setOnInsert` (inserts only) and `$currentDate` into `$set`. */
function prepareOperators(update: Document, original: Document, isInsert: boolean): Document {
  const ops: Document = {};
  const set: PlainObject = isPlainObject(update.$set) ? { ...update.$set } : {};
  const addToSet = (op: string, path: string, value: unknown): void => {
    if (path in set) {
      throw new CommandError(
        'ConflictingUpdateOperators',
        `Updating the path '${path}' would create a conflict at '${path}' (${op})`,
      );
    }
    set[path] = value;
  };
  for (const [op, spec] of Object.entries(update)) {
    if (op === '$set') continue;
    const fields = spec as PlainObject;
    if (op === '$setOnInsert') {
      if (isInsert) for (const [path, value] of Object.entries(fields)) addToSet(op, path, value);
      continue;
    }
    if (op === '$currentDate') {
      for (const [path, type] of Object.entries(fields)) {
        const wantsTimestamp = isPlainObject(type) && type.$type === 'timestamp';
        if (isPlainObject(type) && type.$type !== 'timestamp' && type.$type !== 'date') {
          throw badValue(
            `The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}`,
          );
        }
        const now = Date.now();
        addToSet(
          op,
          path,
          wantsTimestamp ? new Timestamp({ t: Math.floor(now / 1000), i: 1 }) : new Date(now),
        );
      }
      continue;
    }
    if (op === '$inc' || op === '$mul') checkNumeric(op, fields, original);
    if (
      op === '$push' ||
      op === '$addToSet' ||
      op === '$pop' ||
      op === '$pull' ||
      op === '$pullAll'
    ) {
      checkArrayTargets(op, fields, original);
    }
    ops[op] = fields;
  }
  if ('_id' in set) {
    if (!isInsert && keyOf(set._id) !== keyOf(original._id)) {
      throw new CommandError(
        'ImmutableField',
        `Performing an update on the path '_id' would modify the immutable field '_id'`,
      );
    }
    if (!isInsert) delete set._id;
  }
  if (Object.keys(set).length > 0) ops.$set = set;
  return ops;
}

function checkNumeric(op: string, fields: PlainObject, original: Document): void {
  for (const [path, amount] of Object.entries(fields)) {
    if (!isNumeric(amount)) {
      throw new CommandError(
        'TypeMismatch',
        `Cannot ${op === '$inc' ? 'increment' : 'multiply'} with non-numeric argument: {${path}: ${String(amount)}}`,
      );
    }
    if (path.includes('$')) continue;
    const current = getPath(original, path);
    if (current !== undefined && !isNumeric(current)) {
      throw new CommandError(
        'TypeMismatch',
        `Cannot apply ${op} to a value of non-numeric type. ${idText(original)} has the field '${path.split('.').pop() ?? path}' of non-numeric type ${bsonTypeName(current)}`,
      );
    }
  }
}

function checkArrayTargets(op: string, fields: PlainObject, original: Document): void {
  for (const path of Object.keys(fields)) {
    if (path.includes('$')) continue;
    const current = getPath(original, path);
    if (current === undefined || Array.isArray(current)) continue;
    if (op === '$pop') {
      throw new CommandError(
        'TypeMismatch',
        `Path '${path}' contains an element of non-array type '${bsonTypeName(current)}'`,
      );
    }
    if (op === '$pull' || op === '$pullAll')
      throw badValue(`Cannot apply ${op} to a non-array value`);
    throw badValue(
      `The field '${path}' must be an array but is of type ${bsonTypeName(current)} in document ${idText(original)}`,
    );
  }
}

export interface ApplyOptions {
  filter: Document;
  arrayFilters?: Document[];
  isInsert?: boolean;
}

/**
 * Returns the updated copy of `original` (never modified) and whether anything changed.
 * A replacement keeps the original `_id` and must not try to change it.
 */
export function applyUpdate(
  original: Document,
  update: Document,
  options: ApplyOptions,
): { doc: Document; changed: boolean } {
  if (classifyUpdate(update) === 'replacement') {
    if ('_id' in update && keyOf(update._id) !== keyOf(original._id)) {
      throw new CommandError(
        'ImmutableField',
        `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${String(update._id)}`,
      );
    }
    const { _id: _ignored, ...rest } = update;
    const id: unknown = original._id;
    const doc: Document = { _id: id, ...cloneDocument(rest) };
    return { doc, changed: keyOf(doc) !== keyOf(original) };
  }
  const ops = prepareOperators(update, original, options.isInsert === true);
  const doc = cloneDocument(original);
  if (Object.keys(ops).length === 0) return { doc, changed: false };
  const needsCondition = JSON.stringify(
    Object.values(ops).map((v) => Object.keys(v as PlainObject)),
  ).includes('.$');
  let changedPaths: string[];
  const simple = options.arrayFilters ? null : applySimpleUpdate(doc, ops);
  if (simple) {
    changedPaths = simple;
  } else {
    try {
      changedPaths = mingoUpdate(
        doc,
        ops,
        options.arrayFilters,
        needsCondition ? options.filter : undefined,
        {
          cloneMode: 'copy',
        },
      );
    } catch (error) {
      throw fromMingoError(error, 'update');
    }
  }
  if (keyOf(doc._id) !== keyOf(original._id)) {
    throw new CommandError(
      'ImmutableField',
      `Performing an update on the path '_id' would modify the immutable field '_id'`,
    );
  }
  return { doc, changed: changedPaths.length > 0 };
}

/**
 * The document an upsert inserts: the filter's equality fields, then the update
 * (with `$setOnInsert`) or the replacement; `_id` first, generated when absent.
 */
export function buildUpsert(
  filter: Document,
  update: Document,
  arrayFilters?: Document[],
): Document {
  const seed: PlainObject = {};
  for (const [path, value] of equalityFields(filter)) setPath(seed, path, cloneValue(value));
  let doc: Document;
  if (classifyUpdate(update) === 'replacement') {
    doc = cloneDocument(update);
    if (doc._id === undefined && seed._id !== undefined) doc._id = seed._id;
  } else {
    const ops = prepareOperators(update, seed, true);
    doc = seed;
    if (Object.keys(ops).length > 0 && !(arrayFilters ? null : applySimpleUpdate(doc, ops))) {
      try {
        mingoUpdate(doc, ops, arrayFilters, undefined, { cloneMode: 'copy' });
      } catch (error) {
        throw fromMingoError(error, 'update');
      }
    }
  }
  const { _id: id, ...rest } = doc;
  const finalId: unknown = id === undefined ? new ObjectId() : id;
  return { _id: finalId, ...rest };
}

const SIMPLE_OPERATORS: ReadonlySet<string> = new Set(['$set', '$unset', '$inc']);

/**
 * The common updates (`$set`, `$unset` and `$inc` of plain numbers, on dotted
 * paths through plain sub-documents) applied directly to `doc`; returns the
 * paths that changed, or null when the update needs mingo (positional paths,
 * array indexes, arrays on the way, paths inside one another, BSON numeric
 * types). mingo builds an operator context for every call, which made it the
 * engine's largest cost on write-heavy work; the answer is the same either way
 * (tests/contract pins MongoDB's behaviour for both routes).
 */
export function applySimpleUpdate(doc: Document, ops: Document): string[] | null {
  const entries: [string, string, unknown][] = [];
  for (const [op, fields] of Object.entries(ops)) {
    if (!SIMPLE_OPERATORS.has(op) || !isPlainObject(fields)) return null;
    for (const [path, value] of Object.entries(fields)) entries.push([op, path, value]);
  }
  const paths = entries.map(([, path]) => path);
  for (const path of paths) {
    if (!isSimplePath(path) || !reachable(doc, path)) return null;
    if (paths.some((other) => other !== path && other.startsWith(`${path}.`))) return null;
  }
  if (new Set(paths).size !== paths.length) return null;
  for (const [op, path, value] of entries) {
    if (op !== '$inc') continue;
    const current = getPath(doc, path);
    if (typeof value !== 'number' || (current !== undefined && typeof current !== 'number')) {
      return null;
    }
  }
  const changed: string[] = [];
  for (const [op, path, value] of entries) {
    const current = getPath(doc, path);
    if (op === '$set') {
      if (current !== undefined && keyOf(current) === keyOf(value)) continue;
      setPath(doc, path, cloneValue(value));
    } else if (op === '$unset') {
      if (current === undefined) continue;
      unsetPath(doc, path);
    } else {
      const amount = value as number;
      if (current !== undefined && amount === 0) continue;
      setPath(doc, path, ((current as number | undefined) ?? 0) + amount);
    }
    changed.push(path);
  }
  return changed;
}

/** Non-empty dotted field names, none positional (`$`) and none an array index. */
function isSimplePath(path: string): boolean {
  return path.split('.').every((part) => part !== '' && !part.includes('$') && !/^\d+$/.test(part));
}

/** Every existing parent along `path` is a plain sub-document. */
function reachable(doc: Document, path: string): boolean {
  let node: unknown = doc;
  const parts = path.split('.');
  for (let i = 0; i < parts.length - 1; i += 1) {
    node = (node as PlainObject)[parts[i] ?? ''];
    if (node === undefined) return true;
    if (!isPlainObject(node)) return false;
  }
  return true;
}

function unsetPath(doc: Document, path: string): void {
  const parts = path.split('.');
  const last = parts.pop() ?? '';
  const parent = parts.length === 0 ? doc : getPath(doc, parts.join('.'));
  if (isPlainObject(parent)) delete parent[last];
}
