import type { Document } from 'bson';
import { CommandError, badValue, unsupported } from './errors.js';
import { compileFilter } from './query.js';
import type { Predicate } from './query.js';
import { bsonText, getPath, hasPath, isPlainObject, keyOf, valuesAtPath } from './values.js';

/*
 * Storage: databases hold collections; a collection holds documents in a Map keyed by
 * the `_id` key (Map iteration order is insertion order, which is `$natural` order)
 * plus secondary indexes that map key strings to sets of `_id` keys.
 *
 * Stored documents are never modified in place: a write builds a new object and swaps
 * it in (copy-on-write). Readers and open cursors may therefore hold references to
 * stored documents without cloning them; replies are serialised to bytes anyway.
 */

export interface IndexSpec {
  v: number;
  key: Document;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
}

/** Index options accepted by `createIndexes`; anything else is refused by name. */
const INDEX_OPTIONS = new Set([
  'key',
  'name',
  'unique',
  'sparse',
  'partialFilterExpression',
  'expireAfterSeconds',
  'v',
  // Ignored: since MongoDB 4.2 every build is "background"-safe and the flag is a no-op.
  'background',
  'ns',
]);

/** Fallback when a key pattern value is a string index type like "text" or "2dsphere". */
function checkKeyPattern(key: unknown): Array<[string, 1 | -1]> {
  if (!isPlainObject(key) || Object.keys(key).length === 0) {
    throw new CommandError('BadValue', "Index key pattern must be a non-empty object ('key')");
  }
  return Object.entries(key).map(([field, direction]) => {
    if (typeof direction === 'string') throw unsupported(`index type '${direction}' on '${field}'`);
    const n = Number(direction);
    if (n !== 1 && n !== -1)
      throw badValue(`Values in the index key pattern can only be 1 or -1: ${field}`);
    return [field, n];
  });
}

export function defaultIndexName(key: Document): string {
  return Object.entries(key)
    .map(([field, direction]) => `${field}_${String(direction)}`)
    .join('_');
}

/** Validates a client index spec and returns a normalised copy. */
export function normaliseIndexSpec(raw: unknown): IndexSpec {
  if (!isPlainObject(raw)) throw badValue('index specification must be an object');
  for (const option of Object.keys(raw)) {
    if (!INDEX_OPTIONS.has(option)) throw unsupported(`index option '${option}'`);
  }
  const fields = checkKeyPattern(raw.key);
  const key: Document = {};
  for (const [field, direction] of fields) key[field] = direction;
  const spec: IndexSpec = {
    v: 2,
    key,
    name: typeof raw.name === 'string' ? raw.name : defaultIndexName(key),
  };
  if (raw.unique === true) spec.unique = true;
  if (raw.sparse === true) spec.sparse = true;
  if (raw.partialFilterExpression !== undefined) {
    if (!isPlainObject(raw.partialFilterExpression))
      throw badValue('partialFilterExpression must be an object');
    spec.partialFilterExpression = raw.partialFilterExpression;
  }
  if (raw.expireAfterSeconds !== undefined) {
    const seconds = Number(raw.expireAfterSeconds);
    if (!Number.isFinite(seconds) || seconds < 0)
      throw badValue('expireAfterSeconds must be a non-negative number');
    if (fields.length !== 1)
      throw badValue('TTL indexes are single-field indexes, compound indexes do not support TTL');
    spec.expireAfterSeconds = seconds;
  }
  return spec;
}

/** The fields of a spec that change its meaning (name aside), for "same index?" checks. */
export function sameIndexDefinition(a: IndexSpec, b: IndexSpec): boolean {
  return (
    keyOf(a.key) === keyOf(b.key) &&
    (a.unique ?? false) === (b.unique ?? false) &&
    (a.sparse ?? false) === (b.sparse ?? false) &&
    keyOf(a.partialFilterExpression) === keyOf(b.partialFilterExpression) &&
    a.expireAfterSeconds === b.expireAfterSeconds
  );
}

function addTo(map: Map<string, Set<string>>, key: string, id: string): void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(id);
}

function removeFrom(map: Map<string, Set<string>>, key: string, id: string): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(id);
  if (set.size === 0) map.delete(key);
}

/** A secondary index: full key -> ids, and for compound indexes first field -> ids. */
export class Index {
  readonly fields: string[];
  readonly entries = new Map<string, Set<string>>();
  readonly byFirstField: Map<string, Set<string>>;
  private readonly partial: Predicate | undefined;

  constructor(readonly spec: IndexSpec) {
    this.fields = Object.keys(spec.key);
    this.byFirstField = this.fields.length > 1 ? new Map<string, Set<string>>() : this.entries;
    this.partial = spec.partialFilterExpression
      ? compileFilter(spec.partialFilterExpression)
      : undefined;
  }

  /** True when the planner may use it for equality: it holds every document. */
  get isComplete(): boolean {
    return this.spec.sparse !== true && this.partial === undefined;
  }

  /**
   * True when every document whose first field equals a non-null value is in the
   * index: always for a complete or sparse index, and for a partial index whose
   * filter only asks for that field to exist (the usual "unique when set").
   */
  answersEqualityOnFirstField(): boolean {
    if (this.isComplete || this.partial === undefined) return true;
    const first = this.fields[0];
    const filter = this.spec.partialFilterExpression;
    if (first === undefined || !isPlainObject(filter)) return false;
    const keys = Object.keys(filter);
    if (keys.length !== 1 || keys[0] !== first) return false;
    const condition: unknown = filter[first];
    return (
      isPlainObject(condition) &&
      Object.keys(condition).length === 1 &&
      (condition.$exists === true || condition.$exists === 1)
    );
  }

  private covers(doc: Document): boolean {
    if (this.partial !== undefined && !this.partial(doc)) return false;
    if (this.spec.sparse === true && !this.fields.some((f) => hasPath(doc, f))) return false;
    return true;
  }

  /** The key tuples of a document (several when a field holds an array), or none. */
  tuples(doc: Document): unknown[][] {
    if (!this.covers(doc)) return [];
    let tuples: unknown[][] = [[]];
    for (const field of this.fields) {
      const values = dedupe(valuesAtPath(doc, field));
      const next: unknown[][] = [];
      for (const tuple of tuples) for (const value of values) next.push([...tuple, value]);
      tuples = next;
    }
    return tuples;
  }

  private static encode(tuple: unknown[]): string {
    return tuple.length === 1 ? keyOf(tuple[0]) : JSON.stringify(tuple.map(keyOf));
  }

  /** The first tuple of `doc` that another document already holds, if any. */
  findConflict(doc: Document, id: string): unknown[] | undefined {
    if (this.spec.unique !== true) return undefined;
    for (const tuple of this.tuples(doc)) {
      const holders = this.entries.get(Index.encode(tuple));
      if (holders === undefined) continue;
      for (const holder of holders) if (holder !== id) return tuple;
    }
    return undefined;
  }

  add(id: string, doc: Document): void {
    for (const tuple of this.tuples(doc)) {
      addTo(this.entries, Index.encode(tuple), id);
      if (this.byFirstField !== this.entries) addTo(this.byFirstField, keyOf(tuple[0]), id);
    }
  }

  remove(id: string, doc: Document): void {
    for (const tuple of this.tuples(doc)) {
      removeFrom(this.entries, Index.encode(tuple), id);
      if (this.byFirstField !== this.entries) removeFrom(this.byFirstField, keyOf(tuple[0]), id);
    }
  }
}

function dedupe(values: unknown[]): unknown[] {
  if (values.length < 2) return values;
  const seen = new Map<string, unknown>();
  for (const v of values) seen.set(keyOf(v), v);
  return [...seen.values()];
}

/** Renders a value the way the server prints it in `dup key: { ... }`. */
function renderValue(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (Array.isArray(value)) return `[ ${value.map(renderValue).join(', ')} ]`;
  if (isPlainObject(value)) {
    const entries = Object.entries(value).map(([k, v]) => `${k}: ${renderValue(v)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  const tag: unknown = (value as { _bsontype?: unknown })._bsontype;
  if (tag === 'ObjectId') return `ObjectId('${bsonText(value)}')`;
  return bsonText(value);
}

/**
 * E11000 with the same message, `keyPattern` and `keyValue` as the server.
 * https://github.com/mongodb/mongo/blob/master/src/mongo/db/storage/duplicate_key_error_info.cpp
 */
export function duplicateKeyError(ns: string, spec: IndexSpec, tuple: unknown[]): CommandError {
  const keyValue: Document = {};
  const fields = Object.keys(spec.key);
  fields.forEach((field, i) => {
    keyValue[field] = tuple[i] ?? null;
  });
  const rendered = fields.map((field, i) => `${field}: ${renderValue(tuple[i])}`).join(', ');
  return new CommandError(
    'DuplicateKey',
    `E11000 duplicate key error collection: ${ns} index: ${spec.name} dup key: { ${rendered} }`,
    { keyPattern: { ...spec.key }, keyValue },
  );
}

const ID_INDEX: IndexSpec = { v: 2, key: { _id: 1 }, name: '_id_' };

/** Counters serverStatus reports as `metrics.queryExecutor`, as mongod does. */
export interface ScanStats {
  /** Documents examined by queries (an indexed equality examines only its matches). */
  scannedObjects: number;
}

export class Collection {
  readonly docs = new Map<string, Document>();
  readonly indexes = new Map<string, Index>();

  constructor(
    readonly dbName: string,
    readonly name: string,
    readonly stats: ScanStats = { scannedObjects: 0 },
  ) {}

  get ns(): string {
    return `${this.dbName}.${this.name}`;
  }

  /** Index specs as `listIndexes` reports them, `_id_` first. */
  indexSpecs(): IndexSpec[] {
    return [ID_INDEX, ...[...this.indexes.values()].map((index) => index.spec)];
  }

  hasIndexNamed(name: string): boolean {
    return name === '_id_' || this.indexes.has(name);
  }

  /** Builds an index over the current documents; fails like MongoDB on duplicates. */
  createIndex(spec: IndexSpec): void {
    const index = new Index(spec);
    for (const [id, doc] of this.docs) {
      const conflict = index.findConflict(doc, id);
      if (conflict !== undefined) throw duplicateKeyError(this.ns, spec, conflict);
      index.add(id, doc);
    }
    this.indexes.set(spec.name, index);
  }

  dropIndex(name: string): void {
    this.indexes.delete(name);
  }

  private checkUnique(doc: Document, id: string): void {
    for (const index of this.indexes.values()) {
      const conflict = index.findConflict(doc, id);
      if (conflict !== undefined) throw duplicateKeyError(this.ns, index.spec, conflict);
    }
  }

  /** Inserts a document that already has an `_id`; all-or-nothing. */
  insert(doc: Document): void {
    const idValue: unknown = doc._id;
    if (Array.isArray(idValue)) throw badValue(`The '_id' value cannot be of type array`);
    if (idValue instanceof RegExp) throw badValue(`can't use a regex for _id`);
    const id = keyOf(idValue);
    if (this.docs.has(id)) throw duplicateKeyError(this.ns, ID_INDEX, [idValue]);
    this.checkUnique(doc, id);
    this.docs.set(id, doc);
    for (const index of this.indexes.values()) index.add(id, doc);
  }

  /** Swaps `next` in for the stored document with the same `_id`; all-or-nothing. */
  replace(previous: Document, next: Document): void {
    const id = keyOf(previous._id);
    this.checkUnique(next, id);
    for (const index of this.indexes.values()) {
      index.remove(id, previous);
      index.add(id, next);
    }
    // Map.set on an existing key keeps its position, so `$natural` order is stable.
    this.docs.set(id, next);
  }

  remove(doc: Document): void {
    const id = keyOf(doc._id);
    if (!this.docs.delete(id)) return;
    for (const index of this.indexes.values()) index.remove(id, doc);
  }

  /**
   * Documents that may match `filter`, from an index when the filter pins an indexed
   * field (or `_id`) to one or a few values; otherwise every document. The caller
   * still applies the full filter.
   */
  candidates(filter: Document | undefined): Iterable<Document> {
    if (filter === undefined) return this.docs.values();
    let best: string[] | undefined;
    for (const [path, values] of equalityConstraints(filter)) {
      const ids = this.lookup(path, values);
      if (ids !== undefined && (best === undefined || ids.length < best.length)) best = ids;
      if (best !== undefined && best.length <= 1) break;
    }
    if (best === undefined) return this.docs.values();
    const docs: Document[] = [];
    for (const id of best) {
      const doc = this.docs.get(id);
      if (doc !== undefined) docs.push(doc);
    }
    return docs;
  }

  private lookup(path: string, values: unknown[]): string[] | undefined {
    const keys = values.map(keyOf);
    if (path === '_id') return [...new Set(keys)];
    for (const index of this.indexes.values()) {
      // `values` are never null (see isIndexable), so sparse and exists-partial indexes hold them all.
      if (index.fields[0] !== path || !index.answersEqualityOnFirstField()) continue;
      const ids = new Set<string>();
      for (const key of keys) for (const id of index.byFirstField.get(key) ?? []) ids.add(id);
      return [...ids];
    }
    return undefined;
  }

  ttlIndexes(): IndexSpec[] {
    return [...this.indexes.values()]
      .map((index) => index.spec)
      .filter((spec) => spec.expireAfterSeconds !== undefined);
  }
}

/** Scalars an index can look up exactly: no null (it also matches missing), arrays or regexes. */
function isIndexable(value: unknown): boolean {
  if (value === undefined || value === null || Array.isArray(value) || value instanceof RegExp)
    return false;
  if (isPlainObject(value)) return !Object.keys(value).some((k) => k.startsWith('$'));
  return true;
}

function equalityConstraints(
  filter: Document,
  out: Array<[string, unknown[]]> = [],
): Array<[string, unknown[]]> {
  for (const [path, condition] of Object.entries(filter)) {
    if (path === '$and' && Array.isArray(condition)) {
      for (const part of condition) if (isPlainObject(part)) equalityConstraints(part, out);
      continue;
    }
    if (path.startsWith('$')) continue;
    if (isIndexable(condition)) {
      out.push([path, [condition]]);
      continue;
    }
    if (!isPlainObject(condition)) continue;
    const ops = Object.keys(condition);
    if (ops.includes('$eq') && isIndexable(condition.$eq)) out.push([path, [condition.$eq]]);
    else if (
      ops.includes('$in') &&
      Array.isArray(condition.$in) &&
      condition.$in.every(isIndexable)
    ) {
      out.push([path, condition.$in as unknown[]]);
    }
  }
  return out;
}

export class Database {
  readonly collections = new Map<string, Collection>();
  constructor(readonly name: string) {}
}

const INVALID_DB_CHARS = /[/\\. "$\0]/;

export class Catalog {
  readonly databases = new Map<string, Database>();
  readonly stats: ScanStats = { scannedObjects: 0 };

  database(name: string, create: boolean): Database | undefined {
    let db = this.databases.get(name);
    if (db === undefined && create) {
      if (name.length === 0 || INVALID_DB_CHARS.test(name)) {
        throw new CommandError('InvalidNamespace', `Invalid database name: '${name}'`);
      }
      db = new Database(name);
      this.databases.set(name, db);
    }
    return db;
  }

  collection(dbName: string, name: string, create: boolean): Collection | undefined {
    const existing = this.databases.get(dbName)?.collections.get(name);
    if (existing !== undefined || !create) return existing;
    if (name.length === 0 || name.includes('$') || name.includes('\0') || name.startsWith('.')) {
      throw new CommandError('InvalidNamespace', `Invalid collection name: ${name}`);
    }
    const db = this.database(dbName, true);
    if (db === undefined)
      throw new CommandError('InvalidNamespace', `Invalid database name: '${dbName}'`);
    const collection = new Collection(dbName, name, this.stats);
    db.collections.set(name, collection);
    return collection;
  }

  dropCollection(dbName: string, name: string): boolean {
    const db = this.databases.get(dbName);
    const dropped = db?.collections.delete(name) ?? false;
    if (db !== undefined && db.collections.size === 0) this.databases.delete(dbName);
    return dropped;
  }

  /**
   * Deletes documents whose TTL field holds a Date (or an array with a Date) older than
   * expireAfterSeconds; the earliest Date of an array counts, as in MongoDB.
   * https://www.mongodb.com/docs/manual/core/index-ttl/#expiration-of-data
   */
  sweepExpired(nowMs: number): number {
    let removed = 0;
    for (const db of this.databases.values()) {
      for (const collection of db.collections.values()) {
        for (const spec of collection.ttlIndexes()) {
          const field = Object.keys(spec.key)[0] ?? '';
          const ttlMs = (spec.expireAfterSeconds ?? 0) * 1000;
          const expired: Document[] = [];
          for (const doc of collection.docs.values()) {
            const at = earliestDate(doc, field);
            if (at !== undefined && at + ttlMs <= nowMs) expired.push(doc);
          }
          for (const doc of expired) collection.remove(doc);
          removed += expired.length;
        }
      }
    }
    return removed;
  }
}

function earliestDate(doc: Document, field: string): number | undefined {
  const direct = getPath(doc, field);
  const values = Array.isArray(direct) ? direct : valuesAtPath(doc, field);
  let earliest: number | undefined;
  for (const value of values) {
    if (value instanceof Date && (earliest === undefined || value.getTime() < earliest)) {
      earliest = value.getTime();
    }
  }
  return earliest;
}
