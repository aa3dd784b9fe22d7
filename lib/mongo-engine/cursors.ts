import { Long, calculateObjectSize } from 'bson';
import type { Document } from 'bson';
import { randomBytes } from 'node:crypto';
import { CommandError } from './errors.js';
import { MAX_BSON_OBJECT_SIZE } from './wire.js';

/*
 * Server-side cursors. A query materialises its result list once (references to
 * stored documents, which are never mutated in place) and hands it out in batches.
 * https://www.mongodb.com/docs/manual/tutorial/iterate-a-cursor/#cursor-batches
 */

/** MongoDB's first batch holds 101 documents unless batchSize says otherwise. */
export const DEFAULT_FIRST_BATCH = 101;
/** Idle cursors are reaped after 10 minutes, MongoDB's `cursorTimeoutMillis` default. */
export const CURSOR_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** A batch stops growing once it passes this many bytes (room left for the envelope). */
const BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 64 * 1024;

interface OpenCursor {
  ns: string;
  docs: Document[];
  position: number;
  lastUsedMs: number;
  noTimeout: boolean;
}

export interface CursorReply {
  cursor: { id: Long; ns: string; firstBatch?: Document[]; nextBatch?: Document[] };
  ok: 1;
}

function takeBatch(docs: Document[], start: number, limit: number): Document[] {
  const batch: Document[] = [];
  let bytes = 0;
  for (let i = start; i < docs.length && batch.length < limit; i += 1) {
    const doc = docs[i];
    if (doc === undefined) break;
    bytes += calculateObjectSize(doc);
    if (batch.length > 0 && bytes > BATCH_BYTES) break;
    batch.push(doc);
  }
  return batch;
}

function newCursorId(): bigint {
  // Positive 63-bit ids, random so a stale id from another run never matches.
  const id = randomBytes(8).readBigUInt64LE(0) & 0x7fff_ffff_ffff_ffffn;
  return id === 0n ? 1n : id;
}

export class CursorStore {
  private readonly cursors = new Map<bigint, OpenCursor>();

  get size(): number {
    return this.cursors.size;
  }

  /**
   * Replies with the first batch and keeps a cursor open only when documents remain.
   * `batchSize` undefined means the default; `singleBatch` closes the cursor regardless.
   */
  open(
    ns: string,
    docs: Document[],
    options: { batchSize?: number; singleBatch?: boolean; noTimeout?: boolean },
  ): CursorReply {
    const limit = options.batchSize ?? DEFAULT_FIRST_BATCH;
    const firstBatch = takeBatch(docs, 0, limit);
    let id = 0n;
    if (firstBatch.length < docs.length && options.singleBatch !== true) {
      id = newCursorId();
      this.cursors.set(id, {
        ns,
        docs,
        position: firstBatch.length,
        lastUsedMs: Date.now(),
        noTimeout: options.noTimeout === true,
      });
    }
    return { cursor: { firstBatch, id: Long.fromBigInt(id), ns }, ok: 1 };
  }

  getMore(id: bigint, ns: string, batchSize: number | undefined): CursorReply {
    const cursor = this.cursors.get(id);
    if (cursor === undefined) throw new CommandError('CursorNotFound', `cursor id ${id} not found`);
    if (cursor.ns !== ns) {
      throw new CommandError(
        'BadValue',
        `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`,
      );
    }
    const nextBatch = takeBatch(
      cursor.docs,
      cursor.position,
      batchSize === undefined || batchSize <= 0 ? Infinity : batchSize,
    );
    cursor.position += nextBatch.length;
    cursor.lastUsedMs = Date.now();
    let replyId = id;
    if (cursor.position >= cursor.docs.length) {
      this.cursors.delete(id);
      replyId = 0n;
    }
    return { cursor: { nextBatch, id: Long.fromBigInt(replyId), ns }, ok: 1 };
  }

  /** Returns which ids were killed and which were not open. */
  kill(ids: bigint[]): { killed: bigint[]; notFound: bigint[] } {
    const killed: bigint[] = [];
    const notFound: bigint[] = [];
    for (const id of ids) (this.cursors.delete(id) ? killed : notFound).push(id);
    return { killed, notFound };
  }

  reapIdle(nowMs: number): void {
    for (const [id, cursor] of this.cursors) {
      if (!cursor.noTimeout && nowMs - cursor.lastUsedMs > CURSOR_IDLE_TIMEOUT_MS)
        this.cursors.delete(id);
    }
  }

  clear(): void {
    this.cursors.clear();
  }
}
