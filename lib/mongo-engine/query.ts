import { Query } from 'mingo';
import type { Document } from 'bson';
import { CommandError, badValue, unsupported } from './errors.js';
import { bsonTag, compareValues, isPlainObject, keyOf, valuesAtPath } from './values.js';
import type { PlainObject } from './values.js';

/*
 * Query matching and projection go through mingo (v7); sorting is our own so that
 * mixed types follow MongoDB's BSON comparison order, which mingo's `compare` does not
 * (it places ObjectId after RegExp, for instance).
 */

/** `scriptEnabled: false` refuses `$where`/`$function` instead of running client code. */
const mingoOptions = { idKey: '_id', scriptEnabled: false, useStrictMode: true } as const;

/** Turns a mingo failure into the error MongoDB would give, keeping mingo's wording. */
export function fromMingoError(error: unknown, context: string): CommandError {
  if (error instanceof CommandError) return error;
  const message = error instanceof Error ? error.message : String(error);
  let match = /unknown (?:top level |query )?operator:? (\$\w+)/i.exec(message);
  if (match?.[1] !== undefined) return badValue(`unknown operator: ${match[1]}`);
  match = /unregistered pipeline operator (\$\w+)/i.exec(message);
  if (match?.[1] !== undefined) {
    return new CommandError(
      'UnrecognizedPipelineStage',
      `Unrecognized pipeline stage name: '${match[1]}'`,
    );
  }
  match = /'(\$\w+)' is not registered|operator '?(\$\w+)'? is not registered/i.exec(message);
  const op = match?.[1] ?? match?.[2];
  if (op !== undefined) {
    return new CommandError('InvalidPipelineOperator', `Unrecognized expression '${op}'`);
  }
  if (/would create a conflict/.test(message)) {
    return new CommandError('ConflictingUpdateOperators', message);
  }
  if (/immutable field/.test(message)) return new CommandError('ImmutableField', message);
  return badValue(`${context}: ${message}`);
}

export type Predicate = (doc: Document) => boolean;

const matchAll: Predicate = () => true;

/** `$comment` is a query annotation MongoDB accepts at the top level; mingo does not. */
function withoutComment(filter: Document): Document {
  if (!('$comment' in filter)) return filter;
  const { $comment: _comment, ...rest } = filter;
  return rest;
}

export function compileFilter(filter: unknown, variables?: Document): Predicate {
  if (filter === undefined || filter === null) return matchAll;
  if (!isPlainObject(filter)) throw badValue('filter must be an object');
  const clean = withoutComment(filter);
  if (Object.keys(clean).length === 0) return matchAll;
  const direct = equalityPredicate(clean);
  if (direct) return direct;
  try {
    const query = new Query(clean, variables ? { ...mingoOptions, variables } : mingoOptions);
    return (doc) => {
      try {
        return query.test(doc);
      } catch (error) {
        throw fromMingoError(error, 'query');
      }
    };
  } catch (error) {
    throw fromMingoError(error, 'query');
  }
}

/**
 * The direct route for the commonest filters: top-level fields compared with
 * scalars by equality or `$in` (`{ accountId: { $in: [...256 ids] } }`).
 * mingo's `$in` hashes every listed value for every document tested, so a
 * lookup of 256 accounts cost 256 x 256 hashes; here each listed value is
 * keyed once (keyOf, the key the indexes use for equality) and each document
 * costs one Set lookup per field. Like MongoDB, an array field matches when
 * one of its elements does. Anything else (dotted paths, other operators,
 * null, documents, arrays, regexes as values) returns null and goes to mingo.
 */
export function equalityPredicate(filter: Document): Predicate | null {
  const constraints: [string, Set<string>][] = [];
  for (const [field, condition] of Object.entries(filter)) {
    if (field.startsWith('$') || field.includes('.')) return null;
    let values: unknown[];
    if (isSimpleScalar(condition)) values = [condition];
    else if (isPlainObject(condition) && Object.keys(condition).length === 1) {
      if ('$eq' in condition && isSimpleScalar(condition.$eq)) values = [condition.$eq];
      else if (Array.isArray(condition.$in) && condition.$in.every(isSimpleScalar)) {
        values = condition.$in as unknown[];
      } else return null;
    } else return null;
    constraints.push([field, new Set(values.map(keyOf))]);
  }
  return (doc) => {
    for (const [field, keys] of constraints) {
      const value: unknown = doc[field];
      if (value === undefined) return false;
      if (
        Array.isArray(value)
          ? !value.some((item) => keys.has(keyOf(item)))
          : !keys.has(keyOf(value))
      ) {
        return false;
      }
    }
    return true;
  };
}

/** Values whose equality is exactly keyOf equality: strings, numbers, booleans, dates, ObjectIds. */
function isSimpleScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return !Number.isNaN(value);
    case 'object':
      if (value === null) return false;
      return value instanceof Date ? !Number.isNaN(value.getTime()) : bsonTag(value) === 'ObjectId';
    default:
      return false;
  }
}

/** Applies a find-style projection; `undefined` or `{}` returns the documents as they are. */
export function projectDocuments(
  docs: Document[],
  projection: unknown,
  filter?: Document,
): Document[] {
  if (projection === undefined || projection === null) return docs;
  if (!isPlainObject(projection)) throw badValue('projection must be an object');
  if (Object.keys(projection).length === 0 || docs.length === 0) return docs;
  for (const [field, spec] of Object.entries(projection)) {
    if (isPlainObject(spec) && '$meta' in spec) throw unsupported(`projection $meta on '${field}'`);
  }
  try {
    const query = new Query(filter ? withoutComment(filter) : {}, mingoOptions);
    return query.find<Document>(docs, projection).all();
  } catch (error) {
    throw fromMingoError(error, 'projection');
  }
}

export type SortSpec = Array<[string, 1 | -1]>;

/** Validates a sort document; `$natural` is returned separately as it is an order, not a key. */
export function parseSort(sort: unknown): { keys: SortSpec; natural: 1 | -1 | undefined } {
  if (sort === undefined || sort === null) return { keys: [], natural: undefined };
  if (!isPlainObject(sort)) throw badValue('sort must be an object');
  const keys: SortSpec = [];
  let natural: 1 | -1 | undefined;
  for (const [field, raw] of Object.entries(sort)) {
    if (isPlainObject(raw)) throw unsupported(`sort by ${JSON.stringify(raw)} on '${field}'`);
    const direction = Number(raw);
    if (direction !== 1 && direction !== -1) {
      throw badValue(`$sort key ordering must be 1 (for ascending) or -1 (for descending)`);
    }
    if (field === '$natural') natural = direction;
    else keys.push([field, direction]);
  }
  return { keys, natural };
}

/**
 * Sorts by MongoDB rules: an array field sorts by its smallest element ascending and
 * its largest descending; ties keep their input (insertion) order as sort is stable.
 * https://www.mongodb.com/docs/manual/reference/method/cursor.sort/#ascending-descending-sort
 */
export function sortDocuments(docs: Document[], keys: SortSpec): Document[] {
  if (keys.length === 0) return docs;
  const decorated = docs.map((doc) => ({
    doc,
    values: keys.map(([path, direction]) => sortKey(doc, path, direction)),
  }));
  decorated.sort((a, b) => {
    for (let i = 0; i < keys.length; i += 1) {
      const direction = keys[i]?.[1] ?? 1;
      const c = compareValues(a.values[i], b.values[i]);
      if (c !== 0) return c * direction;
    }
    return 0;
  });
  return decorated.map((d) => d.doc);
}

function sortKey(doc: Document, path: string, direction: 1 | -1): unknown {
  const values = valuesAtPath(doc, path);
  let best = values[0];
  for (let i = 1; i < values.length; i += 1) {
    const c = compareValues(values[i], best);
    if (direction === 1 ? c < 0 : c > 0) best = values[i];
  }
  return best;
}

/**
 * The fields an upsert copies from its filter into the new document: plain equality
 * matches and `$eq`, also inside a top-level `$and`.
 * https://www.mongodb.com/docs/manual/reference/method/db.collection.update/#upsert-behavior
 */
export function equalityFields(
  filter: unknown,
  out: Array<[string, unknown]> = [],
): Array<[string, unknown]> {
  if (!isPlainObject(filter)) return out;
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value) equalityFields(part, out);
      continue;
    }
    if (key.startsWith('$')) continue;
    if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) {
      if ('$eq' in value && Object.keys(value).length === 1) out.push([key, value.$eq]);
      continue;
    }
    if (value instanceof RegExp) continue;
    out.push([key, value]);
  }
  return out;
}

/** Sets a dotted path in a plain object, creating intermediate objects. */
export function setPath(target: PlainObject, path: string, value: unknown): void {
  const parts = path.split('.');
  let node: PlainObject = target;
  for (let i = 0; i < parts.length - 1; i += 1) {
    const part = parts[i] ?? '';
    const next = node[part];
    if (isPlainObject(next)) {
      node = next;
    } else {
      const created: PlainObject = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] ?? ''] = value;
}
