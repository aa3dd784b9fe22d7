import { deserialize, serialize } from 'bson';
import type { Document } from 'bson';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Catalog, normaliseIndexSpec } from './storage.js';

/*
 * Snapshot file: a plain concatenation of BSON documents (like mongodump's .bson), so
 * every BSON type round-trips and no single document has to hold a whole database.
 *   { format, version }                       header
 *   { collection: { db, name, indexes } }     starts a collection
 *   { doc: <document> }                       a document of the last collection
 * Written to a temporary file and renamed over the old one, so a crash mid-write
 * leaves the previous snapshot intact.
 */

const FORMAT = 'atlantic-mongo-engine-snapshot';
const VERSION = 1;

/** Encodes the whole catalog synchronously, so the snapshot is one consistent instant. */
export function encodeSnapshot(catalog: Catalog): Buffer {
  const parts: Uint8Array[] = [serialize({ format: FORMAT, version: VERSION })];
  for (const db of catalog.databases.values()) {
    for (const coll of db.collections.values()) {
      const indexes = coll.indexSpecs().filter((spec) => spec.name !== '_id_');
      parts.push(serialize({ collection: { db: db.name, name: coll.name, indexes } }));
      for (const doc of coll.docs.values()) parts.push(serialize({ doc }));
    }
  }
  return Buffer.concat(parts);
}

export function decodeSnapshot(bytes: Buffer): Catalog {
  const catalog = new Catalog();
  let offset = 0;
  let current: ReturnType<Catalog['collection']>;
  let first = true;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) throw new Error('snapshot is truncated');
    const size = bytes.readInt32LE(offset);
    if (size < 5 || offset + size > bytes.length)
      throw new Error(`snapshot record at byte ${offset} is truncated`);
    const record: Document = deserialize(bytes.subarray(offset, offset + size));
    offset += size;
    if (first) {
      if (record.format !== FORMAT || record.version !== VERSION)
        throw new Error('not an engine snapshot (unknown header)');
      first = false;
      continue;
    }
    const meta: unknown = record.collection;
    if (meta !== undefined) {
      const { db, name, indexes } = meta as { db: string; name: string; indexes: unknown[] };
      current = catalog.collection(db, name, true);
      for (const spec of indexes) current?.createIndex(normaliseIndexSpec(spec));
      continue;
    }
    if (current === undefined) throw new Error('snapshot document appears before any collection');
    current.insert(record.doc as Document);
  }
  return catalog;
}

export async function loadSnapshot(path: string): Promise<Catalog | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return decodeSnapshot(bytes);
}

let tempCounter = 0;

export async function writeSnapshot(path: string, bytes: Buffer): Promise<void> {
  tempCounter += 1;
  const temp = `${path}.tmp-${process.pid}-${tempCounter}`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(temp, bytes);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
