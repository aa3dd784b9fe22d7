import { deserialize, serialize } from 'bson';
import type { Document } from 'bson';

/*
 * Wire framing: cut the TCP byte stream into messages, decode the two request kinds a
 * modern driver sends, and encode replies.
 * https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/
 *
 * Every message starts with a 16-byte header: messageLength, requestID, responseTo,
 * opCode (int32 little-endian). The driver's first handshake is an OP_QUERY on
 * `admin.$cmd` (answered with OP_REPLY); everything after is OP_MSG.
 */

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const HEADER_BYTES = 16;
/** OP_MSG flag bits: https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#flag-bits */
const CHECKSUM_PRESENT = 1 << 0;
const MORE_TO_COME = 1 << 1;
const EXHAUST_ALLOWED = 1 << 16;
const KNOWN_FLAGS = CHECKSUM_PRESENT | MORE_TO_COME | EXHAUST_ALLOWED;
/** The low 16 bits are "required": a receiver must fail on one it does not know. */
const REQUIRED_FLAGS_MASK = 0xffff;

export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE_BYTES = 48_000_000;
export const MAX_WRITE_BATCH_SIZE = 100_000;

/** The stream can no longer be cut into messages: the connection must close. */
export class FramingError extends Error {
  override name = 'FramingError';
}

/** One message was bad but the stream is intact: reply with an error and go on. */
export class MessageError extends Error {
  override name = 'MessageError';
  constructor(
    message: string,
    readonly requestId: number,
    readonly replyOpCode: number,
  ) {
    super(message);
  }
}

export type Request =
  | { kind: 'query'; requestId: number; collection: string; query: Document }
  | { kind: 'msg'; requestId: number; body: Document; moreToCome: boolean };

/** Collects socket chunks and hands out complete frames without re-copying per chunk. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxMessageBytes: number = MAX_MESSAGE_SIZE_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Buffer | undefined {
    if (this.buffered < 4) return undefined;
    const head = this.peek(4);
    const length = head.readInt32LE(0);
    if (length < HEADER_BYTES || length > this.maxMessageBytes) {
      throw new FramingError(
        `invalid message length ${length} (allowed ${HEADER_BYTES}..${this.maxMessageBytes})`,
      );
    }
    if (this.buffered < length) return undefined;
    const all =
      this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks);
    const frame = all.subarray(0, length);
    const rest = all.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }

  private peek(bytes: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= bytes) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }
}

function readCString(frame: Buffer, offset: number, end: number): [string, number] {
  const zero = frame.indexOf(0, offset);
  if (zero === -1 || zero >= end) throw new Error('unterminated string');
  return [frame.toString('utf8', offset, zero), zero + 1];
}

function readDocument(frame: Buffer, offset: number, end: number): [Document, number] {
  if (offset + 5 > end) throw new Error('truncated BSON document');
  const size = frame.readInt32LE(offset);
  if (size < 5 || offset + size > end)
    throw new Error(`BSON document length ${size} overruns the message`);
  const doc = deserialize(frame.subarray(offset, offset + size));
  return [doc, offset + size];
}

/** Decodes one frame; throws MessageError when a reply is still possible. */
export function parseMessage(frame: Buffer): Request {
  const requestId = frame.readInt32LE(4);
  const opCode = frame.readInt32LE(12);
  const fail = (reason: string, replyOpCode = opCode === OP_QUERY ? OP_REPLY : OP_MSG): never => {
    throw new MessageError(reason, requestId, replyOpCode);
  };
  try {
    if (opCode === OP_QUERY) {
      // flags int32, fullCollectionName cstring, numberToSkip, numberToReturn, query doc.
      const [collection, afterName] = readCString(frame, HEADER_BYTES + 4, frame.length);
      const [query] = readDocument(frame, afterName + 8, frame.length);
      return { kind: 'query', requestId, collection, query };
    }
    if (opCode === OP_MSG) return parseOpMsg(frame, requestId);
  } catch (error) {
    if (error instanceof MessageError) throw error;
    fail(`invalid message: ${error instanceof Error ? error.message : String(error)}`);
  }
  return fail(
    opCode === OP_COMPRESSED
      ? 'OP_COMPRESSED is not supported: the engine advertises no compressors'
      : `unsupported opCode ${opCode}: only OP_MSG (2013) and the OP_QUERY handshake (2004) are accepted`,
  );
}

function parseOpMsg(frame: Buffer, requestId: number): Request {
  if (frame.length < HEADER_BYTES + 5) throw new Error('OP_MSG too short');
  const flags = frame.readUInt32LE(HEADER_BYTES);
  const unknownRequired = flags & REQUIRED_FLAGS_MASK & ~KNOWN_FLAGS;
  if (unknownRequired !== 0)
    throw new Error(`unknown required OP_MSG flag bits 0x${unknownRequired.toString(16)}`);
  // The CRC-32C checksum is skipped, not verified: TCP on loopback already guards the bytes.
  const end = flags & CHECKSUM_PRESENT ? frame.length - 4 : frame.length;
  let offset = HEADER_BYTES + 4;
  let body: Document | undefined;
  const sequences: Array<[string, Document[]]> = [];
  while (offset < end) {
    const kind = frame[offset];
    offset += 1;
    if (kind === 0) {
      if (body !== undefined) throw new Error('OP_MSG has more than one body section');
      [body, offset] = readDocument(frame, offset, end);
    } else if (kind === 1) {
      if (offset + 4 > end) throw new Error('truncated document sequence');
      const size = frame.readInt32LE(offset);
      const sectionEnd = offset + size;
      if (size < 5 || sectionEnd > end)
        throw new Error(`document sequence length ${size} overruns the message`);
      const [identifier, afterId] = readCString(frame, offset + 4, sectionEnd);
      const docs: Document[] = [];
      let at = afterId;
      while (at < sectionEnd) {
        const [doc, next] = readDocument(frame, at, sectionEnd);
        docs.push(doc);
        at = next;
      }
      sequences.push([identifier, docs]);
      offset = sectionEnd;
    } else {
      throw new Error(`unknown OP_MSG section kind ${String(kind)}`);
    }
  }
  if (body === undefined) throw new Error('OP_MSG has no body section');
  for (const [identifier, docs] of sequences) {
    if (identifier in body)
      throw new Error(`document sequence '${identifier}' duplicates a body field`);
    body[identifier] = docs;
  }
  return { kind: 'msg', requestId, body, moreToCome: (flags & MORE_TO_COME) !== 0 };
}

let nextReplyId = 1;

function header(length: number, responseTo: number, opCode: number): Buffer {
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(nextReplyId, 4);
  nextReplyId = nextReplyId >= 0x7fffffff ? 1 : nextReplyId + 1;
  head.writeInt32LE(responseTo, 8);
  head.writeInt32LE(opCode, 12);
  return head;
}

const serializeReply = (doc: Document): Uint8Array => serialize(doc, { ignoreUndefined: true });

/** OP_MSG reply: flags 0, one kind-0 section. */
export function encodeMsgReply(responseTo: number, doc: Document): Buffer {
  const body = serializeReply(doc);
  const length = HEADER_BYTES + 4 + 1 + body.length;
  const prefix = Buffer.alloc(5);
  return Buffer.concat([header(length, responseTo, OP_MSG), prefix, body], length);
}

/** OP_REPLY for the legacy OP_QUERY handshake: one document, no cursor. */
export function encodeOpReply(responseTo: number, doc: Document): Buffer {
  const body = serializeReply(doc);
  const fields = Buffer.alloc(20);
  fields.writeInt32LE(0, 0); // responseFlags
  fields.writeBigInt64LE(0n, 4); // cursorID
  fields.writeInt32LE(0, 12); // startingFrom
  fields.writeInt32LE(1, 16); // numberReturned
  const length = HEADER_BYTES + fields.length + body.length;
  return Buffer.concat([header(length, responseTo, OP_REPLY), fields, body], length);
}
