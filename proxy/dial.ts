/**
 * Opening the outbound side of a tunnel for an ExitRoute.
 *
 *   direct -> target guard (resolve, drop forbidden addresses)
 *          -> net.connect to each checked address in turn, until one answers
 *   socks5 -> target guard (port; literals) -> SocksClient.createConnection
 *   http   -> target guard (port; literals) -> connect to the upstream,
 *             write CONNECT, read its status line
 *
 * Upstream exits resolve names themselves (the exit's location decides where
 * a name points, and the exit's own rules protect its network), so only ports
 * and IP literals are checked here for them.
 *
 * Direct and HTTP-upstream sockets are read with `onread` into a buffer the
 * tunnel reuses (LIBRARIES.md: twice the throughput of 'data' events); see
 * TargetReader.
 */
import { connect, type Socket } from 'node:net';
import { SocksClient } from 'socks';
import type { ExitRoute } from './access.js';
import type { TargetGuard } from './target-guard.js';

export type DialErrorCode =
  | 'PORT_BLOCKED'
  | 'TARGET_FORBIDDEN'
  | 'DNS_FAILED'
  | 'CONNECTION_REFUSED'
  | 'NETWORK_UNREACHABLE'
  | 'HOST_UNREACHABLE'
  | 'TIMEOUT'
  | 'EXIT_FAILED'
  | 'EXIT_NOT_ALLOWED'
  | 'FAILED';

/** RFC 1928 section 6 reply codes for each dial outcome. */
export const socksReplyByDialCode = {
  PORT_BLOCKED: 0x02,
  TARGET_FORBIDDEN: 0x02,
  DNS_FAILED: 0x04,
  CONNECTION_REFUSED: 0x05,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  TIMEOUT: 0x06,
  EXIT_FAILED: 0x01,
  EXIT_NOT_ALLOWED: 0x02,
  FAILED: 0x01,
} satisfies Record<DialErrorCode, number>;

export const httpStatusByDialCode = {
  PORT_BLOCKED: 403,
  TARGET_FORBIDDEN: 403,
  DNS_FAILED: 502,
  CONNECTION_REFUSED: 502,
  NETWORK_UNREACHABLE: 502,
  HOST_UNREACHABLE: 502,
  TIMEOUT: 504,
  EXIT_FAILED: 502,
  EXIT_NOT_ALLOWED: 502,
  FAILED: 502,
} satisfies Record<DialErrorCode, number>;

/** Refusals by the guard are the customer's doing; they are counted as refusals, not failures. */
export function isTargetRefusal(code: DialErrorCode): code is 'PORT_BLOCKED' | 'TARGET_FORBIDDEN' {
  return code === 'PORT_BLOCKED' || code === 'TARGET_FORBIDDEN';
}

export class DialError extends Error {
  override readonly name = 'DialError';
  constructor(
    readonly code: DialErrorCode,
    message: string,
    /** True when the exit itself failed (unreachable upstream, upstream auth), not the target. */
    readonly isExitFault: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const errnoCodes: Readonly<Record<string, DialErrorCode>> = {
  ECONNREFUSED: 'CONNECTION_REFUSED',
  ENETUNREACH: 'NETWORK_UNREACHABLE',
  EHOSTUNREACH: 'HOST_UNREACHABLE',
  EHOSTDOWN: 'HOST_UNREACHABLE',
  EADDRNOTAVAIL: 'NETWORK_UNREACHABLE',
  ETIMEDOUT: 'TIMEOUT',
  ENOTFOUND: 'DNS_FAILED',
  EAI_AGAIN: 'DNS_FAILED',
  ECONNRESET: 'FAILED',
};

function errnoToCode(error: unknown): DialErrorCode {
  const errno = (error as { code?: unknown } | undefined)?.code;
  return typeof errno === 'string' ? (errnoCodes[errno] ?? 'FAILED') : 'FAILED';
}

/** The names the `socks` package gives RFC 1928 replies, in its error messages. */
const socksReplyNames: Readonly<Record<string, DialErrorCode>> = {
  Failure: 'EXIT_FAILED',
  NotAllowed: 'EXIT_NOT_ALLOWED',
  NetworkUnreachable: 'NETWORK_UNREACHABLE',
  HostUnreachable: 'HOST_UNREACHABLE',
  ConnectionRefused: 'CONNECTION_REFUSED',
  TTLExpired: 'TIMEOUT',
  CommandNotSupported: 'EXIT_FAILED',
  AddressNotSupported: 'HOST_UNREACHABLE',
};

/**
 * Shared by every tunnel for reads while it is not moving bulk data; a read
 * that lands here is always copied out (see TargetReader).
 */
const SHARED_READ_BUFFER = Buffer.allocUnsafeSlow(16 * 1024);
/** Each bulk tunnel's own read buffer: big reads are what makes bulk relaying fast. */
export const RELAY_BUFFER_BYTES = 256 * 1024;

/**
 * Own read buffers given back by tunnels that ended, for the next bulk
 * tunnel. A 256 KiB buffer is a mapping of its own (above malloc's mmap
 * threshold) and counts as external memory that hastens V8's full GCs, so
 * making and dropping one per tunnel cost a system call pair and GC time.
 * Bounded: at most this many (2 MiB) wait here.
 */
const SPARE_BUFFERS_MAX = 8;
const spareBuffers: Buffer[] = [];

function takeRelayBuffer(): Buffer {
  return spareBuffers.pop() ?? Buffer.allocUnsafeSlow(RELAY_BUFFER_BYTES);
}

/** Who takes the target's bytes: the relay, or an upstream handshake. */
export interface TargetConsumer {
  sendDown(chunk: Buffer): void;
}

/** Where a target socket points to its reader, for the shared `onread` callbacks. */
const kReader = Symbol('atlantic.targetReader');
type ReaderSocket = Socket & { [kReader]?: TargetReader };

/**
 * The buffer for a socket's next read. Node calls `onread.buffer()` without
 * the socket (when the handle is set up, and right after every
 * `onread.callback`), so the callback leaves the buffer of its own tunnel
 * here as its very last step and `nextReadBuffer()` hands it over and resets
 * it: a handle being set up (or a callback that threw) gets the shared
 * buffer, never another tunnel's.
 */
let pendingReadBuffer: Buffer = SHARED_READ_BUFFER;

function nextReadBuffer(): Buffer {
  const buffer = pendingReadBuffer;
  pendingReadBuffer = SHARED_READ_BUFFER;
  return buffer;
}

/** Node calls this as a method of the socket (`this` = the socket). */
function onTargetRead(this: ReaderSocket, bytes: number, buffer: Buffer): boolean {
  const reader = this[kReader];
  if (!reader) return false;
  const isReading = reader.receive(bytes, buffer);
  if (reader.buffer) pendingReadBuffer = reader.buffer;
  return isReading;
}

/** One `onread` for every target socket: no closures per tunnel. */
const TARGET_ONREAD = { buffer: nextReadBuffer, callback: onTargetRead };

/**
 * Reads a target socket with `onread`. A tunnel that is not moving bulk data
 * owns no buffer: its reads land in a small shared buffer and are copied
 * out, as big as they are. Once a read fills the shared buffer (more is
 * waiting: a download), the tunnel takes a 256 KiB buffer of its own
 * (uninitialised, so untouched pages cost no RSS), reuses it for every read,
 * and gives it back for the next bulk tunnel when it ends (release()). The
 * consumer must not let the socket read again while a write still holds the
 * previous chunk (the relay pauses until the write is flushed).
 */
export class TargetReader {
  /** This tunnel's own read buffer, once it moves bulk data. */
  buffer: Buffer | undefined;
  private consumer: TargetConsumer | undefined;
  private held: Buffer[] | undefined;

  /** Reads `socket` from now on (call before it connects). */
  static attachTo(socket: Socket, reader: TargetReader): void {
    (socket as ReaderSocket)[kReader] = reader;
  }

  receive(bytes: number, buffer: Buffer): boolean {
    let chunk = buffer.subarray(0, bytes);
    if (buffer === SHARED_READ_BUFFER) {
      chunk = Buffer.from(chunk);
      if (bytes === SHARED_READ_BUFFER.length) this.buffer = takeRelayBuffer();
    }
    if (this.consumer) {
      this.consumer.sendDown(chunk);
      return true;
    }
    // Nobody reads yet (a handshake answer is still being written): keep a
    // copy and stop reading until the relay takes over.
    (this.held ??= []).push(chunk.buffer === buffer.buffer ? Buffer.from(chunk) : chunk);
    return false;
  }

  /**
   * The socket has closed and nothing written from the buffer is pending:
   * the buffer goes to the next bulk tunnel.
   */
  release(): void {
    const buffer = this.buffer;
    this.buffer = undefined;
    this.consumer = undefined;
    if (buffer && spareBuffers.length < SPARE_BUFFERS_MAX) spareBuffers.push(buffer);
  }

  /** Hands every chunk to `consumer` from now on; returns what arrived before, if anything. */
  attach(consumer: TargetConsumer): Buffer[] | undefined {
    this.consumer = consumer;
    const held = this.held;
    this.held = undefined;
    return held;
  }

  /** Keeps bytes for the next consumer (what followed an upstream's CONNECT answer). */
  hold(chunk: Buffer): void {
    (this.held ??= []).push(Buffer.from(chunk));
  }

  /** Stops handing chunks on (held again until the next attach). */
  detach(): void {
    this.consumer = undefined;
  }
}

export interface Outbound {
  socket: Socket;
  /** Present when the socket is read with `onread`; otherwise read its 'data' events. */
  reader?: TargetReader;
}

export interface DialOptions {
  exit: ExitRoute;
  host: string;
  port: number;
  guard: TargetGuard;
  /** Per connection attempt, upstream handshakes included. */
  connectTimeoutMs: number;
}

/** Opens the outbound socket, or throws a DialError saying why not. */
export async function dial(options: DialOptions): Promise<Outbound> {
  switch (options.exit.kind) {
    case 'direct':
      return dialDirect(options);
    case 'socks5':
      return dialSocksUpstream(options, options.exit);
    case 'http':
      return dialHttpUpstream(options, options.exit);
  }
}

async function dialDirect(options: DialOptions): Promise<Outbound> {
  const check = await options.guard.check(options.host, options.port);
  if (!check.ok) throw new DialError(check.code, check.message, false, { cause: check.cause });
  let lastError: unknown;
  // Every checked address is tried in the order the resolver gave; a name
  // that resolves to ::1 and 127.0.0.1 reaches whichever listens.
  for (const { address } of check.addresses) {
    const reader = new TargetReader();
    try {
      const socket = await connectTcp(address, options.port, options.connectTimeoutMs, reader);
      return { socket, reader };
    } catch (error) {
      lastError = error;
      if (errnoToCode(error) === 'TIMEOUT') break;
    }
  }
  throw toDialError(lastError, `cannot connect to ${options.host}:${options.port}`, false);
}

function toDialError(error: unknown, message: string, isExitFault: boolean): DialError {
  if (error instanceof DialError) return error;
  return new DialError(errnoToCode(error), message, isExitFault, { cause: error });
}

/** net.connect with a deadline; rejects with the socket's own error (errno code kept). */
function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  reader?: TargetReader,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = reader
      ? connect({ host, port, allowHalfOpen: true, noDelay: true, onread: TARGET_ONREAD })
      : connect({ host, port, allowHalfOpen: true, noDelay: true });
    if (reader) TargetReader.attachTo(socket, reader);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    const onError = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** Checks what can be checked before an upstream proxy resolves the name itself. */
function guardForUpstream(options: DialOptions): void {
  const refusal = options.guard.checkPort(options.port) ?? options.guard.checkLiteral(options.host);
  if (refusal && !refusal.ok) throw new DialError(refusal.code, refusal.message, false);
}

type UpstreamExit = Extract<ExitRoute, { kind: 'socks5' | 'http' }>;

async function dialSocksUpstream(options: DialOptions, exit: UpstreamExit): Promise<Outbound> {
  guardForUpstream(options);
  try {
    const { socket } = await SocksClient.createConnection({
      command: 'connect',
      destination: { host: unbracket(options.host), port: options.port },
      proxy: {
        host: exit.host,
        port: exit.port,
        type: 5,
        ...(exit.username === undefined ? {} : { userId: exit.username }),
        ...(exit.password === undefined ? {} : { password: exit.password }),
      },
      timeout: options.connectTimeoutMs,
      set_tcp_nodelay: true,
    });
    return { socket };
  } catch (error) {
    throw socksUpstreamError(error, exit);
  }
}

function socksUpstreamError(error: unknown, exit: UpstreamExit): DialError {
  const message = error instanceof Error ? error.message : String(error);
  const replyName = / - (\w+)$/.exec(message)?.[1];
  const fromReply = replyName === undefined ? undefined : socksReplyNames[replyName];
  if (fromReply !== undefined) {
    // The upstream answered: it works, the target did not (unless it failed generally).
    return new DialError(fromReply, message, fromReply === 'EXIT_FAILED', { cause: error });
  }
  const code = /timed out/i.test(message) ? 'TIMEOUT' : 'EXIT_FAILED';
  return new DialError(code, `upstream ${exit.id}: ${message}`, true, { cause: error });
}

const MAX_UPSTREAM_HEAD_BYTES = 16 * 1024;

async function dialHttpUpstream(options: DialOptions, exit: UpstreamExit): Promise<Outbound> {
  guardForUpstream(options);
  const reader = new TargetReader();
  let socket: Socket;
  try {
    socket = await connectTcp(exit.host, exit.port, options.connectTimeoutMs, reader);
  } catch (error) {
    const code = errnoToCode(error) === 'TIMEOUT' ? 'TIMEOUT' : 'EXIT_FAILED';
    throw new DialError(code, `upstream ${exit.id} unreachable`, true, { cause: error });
  }
  try {
    await httpConnectHandshake(socket, reader, options, exit);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return { socket, reader };
}

function authority(host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/** Writes CONNECT, waits for the upstream's status line and keeps any bytes after its head. */
function httpConnectHandshake(
  socket: Socket,
  reader: TargetReader,
  options: DialOptions,
  exit: UpstreamExit,
): Promise<void> {
  const target = authority(options.host, options.port);
  const credentials =
    exit.username === undefined
      ? ''
      : `Proxy-Authorization: Basic ${Buffer.from(`${exit.username}:${exit.password ?? ''}`).toString('base64')}\r\n`;
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (error: DialError): void => {
      clearTimeout(timer);
      reader.detach();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new DialError('TIMEOUT', `upstream ${exit.id}: no answer to CONNECT`, true)),
      options.connectTimeoutMs,
    );
    socket.once('error', (error) =>
      fail(
        new DialError('EXIT_FAILED', `upstream ${exit.id}: ${error.message}`, true, {
          cause: error,
        }),
      ),
    );
    socket.once('end', () =>
      fail(new DialError('EXIT_FAILED', `upstream ${exit.id} closed during CONNECT`, true)),
    );
    reader.attach({
      sendDown: (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_UPSTREAM_HEAD_BYTES) {
            fail(new DialError('EXIT_FAILED', `upstream ${exit.id}: oversized answer`, true));
          }
          return;
        }
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('end');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, end))?.[1]);
        reader.detach();
        if (status >= 200 && status < 300) {
          // Bytes after the head belong to the tunnel: hand them to the relay.
          const rest = head.subarray(end + 4);
          if (rest.length > 0) reader.hold(rest);
          resolve();
          return;
        }
        reject(upstreamStatusError(status, exit));
      },
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${credentials}\r\n`);
  });
}

function upstreamStatusError(status: number, exit: UpstreamExit): DialError {
  const message = `upstream ${exit.id} answered CONNECT with ${Number.isNaN(status) ? 'garbage' : status}`;
  if (status === 504) return new DialError('TIMEOUT', message, false);
  if (status === 403) return new DialError('EXIT_NOT_ALLOWED', message, false);
  if (status === 502 || status === 503) return new DialError('HOST_UNREACHABLE', message, false);
  return new DialError('EXIT_FAILED', message, true);
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
