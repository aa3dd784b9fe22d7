/**
 * The gateway's wire layer: the SOCKS5 and HTTP proxy listeners around one
 * tunnel service.
 *
 *   listener handshake -> TunnelService.open(): authorize() -> dial the exit
 *                      -> listener answers (reply code / status line)
 *                      -> TunnelService.startRelay(): relay, metering, close
 *
 * All policy lives behind the AccessController (proxy/access.ts); this file
 * only turns its decisions and dial outcomes into replies, metrics and logs.
 */
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../lib/logger.js';
import type {
  AccessController,
  AccessRefusal,
  AccessRequest,
  Protocol,
  TunnelGrant,
} from './access.js';
import { dial, DialError, isTargetRefusal, socksReplyByDialCode, type Outbound } from './dial.js';
import { createHttpProxyServer } from './http-proxy.js';
import { IdleSweep, Relay, type Pausable, type RelayStats } from './relay.js';
import {
  failureReply,
  releaseHandshakeSocket,
  Socks5Handshake,
  SocksReply,
  successReply,
  type Socks5Handlers,
  type SocksRequest,
} from './socks5.js';
import { DEFAULT_BLOCKED_PORTS, TargetGuard } from './target-guard.js';

/** What the customer reads in "why did my proxy fail" when the guard refused the destination. */
const TARGET_REFUSAL_TEXT: Record<'PORT_BLOCKED' | 'TARGET_FORBIDDEN', string> = {
  PORT_BLOCKED:
    'That port is blocked for everyone (mail ports, to stop spam). Use the service on another port.',
  TARGET_FORBIDDEN:
    'That address is private (this machine, a home or office network, or a cloud metadata address). The proxy only reaches public internet addresses.',
};

/**
 * An AccessController may also check credentials on their own. SOCKS5 asks
 * for them (RFC 1929) before it names the target, so with this method a bad
 * password is answered at the auth step; without it, the auth step accepts
 * and authorize() refuses at the request step (reply 0x02).
 */
export interface WireAccessController extends AccessController {
  authenticate?(request: {
    username: string;
    password: string;
    sourceIp: string;
  }): Promise<AccessRefusal | undefined>;
}

export interface GatewayTimeouts {
  /** From accept to a complete SOCKS request / HTTP request head. Default 10 s. */
  handshakeMs?: number;
  /** Connecting to the exit or target, upstream handshakes included. Default 10 s. */
  connectMs?: number;
  /** A tunnel with no byte either way for this long is closed. Default 5 min; 0 = never. */
  idleMs?: number;
}

export interface GatewayOptions {
  access: WireAccessController;
  logger: Logger;
  metrics: Registry;
  /** 0 picks a free port. */
  socksPort: number;
  /** 0 picks a free port. */
  httpPort: number;
  /** Bind address. Default 0.0.0.0. */
  host?: string;
  allowPrivateTargets: boolean;
  /** Destination ports refused to everyone. Default [25]. */
  blockedPorts?: readonly number[];
  timeouts?: GatewayTimeouts;
}

export interface StopOptions {
  /** How long open tunnels may run on after the listeners closed. Default 10 s. */
  drainTimeoutMs?: number;
}

export interface Gateway {
  readonly name: 'proxy';
  start(): Promise<void>;
  stop(options?: StopOptions): Promise<void>;
  addresses(): { socks: AddressInfo; http: AddressInfo };
  /** Live tunnels in this process. */
  activeTunnels(): number;
  /** Accepted sockets still open on both listeners (handshakes and tunnels). */
  openConnections(): number;
  /** What the listeners themselves count (net.Server.getConnections). */
  serverConnections(): Promise<{ socks: number; http: number }>;
  /** Resolves once no accepted socket is open (at once if none is). */
  whenNoConnections(): Promise<void>;
}

export type OpenResult =
  | { ok: true; grant: TunnelGrant; outbound: Outbound }
  | { ok: false; refusal: AccessRefusal }
  | { ok: false; dialError: DialError };

/** Created lazily: most connections never log, and a pino child per accept costs. */
export class ConnectionLog {
  private child: Logger | undefined;
  constructor(
    private readonly parent: Logger,
    private readonly listener: 'socks5' | 'http',
    private readonly number: number,
  ) {}
  /** `s1a`, `h2b`: the listener's initial and a per-process number (base 36). */
  get connId(): string {
    return `${this.listener[0]}${this.number.toString(36)}`;
  }
  get log(): Logger {
    this.child ??= this.parent.child({ connId: this.connId, listener: this.listener });
    return this.child;
  }
}

/** What both listeners need from the gateway. */
export interface TunnelService {
  readonly timeouts: Required<GatewayTimeouts>;
  readonly isStopping: boolean;
  open(request: AccessRequest, client: Socket): Promise<OpenResult>;
  startRelay(options: {
    client: Socket;
    outbound: Outbound;
    grant: TunnelGrant;
    protocol: Protocol;
    clientHead?: Buffer;
    clientSource?: Pausable;
    conn: ConnectionLog;
  }): Relay;
  recordHandshakeFailure(listener: 'socks5' | 'http', reason: string): void;
  recordAuthFailure(reason: string): void;
  newConnection(listener: 'socks5' | 'http'): ConnectionLog;
}

class GatewayMetrics {
  readonly activeTunnels: Gauge<'protocol'>;
  readonly bytes: Counter<'direction'>;
  readonly authFailures: Counter<'reason'>;
  readonly refusals: Counter<'reason'>;
  readonly handshakeFailures: Counter<'listener' | 'reason'>;
  readonly dialFailures: Counter<'code'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.activeTunnels = new Gauge({
      name: 'atlantic_proxy_active_tunnels',
      help: 'Tunnels relaying bytes now',
      labelNames: ['protocol'],
      registers,
    });
    this.bytes = new Counter({
      name: 'atlantic_proxy_bytes_relayed_total',
      help: 'Payload bytes relayed (billed), counted when a tunnel ends',
      labelNames: ['direction'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'atlantic_proxy_auth_failures_total',
      help: 'Failed proxy authentications by reason code',
      labelNames: ['reason'],
      registers,
    });
    this.refusals = new Counter({
      name: 'atlantic_proxy_refusals_total',
      help: 'Authenticated requests refused, by reason code',
      labelNames: ['reason'],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'atlantic_proxy_handshake_failures_total',
      help: 'Connections closed during the handshake, by listener and reason',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.dialFailures = new Counter({
      name: 'atlantic_proxy_dial_failures_total',
      help: 'Failed connections to exits or targets, by code',
      labelNames: ['code'],
      registers,
    });
  }
}

/** Handshake failure reasons that are free text are folded into one label value. */
function reasonLabel(reason: string): string {
  return reason.length <= 40 ? reason : 'other';
}

/** Label objects made once (prom-client hashes them on every inc/dec). */
const PROTOCOL_LABELS: Readonly<Record<Protocol, { protocol: Protocol }>> = {
  http: { protocol: 'http' },
  https: { protocol: 'https' },
  socks5: { protocol: 'socks5' },
};
const UP_LABELS = { direction: 'up' } as const;
const DOWN_LABELS = { direction: 'down' } as const;

/** A relay with what the gateway needs when it ends. */
class Tunnel extends Relay {
  protocol: Protocol = 'socks5';
  conn: ConnectionLog | undefined;
}

class Tunnels implements TunnelService {
  readonly timeouts: Required<GatewayTimeouts>;
  readonly relays = new Set<Relay>();
  isStopping = false;
  private readonly guard: TargetGuard;
  private readonly metrics: GatewayMetrics;
  private nextConnId = 0;
  /** SOCKS handshakes under way, timed by one sweep (see Socks5Handshake.tick). */
  private readonly handshakes = new Set<Socks5Handshake>();
  private handshakeSweep: NodeJS.Timeout | undefined;
  private idleSweep: IdleSweep | undefined;
  /** One handler object for every SOCKS connection (no closures per accept). */
  readonly socksHandlers: Socks5Handlers;
  /** Bound once: every relay ends through it. */
  private readonly onRelayEnd = (stats: RelayStats, relay: Relay): void =>
    this.relayEnded(stats, relay as Tunnel);

  constructor(private readonly options: GatewayOptions) {
    this.timeouts = {
      handshakeMs: options.timeouts?.handshakeMs ?? 10_000,
      connectMs: options.timeouts?.connectMs ?? 10_000,
      idleMs: options.timeouts?.idleMs ?? 300_000,
    };
    this.guard = new TargetGuard({
      allowPrivateTargets: options.allowPrivateTargets,
      blockedPorts: options.blockedPorts ?? DEFAULT_BLOCKED_PORTS,
    });
    this.metrics = new GatewayMetrics(options.metrics);
    this.socksHandlers = {
      pending: this.handshakes,
      handshakeTimeoutMs: this.timeouts.handshakeMs,
      authenticate: (username, password, sourceIp) =>
        this.authenticate(username, password, sourceIp),
      onHandshakeFailure: (reason) => this.recordHandshakeFailure('socks5', reason),
      onRequest: (request) => {
        void openSocksTunnel(this, request, this.newConnection('socks5'));
      },
    };
  }

  /** Starts the timers that close slow handshakes and idle tunnels (unref'd). */
  startSweeps(): void {
    this.stopSweeps();
    const period = Math.max(1, Math.ceil(this.timeouts.handshakeMs / Socks5Handshake.TICKS));
    this.handshakeSweep = setInterval(() => {
      for (const handshake of this.handshakes) handshake.tick();
    }, period);
    this.handshakeSweep.unref();
    if (this.timeouts.idleMs > 0) this.idleSweep = new IdleSweep(this.timeouts.idleMs);
  }

  stopSweeps(): void {
    clearInterval(this.handshakeSweep);
    this.handshakeSweep = undefined;
    this.idleSweep?.close();
    this.idleSweep = undefined;
  }

  newConnection(listener: 'socks5' | 'http'): ConnectionLog {
    this.nextConnId += 1;
    return new ConnectionLog(this.options.logger, listener, this.nextConnId);
  }

  async authenticate(
    username: string,
    password: string,
    sourceIp: string,
  ): Promise<AccessRefusal | undefined> {
    const access = this.options.access;
    if (!access.authenticate) return undefined;
    const refusal = await access.authenticate({ username, password, sourceIp });
    if (refusal) this.recordAuthFailure(refusal.code);
    return refusal;
  }

  async open(request: AccessRequest, client: Socket): Promise<OpenResult> {
    const decision = await this.options.access.authorize(request);
    if (!decision.ok) {
      if (decision.kind === 'authentication') this.recordAuthFailure(decision.code);
      else this.metrics.refusals.inc({ reason: decision.code });
      return { ok: false, refusal: decision };
    }
    const grant = decision.grant;
    if (client.destroyed || this.isStopping) {
      grant.close();
      return {
        ok: false,
        dialError: new DialError('FAILED', 'client left before the dial', false),
      };
    }
    try {
      const outbound = await dial({
        exit: grant.exit,
        host: request.host,
        port: request.port,
        guard: this.guard,
        connectTimeoutMs: this.timeouts.connectMs,
      });
      if (client.destroyed) {
        outbound.socket.destroy();
        grant.close();
        return {
          ok: false,
          dialError: new DialError('FAILED', 'client left during the dial', false),
        };
      }
      return { ok: true, grant, outbound };
    } catch (error) {
      const dialError =
        error instanceof DialError
          ? error
          : new DialError('FAILED', String(error), true, { cause: error });
      if (dialError.isExitFault) grant.exitFailed(dialError);
      if (isTargetRefusal(dialError.code)) {
        grant.targetRefused?.(dialError.code, TARGET_REFUSAL_TEXT[dialError.code]);
        this.metrics.refusals.inc({ reason: dialError.code });
      } else {
        this.metrics.dialFailures.inc({ code: dialError.code });
      }
      grant.close();
      return { ok: false, dialError };
    }
  }

  startRelay(options: Parameters<TunnelService['startRelay']>[0]): Relay {
    this.metrics.activeTunnels.inc(PROTOCOL_LABELS[options.protocol]);
    const tunnel = new Tunnel({
      client: options.client,
      target: options.outbound.socket,
      grant: options.grant,
      idleSweep: this.idleSweep,
      targetReader: options.outbound.reader,
      clientHead: options.clientHead,
      clientSource: options.clientSource,
      onEnd: this.onRelayEnd,
    });
    tunnel.protocol = options.protocol;
    tunnel.conn = options.conn;
    this.relays.add(tunnel);
    return tunnel.start();
  }

  private relayEnded(stats: RelayStats, tunnel: Tunnel): void {
    this.metrics.activeTunnels.dec(PROTOCOL_LABELS[tunnel.protocol]);
    this.metrics.bytes.inc(UP_LABELS, stats.bytesUp);
    this.metrics.bytes.inc(DOWN_LABELS, stats.bytesDown);
    this.relays.delete(tunnel);
    if (stats.endReason !== undefined && stats.endReason !== 'SHUTDOWN') {
      tunnel.conn?.log.debug({ ...stats }, 'tunnel.cut');
    }
  }

  recordHandshakeFailure(listener: 'socks5' | 'http', reason: string): void {
    this.metrics.handshakeFailures.inc({ listener, reason: reasonLabel(reason) });
  }

  recordAuthFailure(reason: string): void {
    this.metrics.authFailures.inc({ reason });
  }
}

/** SOCKS5: each accepted socket runs the handshake, then the tunnel service. */
function createSocksServer(service: Tunnels): Server {
  const server = createTcpServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false });
  const handlers = service.socksHandlers;
  server.on('connection', (socket: Socket) => {
    new Socks5Handshake(socket, handlers).start();
  });
  return server;
}

async function openSocksTunnel(
  service: Tunnels,
  request: SocksRequest,
  conn: ConnectionLog,
): Promise<void> {
  const { socket } = request;
  let result: OpenResult;
  try {
    result = await service.open(
      {
        username: request.username,
        password: request.password,
        protocol: 'socks5',
        host: request.host,
        port: request.port,
        sourceIp: socket.remoteAddress ?? '',
      },
      socket,
    );
  } catch (error) {
    conn.log.error({ err: error }, 'socks.open_failed');
    refuseSocks(socket, SocksReply.GENERAL_FAILURE);
    return;
  }
  if (!result.ok) {
    const code =
      'refusal' in result ? SocksReply.NOT_ALLOWED : socksReplyByDialCode[result.dialError.code];
    refuseSocks(socket, code);
    return;
  }
  const { outbound } = result;
  socket.write(successReply(outbound.socket.localAddress, outbound.socket.localPort));
  releaseHandshakeSocket(socket);
  service.startRelay({
    client: socket,
    outbound,
    grant: result.grant,
    protocol: 'socks5',
    clientHead: request.head,
    conn,
  });
}

function refuseSocks(socket: Socket, code: number): void {
  if (socket.destroyed) return;
  socket.end(failureReply(code));
  // Drain whatever else arrives so the close is a FIN, not a reset.
  socket.resume();
}

function listen(server: Server | HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export function createGateway(options: GatewayOptions): Gateway {
  const logger = options.logger.child({ role: 'proxy' });
  const service = new Tunnels({ ...options, logger });
  const host = options.host ?? '0.0.0.0';
  const sockets = new Set<Socket>();
  let socksServer: Server | undefined;
  let httpServer: HttpServer | undefined;

  /** Every accepted socket is tracked, so stop() can end the stragglers. */
  let idleWaiters: (() => void)[] = [];
  /** One 'close' listener for every socket ('close' comes once; `this` is the socket). */
  function untrack(this: Socket): void {
    sockets.delete(this);
    if (sockets.size === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', untrack);
  };

  return {
    name: 'proxy',
    async start() {
      service.isStopping = false;
      service.startSweeps();
      const socks = createSocksServer(service);
      const http = createHttpProxyServer(service);
      socks.on('connection', track);
      http.on('connection', track);
      await listen(socks, options.socksPort, host);
      await listen(http, options.httpPort, host);
      socksServer = socks;
      httpServer = http;
      const { socks: socksAddress, http: httpAddress } = this.addresses();
      logger.info(
        { socksPort: socksAddress.port, httpPort: httpAddress.port, host },
        'proxy.listening',
      );
    },
    async stop(stopOptions: StopOptions = {}) {
      const socks = socksServer;
      const http = httpServer;
      if (!socks || !http) return;
      socksServer = undefined;
      httpServer = undefined;
      service.isStopping = true;
      const closed = Promise.all([closeServer(socks), closeServer(http)]);
      http.closeIdleConnections();
      const deadline = setTimeout(() => {
        for (const tunnel of service.relays) tunnel.destroy('SHUTDOWN');
        for (const socket of sockets) socket.destroy();
      }, stopOptions.drainTimeoutMs ?? 10_000);
      await closed;
      clearTimeout(deadline);
      service.stopSweeps();
      logger.info('proxy.stopped');
    },
    addresses() {
      if (!socksServer || !httpServer) throw new Error('proxy gateway is not started');
      return {
        socks: socksServer.address() as AddressInfo,
        http: httpServer.address() as AddressInfo,
      };
    },
    activeTunnels() {
      return service.relays.size;
    },
    openConnections() {
      return sockets.size;
    },
    async serverConnections() {
      const count = (server: Server | HttpServer | undefined): Promise<number> =>
        new Promise((resolve, reject) => {
          if (!server) {
            resolve(0);
            return;
          }
          server.getConnections((error, n) => (error ? reject(error) : resolve(n)));
        });
      const [socks, http] = await Promise.all([count(socksServer), count(httpServer)]);
      return { socks, http };
    },
    whenNoConnections() {
      if (sockets.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}
