import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { deserialize, serialize } from 'bson';
import type { Document } from 'bson';

/** A bare TCP client for sending hand-made (and broken) wire-protocol frames. */
export class RawClient {
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves with the next reply (opCode and its single document), or undefined on close. */
  async reply(): Promise<{ opCode: number; responseTo: number; doc: Document } | undefined> {
    for (;;) {
      if (this.buffer.length >= 4) {
        const length = this.buffer.readInt32LE(0);
        if (this.buffer.length >= length) {
          const frame = this.buffer.subarray(0, length);
          this.buffer = this.buffer.subarray(length);
          const opCode = frame.readInt32LE(12);
          const responseTo = frame.readInt32LE(8);
          const docStart = opCode === 1 ? 36 : 21;
          return { opCode, responseTo, doc: deserialize(frame.subarray(docStart)) };
        }
      }
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Resolves once the server has closed the connection. */
  async closedByServer(): Promise<void> {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}

function header(length: number, requestId: number, opCode: number): Buffer {
  const head = Buffer.alloc(16);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(requestId, 4);
  head.writeInt32LE(0, 8);
  head.writeInt32LE(opCode, 12);
  return head;
}

export interface MsgOptions {
  requestId?: number;
  flags?: number;
  sequences?: Array<[string, Document[]]>;
  checksum?: boolean;
}

/** Builds an OP_MSG frame: one body section plus optional document sequences. */
export function opMsg(body: Document, options: MsgOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE((options.flags ?? 0) | (options.checksum === true ? 1 : 0), 0);
  parts.push(flags, Buffer.from([0]), Buffer.from(serialize(body)));
  for (const [identifier, docs] of options.sequences ?? []) {
    const id = Buffer.from(`${identifier}\0`, 'utf8');
    const payload = Buffer.concat(docs.map((d) => Buffer.from(serialize(d))));
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + payload.length, 0);
    parts.push(Buffer.from([1]), size, id, payload);
  }
  if (options.checksum === true) parts.push(Buffer.alloc(4));
  const payload = Buffer.concat(parts);
  return Buffer.concat([header(16 + payload.length, options.requestId ?? 1, 2013), payload]);
}

/** Builds a legacy OP_QUERY frame, as the driver's first handshake message. */
export function opQuery(collection: string, query: Document, requestId = 1): Buffer {
  const name = Buffer.from(`${collection}\0`, 'utf8');
  const fields = Buffer.alloc(8);
  fields.writeInt32LE(0, 0);
  fields.writeInt32LE(-1, 4);
  const payload = Buffer.concat([Buffer.alloc(4), name, fields, Buffer.from(serialize(query))]);
  return Buffer.concat([header(16 + payload.length, requestId, 2004), payload]);
}

export function rawFrame(opCode: number, payload: Buffer, requestId = 1): Buffer {
  return Buffer.concat([header(16 + payload.length, requestId, opCode), payload]);
}
