/**
 * Wire-test kit for the gateway: a fake AccessController (our own seam, an
 * in-memory table of users with a byte budget and cuts on demand), real local
 * target servers (raw TCP echo, a byte source, HTTP, HTTPS with a self-signed
 * certificate) and small raw-socket and curl helpers. Everything listens on
 * port 0 and waits for events, never for time.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Clock } from '../../lib/clock.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { createProxyRole, type ProxyRole, type ProxyRoleOptions } from '../../proxy/index.js';
import type {
  AccessDecision,
  AccessRefusal,
  AccessRequest,
  ExitRoute,
  TunnelGrant,
} from '../../proxy/access.js';
import {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type WireAccessController,
} from '../../proxy/gateway.js';

export interface FakeUser {
  password: string;
  /** Every request of this user is refused with this. */
  refusal?: AccessRefusal;
  /** Bytes this user may still relay (shared by their tunnels); unlimited when undefined. */
  budgetBytes?: number;
  exit?: ExitRoute;
}

export class FakeGrant implements TunnelGrant {
  allowedBytes = 0;
  closeCalls = 0;
  readonly exitFailures: Error[] = [];
  private readonly cutListeners: ((code: string) => void)[] = [];
  readonly closed: Promise<void>;
  private resolveClosed: () => void = () => undefined;

  constructor(
    private readonly access: FakeAccess,
    readonly request: AccessRequest,
    readonly user: FakeUser,
    readonly exit: ExitRoute,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get accountId(): string {
    return `acct-${this.request.username}`;
  }

  allow(bytes: number): number {
    const budget = this.user.budgetBytes;
    const granted = budget === undefined ? bytes : Math.min(bytes, budget);
    if (budget !== undefined) this.user.budgetBytes = budget - granted;
    this.allowedBytes += granted;
    return granted;
  }

  onCut(listener: (code: string) => void): void {
    this.cutListeners.push(listener);
  }

  cut(code: string): void {
    for (const listener of this.cutListeners) listener(code);
  }

  exitFailed(error: Error): void {
    this.exitFailures.push(error);
  }

  close(): void {
    this.closeCalls += 1;
    this.access.live.delete(this);
    this.resolveClosed();
  }
}

/** The test double of AccessController: decisions from a table, grants recorded. */
export class FakeAccess implements WireAccessController {
  readonly users = new Map<string, FakeUser>();
  readonly requests: AccessRequest[] = [];
  readonly grants: FakeGrant[] = [];
  readonly live = new Set<FakeGrant>();
  private grantWaiters: ((grant: FakeGrant) => void)[] = [];

  addUser(username: string, user: FakeUser): this {
    this.users.set(username, user);
    return this;
  }

  authenticate(request: {
    username: string;
    password: string;
  }): Promise<AccessRefusal | undefined> {
    const user = this.users.get(request.username);
    return Promise.resolve(
      user && user.password === request.password ? undefined : badCredentials(),
    );
  }

  authorize(request: AccessRequest): Promise<AccessDecision> {
    this.requests.push(request);
    const user = this.users.get(request.username);
    if (!user || user.password !== request.password) return Promise.resolve(badCredentials());
    if (user.refusal) return Promise.resolve(user.refusal);
    const grant = new FakeGrant(this, request, user, user.exit ?? { kind: 'direct', id: 'direct' });
    this.grants.push(grant);
    this.live.add(grant);
    for (const waiter of this.grantWaiters.splice(0)) waiter(grant);
    return Promise.resolve({ ok: true, grant });
  }

  /** The next grant handed out (or the latest, if one exists and `fresh` is false). */
  nextGrant(): Promise<FakeGrant> {
    return new Promise((resolve) => this.grantWaiters.push(resolve));
  }

  /** Resolves once every grant handed out so far was closed. */
  async allClosed(): Promise<void> {
    await Promise.all(this.grants.map((grant) => grant.closed));
  }

  totalAllowed(): number {
    return this.grants.reduce((sum, grant) => sum + grant.allowedBytes, 0);
  }
}

function badCredentials(): AccessRefusal {
  return {
    ok: false,
    kind: 'authentication',
    code: 'BAD_CREDENTIALS',
    message: 'Wrong proxy username or password',
  };
}

export const silentLogger = pino({ level: 'silent' });

export interface StartedGateway {
  gateway: Gateway;
  socksPort: number;
  httpPort: number;
  stop(): Promise<void>;
}

export async function startGateway(
  access: WireAccessController,
  options: Partial<Omit<GatewayOptions, 'access'>> = {},
): Promise<StartedGateway> {
  const gateway = createGateway({
    access,
    logger: silentLogger,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    socksPort: 0,
    httpPort: 0,
    host: '127.0.0.1',
    allowPrivateTargets: true,
    ...options,
  });
  await gateway.start();
  const { socks, http } = gateway.addresses();
  return {
    gateway,
    socksPort: socks.port,
    httpPort: http.port,
    stop: () => gateway.stop({ drainTimeoutMs: 0 }),
  };
}

/** A server plus every socket it accepted, so tests can see who connected. */
export interface TcpTarget {
  server: Server;
  port: number;
  /** Sockets accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

async function listenTcp(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function trackTarget(server: Server, port: number): TcpTarget {
  const sockets = new Set<Socket>();
  const target: TcpTarget = {
    server,
    port,
    accepted: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', (socket: Socket) => {
    target.accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  return target;
}

/** Echoes every byte back and half-closes when the client does. */
export async function startEchoServer(host = '127.0.0.1'): Promise<TcpTarget> {
  const server = createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
  return trackTarget(server, await listenTcp(server, host));
}

/**
 * On each connection, sends `downloadBytes` of a known pattern then ends, and
 * counts what it receives (`received` resolves with the count on the peer's end).
 */
export async function startSourceServer(
  downloadBytes: number,
): Promise<TcpTarget & { received: Promise<number>[] }> {
  const received: Promise<number>[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let count = 0;
    socket.on('data', (chunk: Buffer) => (count += chunk.length));
    received.push(
      new Promise((resolve) => {
        socket.on('end', () => resolve(count));
        socket.on('close', () => resolve(count));
      }),
    );
    writePattern(socket, downloadBytes);
  });
  const target = trackTarget(server, await listenTcp(server));
  return Object.assign(target, { received });
}

/** Byte i of the pattern is i mod 251 (a prime, so chunk boundaries never line up with it). */
export function patternByte(index: number): number {
  return index % 251;
}

function writePattern(socket: Socket, total: number): void {
  const block = Buffer.alloc(251 * 256);
  for (let i = 0; i < block.length; i++) block[i] = patternByte(i);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const size = Math.min(block.length, total - sent);
      sent += size;
      if (!socket.write(size === block.length ? block : block.subarray(0, size))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

/** Checks `data` starts at pattern offset 0 and follows it throughout. */
export function followsPattern(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== patternByte(i)) return false;
  return true;
}

export interface HttpTarget {
  server: HttpServer;
  port: number;
  /** Raw request heads (header names lower-cased) seen by the target. */
  requests: {
    method: string;
    url: string;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }[];
  close(): Promise<void>;
}

function httpHandler(target: { requests: HttpTarget['requests'] }) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      target.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
      });
      const answer = `hello from target: ${req.method} ${req.url} ${body.length}`;
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(answer),
      });
      res.end(answer);
    });
  };
}

export async function startHttpTarget(): Promise<HttpTarget> {
  const target = { requests: [] as HttpTarget['requests'] };
  const server = createHttpServer(httpHandler(target));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests: target.requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A self-signed certificate for localhost made with openssl, or undefined without it. */
export function selfSignedCertificate(): { key: string; cert: string } | undefined {
  if (!hasCommand('openssl')) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlantic-cert-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

export async function startHttpsTarget(credentials: {
  key: string;
  cert: string;
}): Promise<HttpTarget> {
  const target = { requests: [] as HttpTarget['requests'] };
  const server = createHttpsServer(credentials, httpHandler(target));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests: target.requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs curl with `args`; resolves with its exit code and output (never rejects on a curl error). */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['--silent', '--show-error', '--max-time', '20', ...args],
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A raw TCP client that collects everything the server sends until it closes. */
export class RawClient {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  private waiters: { bytes: number; resolve: (data: Buffer) => void }[] = [];
  readonly ended: Promise<Buffer>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.settle();
    });
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) => socket.once('close', () => resolve(this.data())));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = connect({ port, host, allowHalfOpen: false });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once at least `bytes` bytes arrived in total (or the socket closed first). */
  async read(bytes: number): Promise<Buffer> {
    if (this.data().length >= bytes || this.socket.destroyed) return this.data();
    return Promise.race([
      new Promise<Buffer>((resolve) => {
        this.waiters.push({ bytes, resolve });
      }),
      this.ended,
    ]);
  }

  /** Takes the first `bytes` bytes off the front (waiting for them). */
  async take(bytes: number): Promise<Buffer> {
    const data = await this.read(bytes);
    const taken = data.subarray(0, bytes);
    this.chunks = [data.subarray(bytes)];
    return taken;
  }

  write(bytes: number[] | Buffer | string): void {
    this.socket.write(typeof bytes === 'string' ? bytes : Buffer.from(bytes));
  }

  private settle(): void {
    const length = this.data().length;
    this.waiters = this.waiters.filter((waiter) => {
      if (length < waiter.bytes) return true;
      waiter.resolve(this.data());
      return false;
    });
  }
}

/** The RFC 1929 sub-negotiation bytes for a username and password. */
export function authMessage(username: string, password: string): Buffer {
  const user = Buffer.from(username);
  const pass = Buffer.from(password);
  return Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]);
}

/** An RFC 1928 CONNECT request for an IPv4 literal or a domain name. */
export function connectRequest(host: string, port: number): Buffer {
  const portBytes = Buffer.from([port >> 8, port & 0xff]);
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) return Buffer.concat([Buffer.from([5, 1, 0, 1, ...v4.slice(1).map(Number)]), portBytes]);
  const name = Buffer.from(host);
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, portBytes]);
}

/** A writable that just counts (for streams whose bytes only need counting). */
export function countingSink(): Writable & { count: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.count += chunk.length;
      callback();
    },
  }) as Writable & { count: number };
  sink.count = 0;
  return sink;
}

/** A free TCP port on 127.0.0.1 (for third-party daemons that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenTcp(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Resolves once something accepts on `port`, retrying refused connects on each
 * turn of the loop; `child` (the daemon meant to listen there) failing ends
 * the wait at once with its exit code.
 */
export async function whenAccepting(
  port: number,
  options: { attempts?: number; child?: ChildProcess; name?: string } = {},
): Promise<void> {
  const { attempts = 5_000, child, name = 'nothing' } = options;
  for (let i = 0; i < attempts; i++) {
    if (child && child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`${name} does not accept on port ${port}`);
}

export interface Daemon {
  port: number;
  stop(): Promise<void>;
}

/** Starts microsocks on a free port, with username auth when `credentials` are given. */
export async function startMicrosocks(credentials?: {
  username: string;
  password: string;
}): Promise<Daemon> {
  const port = await freePort();
  const auth = credentials ? ['-u', credentials.username, '-P', credentials.password] : [];
  const child = spawn('microsocks', ['-i', '127.0.0.1', '-p', String(port), ...auth], {
    stdio: 'ignore',
  });
  await whenAccepting(port, { child, name: 'microsocks' });
  return { port, stop: () => stopChild(child) };
}

/**
 * Starts danted in the foreground with a config in a temp dir. Without root it
 * runs as the current user (no privileged uid switch). Username auth in Dante
 * means system accounts, so the wire tests run it with method `none`.
 */
export async function startDanted(): Promise<Daemon> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlantic-danted-'));
  const config = path.join(dir, 'danted.conf');
  writeFileSync(
    config,
    [
      'logoutput: stderr',
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      'socksmethod: none',
      'client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      'socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      '',
    ].join('\n'),
  );
  const child = spawn('danted', ['-f', config, '-N', '1', '-p', path.join(dir, 'danted.pid')], {
    stdio: 'ignore',
  });
  await whenAccepting(port, { child, name: 'danted' });
  return { port, stop: () => stopChild(child) };
}

/** Stops a daemon with SIGTERM and waits for it to exit (at once if it already has). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

export interface TestProxyRoleOptions {
  clock: Clock;
  /** Default true: the tests' targets are on loopback (the target guard has its own tests). */
  allowPrivateTargets?: boolean;
  /** Ports a Starter plan may CONNECT to; default [443]. */
  httpsOnlyPorts?: readonly number[];
  /** Default [25]. */
  blockedPorts?: readonly number[];
  /** Default: refresh every 100 ms, flush every 200 ms (leases as in production). */
  accessOptions?: ProxyRoleOptions['accessOptions'];
  /** Default 'silent'. */
  logLevel?: 'silent' | 'warn';
}

/**
 * The real proxy role (access controller, listeners, leases, metering) on
 * 127.0.0.1 with ports picked by the system, started; stop it before the
 * database goes.
 */
export async function startTestProxyRole(options: TestProxyRoleOptions): Promise<ProxyRole> {
  const role = createProxyRole({
    clock: options.clock,
    logger: pino({ level: options.logLevel ?? 'silent' }),
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    host: '127.0.0.1',
    socksPort: 0,
    httpPort: 0,
    allowPrivateTargets: options.allowPrivateTargets ?? true,
    httpsOnlyPorts: options.httpsOnlyPorts ?? [443],
    blockedPorts: options.blockedPorts ?? [25],
    accessOptions: options.accessOptions ?? { refreshMs: 100, flushMs: 200 },
    drainTimeoutMs: 1_000,
  });
  await role.start();
  return role;
}
