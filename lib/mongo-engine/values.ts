import type { Document } from 'bson';

/*
 * Value helpers shared by storage, indexes and sorting.
 *
 * Documents arrive through `bson.deserialize` with its default promotions: int32 and
 * double become JS numbers, a Long becomes a number when it fits in 53 bits (the driver
 * does the same when it reads), and every other BSON type stays a `bson` class instance
 * recognised here by its `_bsontype` tag.
 */

export type PlainObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `toString()` of a BSON class instance (ObjectId hex, Decimal128 digits, ...). */
export function bsonText(value: unknown): string {
  return (value as { toString(): string }).toString();
}

export function bsonTag(value: object): string | undefined {
  const tag: unknown = (value as { _bsontype?: unknown })._bsontype;
  return typeof tag === 'string' ? tag : undefined;
}

/**
 * Rank of a value in MongoDB's cross-type comparison order.
 * https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/
 */
function typeRank(value: unknown): number {
  if (value === undefined || value === null) return 2;
  switch (typeof value) {
    case 'number':
    case 'bigint':
      return 3;
    case 'string':
      return 4;
    case 'boolean':
      return 9;
    case 'object':
      break;
    default:
      return 20;
  }
  if (Array.isArray(value)) return 6;
  if (value instanceof Date) return 10;
  if (value instanceof RegExp) return 12;
  if (ArrayBuffer.isView(value)) return 7;
  switch (bsonTag(value)) {
    case undefined:
      return 5;
    case 'MinKey':
      return 1;
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return 3;
    case 'BSONSymbol':
      return 4;
    case 'Binary':
      return 7;
    case 'ObjectId':
      return 8;
    case 'Timestamp':
      return 11;
    case 'BSONRegExp':
      return 12;
    case 'MaxKey':
      return 99;
    default:
      return 5;
  }
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'object' && value !== null) {
    const tag = bsonTag(value);
    if (tag === 'Long') return (value as { toNumber(): number }).toNumber();
    if (tag === 'Int32' || tag === 'Double') return (value as { valueOf(): number }).valueOf();
    if (tag === 'Decimal128') return Number.parseFloat(bsonText(value));
  }
  return Number.NaN;
}

const cmp = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0);

function bytesOf(value: object): Uint8Array {
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  const buffer: unknown = (value as { buffer?: unknown }).buffer;
  return buffer instanceof Uint8Array ? buffer : new Uint8Array(0);
}

/** Compares two values in MongoDB's order (numbers across int/long/double/decimal). */
export function compareValues(a: unknown, b: unknown): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA < rankB ? -1 : 1;
  switch (rankA) {
    case 2:
    case 1:
    case 99:
      return 0;
    case 3: {
      const x = toNumber(a);
      const y = toNumber(b);
      if (Number.isNaN(x) || Number.isNaN(y))
        return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : -1) : 1;
      return cmp(x, y);
    }
    case 4:
      return cmp(String(a), String(b));
    case 9:
      return cmp(a === true ? 1 : 0, b === true ? 1 : 0);
    case 10:
      return cmp((a as Date).getTime(), (b as Date).getTime());
    case 8:
      return cmp(String(a), String(b));
    case 6: {
      const xs = a as unknown[];
      const ys = b as unknown[];
      for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) {
        const c = compareValues(xs[i], ys[i]);
        if (c !== 0) return c;
      }
      return cmp(xs.length, ys.length);
    }
    case 5: {
      const ea = Object.entries(a as PlainObject);
      const eb = Object.entries(b as PlainObject);
      for (let i = 0; i < Math.min(ea.length, eb.length); i += 1) {
        const [ka, va] = ea[i] ?? ['', undefined];
        const [kb, vb] = eb[i] ?? ['', undefined];
        const byType = cmp(typeRank(va), typeRank(vb));
        if (byType !== 0) return byType;
        const byName = cmp(ka, kb);
        if (byName !== 0) return byName;
        const byValue = compareValues(va, vb);
        if (byValue !== 0) return byValue;
      }
      return cmp(ea.length, eb.length);
    }
    case 7: {
      const x = bytesOf(a as object);
      const y = bytesOf(b as object);
      if (x.length !== y.length) return cmp(x.length, y.length);
      const subA = (a as { sub_type?: number }).sub_type ?? 0;
      const subB = (b as { sub_type?: number }).sub_type ?? 0;
      if (subA !== subB) return cmp(subA, subB);
      for (let i = 0; i < x.length; i += 1) {
        const c = cmp(x[i] ?? 0, y[i] ?? 0);
        if (c !== 0) return c;
      }
      return 0;
    }
    case 11: {
      const x = a as { t: number; i: number };
      const y = b as { t: number; i: number };
      return cmp(x.t, y.t) || cmp(x.i, y.i);
    }
    default:
      return cmp(String(a), String(b));
  }
}

/**
 * A string that is equal for two values exactly when MongoDB's index considers them
 * equal (1 and 1.0 and NumberLong(1) share a key; field order in objects matters).
 */
export function keyOf(value: unknown): string {
  if (value === undefined || value === null) return 'n';
  switch (typeof value) {
    case 'number':
      return `#${value}`;
    case 'bigint':
      return `#${value}`;
    case 'string':
      return `s${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'object':
      break;
    default:
      return `?${bsonText(value)}`;
  }
  if (Array.isArray(value)) return `[${value.map(keyOf).join(',')}]`;
  if (value instanceof Date) return `d${value.getTime()}`;
  if (value instanceof RegExp) return `r${value.source}/${value.flags}`;
  const tag = bsonTag(value);
  switch (tag) {
    case undefined:
      return `{${Object.entries(value as PlainObject)
        .map(([k, v]) => `${JSON.stringify(k)}:${keyOf(v)}`)
        .join(',')}}`;
    case 'ObjectId':
      return `o${bsonText(value)}`;
    case 'Int32':
    case 'Double':
    case 'Long':
      return `#${toNumber(value)}`;
    case 'Decimal128': {
      const n = toNumber(value);
      return Number.isFinite(n) && String(n) === bsonText(value) ? `#${n}` : `D${bsonText(value)}`;
    }
    case 'Binary':
      return `b${(value as { sub_type?: number }).sub_type ?? 0}:${Buffer.from(bytesOf(value)).toString('base64')}`;
    case 'Timestamp':
      return `t${bsonText(value)}`;
    default:
      return `${tag}:${JSON.stringify(value)}`;
  }
}

/**
 * Copies plain objects, arrays and Dates; BSON class instances (ObjectId, Binary, ...)
 * are treated as immutable and shared. Used wherever mingo might write into a document
 * that belongs to storage.
 */
export function cloneValue<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v: unknown) => cloneValue(v)) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (!isPlainObject(value)) return value;
  const out: PlainObject = {};
  for (const key of Object.keys(value)) out[key] = cloneValue(value[key]);
  return out as T;
}

export const cloneDocument = (doc: Document): Document => cloneValue(doc);

/**
 * Every value a dotted path reaches in a document, descending into arrays the way
 * MongoDB's multikey indexes and query paths do. An array found at the end of the
 * path contributes its elements; `missing` is reported as undefined.
 */
export function valuesAtPath(doc: unknown, path: string): unknown[] {
  const out: unknown[] = [];
  collectPath(doc, path.split('.'), 0, out);
  return out;
}

function collectPath(node: unknown, parts: string[], depth: number, out: unknown[]): void {
  if (depth === parts.length) {
    if (Array.isArray(node)) {
      if (node.length === 0) out.push(undefined);
      else for (const item of node) out.push(item);
    } else {
      out.push(node);
    }
    return;
  }
  const part = parts[depth] ?? '';
  if (Array.isArray(node)) {
    if (/^\d+$/.test(part)) {
      collectPath(node[Number(part)], parts, depth + 1, out);
      return;
    }
    if (node.length === 0) {
      out.push(undefined);
      return;
    }
    for (const item of node) collectPath(item, parts, depth, out);
    return;
  }
  if (isPlainObject(node) && Object.prototype.hasOwnProperty.call(node, part)) {
    collectPath(node[part], parts, depth + 1, out);
    return;
  }
  out.push(undefined);
}

/** True when the path leads to a value at all (for sparse indexes and `$exists`). */
export function hasPath(doc: unknown, path: string): boolean {
  return valuesAtPath(doc, path).some((v) => v !== undefined);
}

/** The first value at a path without array expansion (for TTL fields and `_id`). */
export function getPath(doc: unknown, path: string): unknown {
  let node: unknown = doc;
  for (const part of path.split('.')) {
    if (Array.isArray(node) && /^\d+$/.test(part)) node = node[Number(part)];
    else if (isPlainObject(node)) node = node[part];
    else return undefined;
  }
  return node;
}
