/**
 * HTTP proxy listener (node:http parses; bounded and timed by its options).
 *
 *   CONNECT host:port   -> Proxy-Authorization: Basic -> open (protocol 'https')
 *                       -> refused: 407 / 429 / 403 with the reason / 502 / 504
 *                       -> 200 Connection Established, then a raw relay
 *   GET http://host/... -> Proxy-Authorization: Basic -> open (protocol 'http')
 *                       -> the request head rewritten to origin form, without
 *                          proxy and hop-by-hop headers, `Connection: close`,
 *                          then the body, then the target's answer, raw
 *
 * Plain forwarding bills what is relayed: the rewritten head, the body as
 * framed on the wire to the target, and the target's answer byte for byte.
 * Each forwarded request takes over its client connection (one request per
 * connection), so no later request can ride a tunnel authorised for another.
 */
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AccessRefusal } from './access.js';
import { httpStatusByDialCode, type DialError } from './dial.js';
import type { ConnectionLog, OpenResult, TunnelService } from './gateway.js';

/** Request heads larger than this are answered 431 (node:http counts request line and headers). */
export const MAX_HEADER_BYTES = 16 * 1024;
const REALM = 'Atlantic';

interface Credentials {
  username: string;
  password: string;
}

/** RFC 7617 Basic credentials from Proxy-Authorization; undefined when absent or malformed. */
export function parseProxyAuthorization(header: string | undefined): Credentials | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** `host:port` or `[v6]:port` (RFC 9110 authority-form); undefined when malformed. */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(authority);
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = match[1].startsWith('[') ? match[1].slice(1, -1) : match[1];
  return { host, port };
}

interface Refusal {
  status: number;
  code: string;
  message: string;
}

function refusalFromAccess(refusal: AccessRefusal): Refusal {
  const status =
    refusal.kind === 'authentication' ? 407 : refusal.kind === 'rate_limited' ? 429 : 403;
  return { status, code: refusal.code, message: refusal.message };
}

function refusalFromDial(error: DialError): Refusal {
  return { status: httpStatusByDialCode[error.code], code: error.code, message: error.message };
}

function refusalFromResult(result: Exclude<OpenResult, { ok: true }>): Refusal {
  return 'refusal' in result
    ? refusalFromAccess(result.refusal)
    : refusalFromDial(result.dialError);
}

const MISSING_CREDENTIALS: Refusal = {
  status: 407,
  code: 'CREDENTIALS_REQUIRED',
  message: 'Proxy credentials are required (Proxy-Authorization: Basic)',
};

/** A complete response as one string, for sockets outside node:http's control. */
function rawResponse(refusal: Refusal): string {
  const body = `${refusal.code}: ${refusal.message}\n`;
  const challenge = refusal.status === 407 ? `Proxy-Authenticate: Basic realm="${REALM}"\r\n` : '';
  return (
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
    challenge +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

function respond(res: ServerResponse, refusal: Refusal): void {
  const body = `${refusal.code}: ${refusal.message}\n`;
  res.shouldKeepAlive = false;
  res.writeHead(refusal.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    ...(refusal.status === 407 ? { 'proxy-authenticate': `Basic realm="${REALM}"` } : {}),
  });
  res.end(body);
}

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

export function createHttpProxyServer(service: TunnelService): Server {
  const handshakeMs = service.timeouts.handshakeMs;
  const server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: handshakeMs,
    // The body of a forwarded request is the customer's traffic, timed by the relay's idle timeout.
    requestTimeout: 0,
    keepAliveTimeout: handshakeMs,
    connectionsCheckingInterval: Math.min(1_000, handshakeMs),
    noDelay: true,
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void handleConnect(service, req, socket as Socket, head);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void handleForward(service, req, res);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    answerClientError(service, error, socket);
  });
  return server;
}

/** Parser errors and timeouts before a request is complete: 400, 408 or 431, then close. */
function answerClientError(
  service: TunnelService,
  error: NodeJS.ErrnoException,
  socket: Duplex,
): void {
  const code = error.code ?? 'UNKNOWN';
  service.recordHandshakeFailure('http', code);
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? 408
        : 400;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  // A peer that never closes its side is not waited for.
  socket.resume();
  setTimeout(() => socket.destroy(), service.timeouts.handshakeMs).unref();
}

function closeWith(socket: Socket, refusal: Refusal): void {
  if (socket.destroyed) return;
  socket.end(rawResponse(refusal));
  // Read on (and drop) what the client still sends, so the close is a FIN.
  socket.resume();
}

async function handleConnect(
  service: TunnelService,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
): Promise<void> {
  // Nothing may be read until the relay owns the socket: early payload stays in the stream.
  socket.pause();
  socket.on('error', ignore);
  const conn = service.newConnection('http');
  const target = parseAuthority(req.url ?? '');
  if (!target) {
    service.recordHandshakeFailure('http', 'bad CONNECT target');
    closeWith(socket, { status: 400, code: 'BAD_TARGET', message: 'CONNECT needs host:port' });
    return;
  }
  const credentials = parseProxyAuthorization(req.headers['proxy-authorization']);
  if (!credentials) {
    service.recordAuthFailure(MISSING_CREDENTIALS.code);
    closeWith(socket, MISSING_CREDENTIALS);
    return;
  }
  const result = await openOrFail(service, conn, socket, {
    ...credentials,
    protocol: 'https',
    ...target,
  });
  if (!result.ok) {
    closeWith(socket, refusalFromResult(result));
    return;
  }
  socket.write(ESTABLISHED);
  service.startRelay({
    client: socket,
    outbound: result.outbound,
    grant: result.grant,
    protocol: 'https',
    clientHead: head,
    conn,
  });
}

async function openOrFail(
  service: TunnelService,
  conn: ConnectionLog,
  socket: Socket,
  request: Credentials & { protocol: 'http' | 'https'; host: string; port: number },
): Promise<OpenResult> {
  try {
    return await service.open({ ...request, sourceIp: socket.remoteAddress ?? '' }, socket);
  } catch (error) {
    conn.log.error({ err: error }, 'http.open_failed');
    return {
      ok: false,
      refusal: {
        ok: false,
        kind: 'entitlement',
        code: 'INTERNAL',
        message: 'Something went wrong',
      },
    };
  }
}

function ignore(): void {}

/** Sockets handed to a forwarded request; later pipelined requests on them are not served. */
const takenSockets = new WeakSet<Socket>();

/** Hop-by-hop (RFC 9110 section 7.6.1) and proxy-only headers, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  // node:http already answered 100 Continue to the client.
  'expect',
]);

function parseForwardTarget(
  url: string | undefined,
): { host: string; port: number; path: string } | undefined {
  if (url === undefined || !/^http:\/\//i.test(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  if (host === '') return undefined;
  return {
    host,
    port: parsed.port === '' ? 80 : Number(parsed.port),
    path: `${parsed.pathname}${parsed.search}`,
  };
}

/** The request head as the target receives it: origin-form, no hop-by-hop headers, one request. */
function originRequestHead(req: IncomingMessage, path: string, hostHeader: string): string {
  const named = new Set(
    (req.headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  let head = `${req.method ?? 'GET'} ${path} HTTP/1.1\r\n`;
  let hasHost = false;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    if (lower === 'host') hasHost = true;
    head += `${name}: ${raw[i + 1] ?? ''}\r\n`;
  }
  if (!hasHost) head += `Host: ${hostHeader}\r\n`;
  return `${head}Connection: close\r\n\r\n`;
}

function isChunked(req: IncomingMessage): boolean {
  return /(?:^|,)\s*chunked\s*$/i.test(req.headers['transfer-encoding'] ?? '');
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** node:http hands the body de-chunked; a chunked request is re-framed for the target. */
function frameChunk(chunk: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`${chunk.length.toString(16)}\r\n`),
    chunk,
    Buffer.from('\r\n'),
  ]);
}

async function handleForward(
  service: TunnelService,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const socket = req.socket;
  if (takenSockets.has(socket)) return;
  const target = parseForwardTarget(req.url);
  if (!target) {
    service.recordHandshakeFailure('http', 'not a proxy request');
    respond(res, {
      status: 400,
      code: 'BAD_REQUEST',
      message: 'Send absolute http:// URLs, or CONNECT for https',
    });
    return;
  }
  const credentials = parseProxyAuthorization(req.headers['proxy-authorization']);
  if (!credentials) {
    service.recordAuthFailure(MISSING_CREDENTIALS.code);
    respond(res, MISSING_CREDENTIALS);
    return;
  }
  req.pause();
  const conn = service.newConnection('http');
  const result = await openOrFail(service, conn, socket, {
    ...credentials,
    protocol: 'http',
    host: target.host,
    port: target.port,
  });
  if (!result.ok) {
    respond(res, refusalFromResult(result));
    return;
  }
  takenSockets.add(socket);
  const hostHeader = target.port === 80 ? target.host : `${target.host}:${target.port}`;
  const tunnel = service.startRelay({
    client: socket,
    outbound: result.outbound,
    grant: result.grant,
    protocol: 'http',
    clientHead: Buffer.from(originRequestHead(req, target.path, hostHeader), 'latin1'),
    clientSource: req,
    conn,
  });
  const chunked = isChunked(req);
  req.on('data', (chunk: Buffer) => tunnel.sendUp(chunked ? frameChunk(chunk) : chunk));
  if (chunked) req.on('end', () => tunnel.sendUp(LAST_CHUNK));
  req.resume();
}
