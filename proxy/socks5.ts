/**
 * SOCKS5 listener: RFC 1928 CONNECT with RFC 1929 username/password.
 *
 *   greeting  -> 0x02 offered? choose it : answer 0xFF and close (no anonymous access, ever)
 *   auth      -> credentials checked (authenticate(), when the controller has it)
 *                -> bad: status 0x01 and close
 *   request   -> CONNECT only (else 0x07); IPv4, domain or IPv6 (else 0x08)
 *             -> authorize() -> refused: 0x02 (rule set) and close
 *             -> dial the exit -> failed: the reply code for the failure
 *             -> 0x00 with BND.ADDR/PORT of the outbound socket, then relay
 *
 * The handshake is parsed by a state machine over whatever chunks arrive
 * (fragments and pipelined messages alike), never buffers more than one
 * handshake's worth, and must finish within the handshake timeout.
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { AccessRefusal } from './access.js';
import { ipv6ToBytes } from './target-guard.js';

export const SOCKS_VERSION = 0x05;
export const AUTH_VERSION = 0x01;
export const METHOD_USERPASS = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

/** RFC 1928 section 6. */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

export type SocksMessage =
  | { type: 'greeting'; methods: Uint8Array }
  | { type: 'auth'; username: string; password: string }
  | { type: 'request'; host: string; port: number }
  /** The peer broke the protocol; `reply` is what to answer before closing, if anything. */
  | { type: 'invalid'; reason: string; reply?: Buffer };

type Stage = 'greeting' | 'auth' | 'request' | 'done';

const EMPTY = Buffer.alloc(0);

/**
 * Incremental handshake parser. push() the chunks as they come; take() the
 * next complete message when the caller is ready for it (after answering the
 * previous one). Whatever follows the request is the client's first payload
 * (rest()).
 */
export class Socks5Parser {
  /** Largest handshake: greeting 257 + auth 513 + request 262 bytes, plus a first payload chunk. */
  static readonly MAX_BUFFERED_BYTES = 128 * 1024;
  private buffer: Buffer = EMPTY;
  private stage: Stage = 'greeting';

  /** False when the peer sent more than a handshake can hold. */
  push(chunk: Buffer): boolean {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    return this.buffer.length <= Socks5Parser.MAX_BUFFERED_BYTES;
  }

  /** The next complete message, or undefined until more bytes arrive. */
  take(): SocksMessage | undefined {
    switch (this.stage) {
      case 'greeting':
        return this.takeGreeting();
      case 'auth':
        return this.takeAuth();
      case 'request':
        return this.takeRequest();
      case 'done':
        return undefined;
    }
  }

  /** Bytes received after the request (the client's first payload). */
  rest(): Buffer {
    const rest = this.buffer;
    this.buffer = EMPTY;
    return rest;
  }

  private consume(length: number): Buffer {
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return message;
  }

  private takeGreeting(): SocksMessage | undefined {
    const buf = this.buffer;
    if (buf.length < 2) return undefined;
    if (buf[0] !== SOCKS_VERSION) {
      this.stage = 'done';
      return { type: 'invalid', reason: 'not SOCKS5' };
    }
    const count = buf[1] ?? 0;
    if (buf.length < 2 + count) return undefined;
    const message = this.consume(2 + count);
    this.stage = 'auth';
    return { type: 'greeting', methods: message.subarray(2) };
  }

  private takeAuth(): SocksMessage | undefined {
    const buf = this.buffer;
    if (buf.length < 2) return undefined;
    if (buf[0] !== AUTH_VERSION) {
      this.stage = 'done';
      return { type: 'invalid', reason: 'bad auth version', reply: AUTH_FAILED };
    }
    const userLength = buf[1] ?? 0;
    if (buf.length < 3 + userLength) return undefined;
    const passwordLength = buf[2 + userLength] ?? 0;
    const total = 3 + userLength + passwordLength;
    if (buf.length < total) return undefined;
    const message = this.consume(total);
    this.stage = 'request';
    return {
      type: 'auth',
      username: message.toString('utf8', 2, 2 + userLength),
      password: message.toString('utf8', 3 + userLength, total),
    };
  }

  private takeRequest(): SocksMessage | undefined {
    const buf = this.buffer;
    if (buf.length < 4) return undefined;
    const invalid = (reason: string, code: number): SocksMessage => {
      this.stage = 'done';
      return { type: 'invalid', reason, reply: failureReply(code) };
    };
    if (buf[0] !== SOCKS_VERSION) return invalid('bad request version', SocksReply.GENERAL_FAILURE);
    if (buf[1] !== CMD_CONNECT)
      return invalid('command not supported', SocksReply.COMMAND_NOT_SUPPORTED);
    const atyp = buf[3];
    let addressLength: number;
    if (atyp === ATYP_IPV4) addressLength = 4;
    else if (atyp === ATYP_IPV6) addressLength = 16;
    else if (atyp === ATYP_DOMAIN) {
      if (buf.length < 5) return undefined;
      addressLength = 1 + (buf[4] ?? 0);
    } else return invalid('address type not supported', SocksReply.ADDRESS_TYPE_NOT_SUPPORTED);
    const total = 4 + addressLength + 2;
    if (buf.length < total) return undefined;
    const message = this.consume(total);
    this.stage = 'done';
    const port = message.readUInt16BE(total - 2);
    const host = decodeHost(atyp, message.subarray(4, 4 + addressLength));
    if (host === undefined) return invalid('bad domain name', SocksReply.HOST_UNREACHABLE);
    if (port === 0) return invalid('port 0', SocksReply.NOT_ALLOWED);
    return { type: 'request', host, port };
  }
}

/** Letters, digits, dots, hyphens, underscores and IPv6 colons: what a host name or literal can hold. */
const HOST_NAME = /^[A-Za-z0-9._:[\]-]{1,255}$/;

function decodeHost(atyp: number, raw: Buffer): string | undefined {
  if (atyp === ATYP_IPV4) return `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  if (atyp === ATYP_IPV6) {
    const words: string[] = [];
    for (let i = 0; i < 16; i += 2) words.push(raw.readUInt16BE(i).toString(16));
    return words.join(':');
  }
  const name = raw.toString('latin1', 1);
  return HOST_NAME.test(name) ? name : undefined;
}

export const AUTH_OK = Buffer.from([AUTH_VERSION, 0x00]);
export const AUTH_FAILED = Buffer.from([AUTH_VERSION, 0x01]);
export const CHOOSE_USERPASS = Buffer.from([SOCKS_VERSION, METHOD_USERPASS]);
export const NO_ACCEPTABLE_METHOD = Buffer.from([SOCKS_VERSION, METHOD_NONE_ACCEPTABLE]);

/** A failure reply: BND.ADDR 0.0.0.0, BND.PORT 0 (nothing was bound). */
export function failureReply(code: number): Buffer {
  return Buffer.from([SOCKS_VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
}

/** The success reply naming the outbound socket's local address and port. */
export function successReply(address: string | undefined, port: number | undefined): Buffer {
  const bndPort = port ?? 0;
  if (address !== undefined && isIPv4(address)) {
    // Pooled, and every byte is written below.
    const reply = Buffer.allocUnsafe(10);
    reply[0] = SOCKS_VERSION;
    reply[1] = SocksReply.SUCCEEDED;
    reply[2] = 0;
    reply[3] = ATYP_IPV4;
    let at = 4;
    let octet = 0;
    for (let i = 0; i < address.length; i += 1) {
      const code = address.charCodeAt(i);
      if (code === 0x2e) {
        reply[at++] = octet;
        octet = 0;
      } else {
        octet = octet * 10 + code - 0x30;
      }
    }
    reply[at] = octet;
    reply.writeUInt16BE(bndPort, 8);
    return reply;
  }
  const bytes = address !== undefined && isIPv6(address) ? ipv6ToBytes(address) : undefined;
  if (bytes) {
    const reply = Buffer.alloc(22);
    reply.set([SOCKS_VERSION, 0, 0, ATYP_IPV6]);
    bytes.copy(reply, 4);
    reply.writeUInt16BE(bndPort, 20);
    return reply;
  }
  const reply = failureReply(0);
  reply.writeUInt16BE(bndPort, 8);
  return reply;
}

/** A complete, authenticated CONNECT request; its socket is paused. */
export interface SocksRequest {
  socket: Socket;
  username: string;
  password: string;
  host: string;
  port: number;
  /** The client's first payload, if it sent any before our reply (may be empty). */
  head: Buffer;
}

/**
 * Everything the SOCKS handshake needs from the gateway around it. One object
 * serves every connection of a listener (no closures per connection).
 */
export interface Socks5Handlers {
  /** Handshakes under way; the listener's sweep calls tick() on each (see Socks5Handshake.tick). */
  readonly pending: Set<Socks5Handshake>;
  /** From accept to a complete request; also how long a refused peer may linger. */
  readonly handshakeTimeoutMs: number;
  /** Checks credentials at the RFC 1929 step; undefined = accepted (authorize() decides later). */
  authenticate(
    username: string,
    password: string,
    sourceIp: string,
  ): Promise<AccessRefusal | undefined>;
  /** Called with the parsed request once authenticated; owns the socket from then on. */
  onRequest(request: SocksRequest): void;
  /** The handshake failed (bad bytes, bad credentials, timeout); for metrics and logs. */
  onHandshakeFailure(reason: string, socket: Socket): void;
}

/** Where a socket points to its handshake while one is under way (for the shared listeners). */
const kHandshake = Symbol('atlantic.socks5Handshake');
type HandshakeSocket = Socket & { [kHandshake]?: Socks5Handshake };

function onHandshakeData(this: HandshakeSocket, chunk: Buffer): void {
  this[kHandshake]?.receive(chunk);
}

/** The client stopped sending before the handshake finished: nothing more can come. */
function onHandshakeEnd(this: HandshakeSocket): void {
  this[kHandshake]?.fail('client ended the handshake');
}

/** Errors before the relay owns the socket (resets mostly) just close it; no-op afterwards. */
function onHandshakeError(this: HandshakeSocket): void {
  this[kHandshake]?.fail('socket error');
}

/**
 * Call when the relay takes the socket over (it brings its own error
 * listener): drops the handshake's last listener.
 */
export function releaseHandshakeSocket(socket: Socket): void {
  socket.off('error', onHandshakeError);
}

/**
 * Drives one accepted socket through the handshake. The socket is paused
 * while an answer is awaited, so a pipelining client's bytes wait in the
 * parser, not in a queue of ours. Nothing of it stays once the request is
 * handed on: the socket's listeners are shared functions that find the
 * handshake through the socket, and that link is cut when it ends.
 */
export class Socks5Handshake {
  /** Sweep ticks a handshake may take; the sweep runs every handshakeMs / TICKS. */
  static readonly TICKS = 4;
  private readonly parser = new Socks5Parser();
  private username = '';
  private password = '';
  private isBusy = false;
  private isDone = false;
  private ticks = 0;

  constructor(
    private readonly socket: Socket,
    private readonly handlers: Socks5Handlers,
  ) {}

  start(): void {
    const socket = this.socket as HandshakeSocket;
    socket[kHandshake] = this;
    this.handlers.pending.add(this);
    socket.on('data', onHandshakeData);
    socket.on('error', onHandshakeError);
    socket.on('end', onHandshakeEnd);
  }

  /**
   * One sweep tick: a handshake still under way after more than TICKS ticks
   * (between handshakeMs and 1.25 x handshakeMs after accept) is closed.
   */
  tick(): void {
    this.ticks += 1;
    if (this.ticks > Socks5Handshake.TICKS) this.fail('handshake timeout');
  }

  receive(chunk: Buffer): void {
    if (this.isDone) return;
    if (!this.parser.push(chunk)) {
      this.fail('oversized handshake', failureReply(SocksReply.GENERAL_FAILURE));
      return;
    }
    if (!this.isBusy) this.advance();
  }

  private advance(): void {
    for (;;) {
      const message = this.parser.take();
      if (message === undefined || this.isDone) return;
      switch (message.type) {
        case 'invalid':
          this.fail(message.reason, message.reply);
          return;
        case 'greeting':
          if (!message.methods.includes(METHOD_USERPASS)) {
            this.fail('no acceptable method', NO_ACCEPTABLE_METHOD);
            return;
          }
          this.socket.write(CHOOSE_USERPASS);
          break;
        case 'auth':
          this.checkCredentials(message.username, message.password);
          return;
        case 'request':
          this.finish(message.host, message.port);
          return;
      }
    }
  }

  private checkCredentials(username: string, password: string): void {
    this.username = username;
    this.password = password;
    this.isBusy = true;
    this.socket.pause();
    this.handlers.authenticate(username, password, this.socket.remoteAddress ?? '').then(
      (refusal) => {
        if (this.isDone) return;
        if (refusal) {
          this.fail(`auth:${refusal.code}`, AUTH_FAILED);
          return;
        }
        this.socket.write(AUTH_OK);
        this.isBusy = false;
        this.socket.resume();
        this.advance();
      },
      () => this.fail('auth:ERROR', AUTH_FAILED),
    );
  }

  /** Ends the handshake's hold on the socket (the error listener stays, a no-op from now on). */
  private settle(): void {
    this.isDone = true;
    this.handlers.pending.delete(this);
    const socket = this.socket as HandshakeSocket;
    socket[kHandshake] = undefined;
    socket.off('data', onHandshakeData);
    socket.off('end', onHandshakeEnd);
  }

  private finish(host: string, port: number): void {
    this.settle();
    const socket = this.socket;
    socket.pause();
    this.handlers.onRequest({
      socket,
      username: this.username,
      password: this.password,
      host,
      port,
      head: this.parser.rest(),
    });
  }

  fail(reason: string, reply?: Buffer): void {
    if (this.isDone) return;
    this.settle();
    const socket = this.socket;
    this.handlers.onHandshakeFailure(reason, socket);
    if (reply && !socket.destroyed && socket.writable) {
      // Answer, then close; anything more the peer sends is ignored.
      socket.end(reply);
      socket.resume();
      socket.setTimeout(this.handlers.handshakeTimeoutMs, () => socket.destroy());
    } else {
      socket.destroy();
    }
  }
}
