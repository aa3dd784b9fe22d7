/**
 * The byte relay of one tunnel, after the handshake.
 *
 *   client --'data'--> up pump   --grant.allow(n)--> target
 *   target --onread--> down pump --grant.allow(n)--> client
 *
 * Every chunk is metered before it is written: allow(n) says how many of its
 * bytes may go; fewer means the quota ran out, so that many are written and
 * the tunnel is cut. Metered bytes therefore equal relayed bytes exactly.
 *
 * A direction stops reading while its last write is still queued (the chunk
 * may live in a reused read buffer, and the queue is the backpressure signal)
 * and resumes when that write is flushed. A clean end on one side is passed on
 * with end(), never destroy(): destroying on 'close' truncates downloads
 * (LIBRARIES.md). Errors, idle timeouts and grant.onCut destroy both sockets.
 * grant.close() runs exactly once, when both sockets have closed.
 *
 * Memory: a gateway holds thousands of idle tunnels, so an idle one costs as
 * little as it can. The socket listeners are module-level functions shared by
 * every tunnel (an emitter calls them with `this` = the socket, which points
 * back to its relay), a direction's pump is made on its first chunk, and idle
 * timeouts come from one IdleSweep per gateway instead of a timer per socket.
 */
import type { Socket } from 'node:net';
import type { TunnelGrant } from './access.js';
import type { TargetReader } from './dial.js';

export interface RelayStats {
  /** Client to target payload bytes, as metered. */
  bytesUp: number;
  /** Target to client payload bytes, as metered. */
  bytesDown: number;
  /** Why the tunnel ended early: a grant cut code, 'QUOTA', 'IDLE', 'ERROR', 'SHUTDOWN'; undefined when it ended cleanly. */
  endReason: string | undefined;
}

export interface RelayOptions {
  client: Socket;
  target: Socket;
  /** Set when the target is read with `onread` into a reused buffer. */
  targetReader?: TargetReader;
  grant: TunnelGrant;
  /** Closes the tunnel after a while without a byte either way; none = never. */
  idleSweep?: IdleSweep;
  /** Client bytes that arrived with the handshake (relayed and billed first). */
  clientHead?: Buffer;
  /**
   * Where client bytes come from when not from `client` itself: plain HTTP
   * forwarding feeds the request (re-framed by the HTTP parser) through
   * sendUp(); the relay pauses and resumes this source for backpressure.
   */
  clientSource?: Pausable;
  /** Called once, after both sockets closed and grant.close() ran; shared by many relays. */
  onEnd?: (stats: RelayStats, relay: Relay) => void;
}

/** What a pump reads from: a socket, or an HTTP request body. */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
}

/** Where a socket points back to its relay, for the shared listeners below. */
const kRelay = Symbol('atlantic.relay');
type RelaySocket = Socket & { [kRelay]?: Relay };

function onClientData(this: RelaySocket, chunk: Buffer): void {
  this[kRelay]?.sendUp(chunk);
}

function onTargetData(this: RelaySocket, chunk: Buffer): void {
  this[kRelay]?.sendDown(chunk);
}

function onSocketError(this: RelaySocket): void {
  this[kRelay]?.socketFailed(this);
}

function onSocketEnd(this: RelaySocket): void {
  this[kRelay]?.socketEnded(this);
}

function onSocketClose(this: RelaySocket): void {
  this[kRelay]?.socketClosed();
}

/** One direction: source chunks, metered, into the destination socket. Made on its first chunk. */
class Pump {
  bytes = 0;
  private waiting = false;
  /** Read but not yet allowed: the local lease ran dry and is being renewed. */
  private held: Buffer | null = null;
  /** Bound once per pump, so no closure is made per chunk. */
  private readonly onFlushed: () => void;

  constructor(
    private readonly relay: Relay,
    private readonly source: Pausable,
    private readonly destination: Socket,
    private readonly direction: 'up' | 'down',
  ) {
    this.onFlushed = this.flushed.bind(this);
  }

  send(chunk: Buffer): void {
    const relay = this.relay;
    if (relay.isStopping || this.destination.destroyed || this.destination.writableEnded) {
      // Nowhere to deliver (the other side is gone or the tunnel is being cut):
      // nothing is relayed, so nothing is metered.
      if (!relay.isStopping) this.source.destroy();
      return;
    }
    const wanted = chunk.length;
    const allowed = clamp(relay.grant.allow(wanted, this.direction), wanted);
    if (allowed > 0) {
      this.bytes += allowed;
      this.destination.write(
        allowed === wanted ? chunk : chunk.subarray(0, allowed),
        this.onFlushed,
      );
    }
    if (allowed < wanted) {
      this.holdUntilAllowed(chunk.subarray(allowed));
      return;
    }
    if (this.destination.writableLength > 0 && !this.waiting) {
      this.waiting = true;
      this.source.pause();
    }
  }

  private flushed(): void {
    if (!this.waiting || this.destination.writableLength > 0) return;
    this.waiting = false;
    if (!this.source.destroyed && this.held === null) this.source.resume();
  }

  /**
   * The local lease ran dry mid-chunk (the part allowed is written): stop
   * reading, keep the rest, and carry on once the lease is renewed; when the
   * quota or wallet is spent, what was allowed is delivered and the tunnel ends.
   */
  private holdUntilAllowed(rest: Buffer): void {
    const relay = this.relay;
    if (!relay.grant.waitForAllowance) {
      relay.cutForQuota(this.destination, this.source);
      return;
    }
    this.held = rest;
    this.source.pause();
    relay.grant.waitForAllowance().then(
      (more) => this.release(more),
      () => this.release(false),
    );
  }

  private release(more: boolean): void {
    const held = this.held;
    this.held = null;
    const relay = this.relay;
    if (relay.isStopping || held === null) return;
    if (!more) {
      relay.cutForQuota(this.destination, this.source);
      return;
    }
    this.send(held);
    if (this.held === null && !this.waiting && !relay.isStopping && !this.source.destroyed) {
      this.source.resume();
    }
  }
}

function clamp(allowed: number, wanted: number): number {
  if (!(allowed > 0)) return 0;
  return allowed >= wanted ? wanted : Math.floor(allowed);
}

/** Cuts that mean "nothing more is paid for", as opposed to "stop now" (revoked, disconnected). */
const SPENT_CODES: ReadonlySet<string> = new Set(['QUOTA_EXHAUSTED', 'WALLET_EMPTY']);

/**
 * Idle timeouts for many relays from one interval: every tick counts a quiet
 * tick on each relay (any relayed chunk resets its count), and a relay quiet
 * for TICKS whole ticks is destroyed with 'IDLE'. A tunnel therefore closes
 * between idleMs and 1.25 x idleMs after its last byte. One Set entry per
 * tunnel instead of a Timeout, a 'timeout' listener and a timer-list entry
 * per socket (and no timer refresh on every read and write).
 */
export class IdleSweep {
  static readonly TICKS = 4;
  private readonly relays = new Set<Relay>();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly idleMs: number) {
    this.timer = setInterval(() => this.sweep(), Math.max(1, Math.ceil(idleMs / IdleSweep.TICKS)));
    this.timer.unref();
  }

  add(relay: Relay): void {
    this.relays.add(relay);
  }

  delete(relay: Relay): void {
    this.relays.delete(relay);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private sweep(): void {
    for (const relay of this.relays) {
      relay.quietTicks += 1;
      if (relay.quietTicks > IdleSweep.TICKS) relay.destroy('IDLE');
    }
  }
}

export class Relay {
  readonly grant: TunnelGrant;
  private readonly client: RelaySocket;
  private readonly target: RelaySocket;
  private readonly clientSource: Pausable | undefined;
  private readonly targetReader: TargetReader | undefined;
  private readonly idleSweep: IdleSweep | undefined;
  private readonly onEnd: ((stats: RelayStats, relay: Relay) => void) | undefined;
  /** The client's handshake leftovers until start() relays them. */
  private clientHead: Buffer | undefined;
  private up: Pump | undefined;
  private down: Pump | undefined;
  private openSockets = 2;
  private endReason: string | undefined;
  /** Sweep ticks since the last chunk either way (see IdleSweep). */
  quietTicks = 0;
  /** Set once a cut or shutdown began: no more bytes are relayed. */
  isStopping = false;
  private isClosed = false;

  constructor(options: RelayOptions) {
    this.grant = options.grant;
    this.client = options.client;
    this.target = options.target;
    this.clientSource = options.clientSource;
    this.targetReader = options.targetReader;
    this.idleSweep = options.idleSweep;
    this.onEnd = options.onEnd;
    this.clientHead = options.clientHead;
  }

  /** Wires both sockets and starts moving bytes. */
  start(): this {
    const { client, target } = this;
    client[kRelay] = this;
    target[kRelay] = this;
    this.grant.onCut(this.onCut.bind(this));
    client.on('error', onSocketError);
    target.on('error', onSocketError);
    if (!this.clientSource) client.on('end', onSocketEnd);
    target.on('end', onSocketEnd);
    client.on('close', onSocketClose);
    target.on('close', onSocketClose);
    this.idleSweep?.add(this);
    const head = this.clientHead;
    this.clientHead = undefined;
    if (head && head.length > 0) this.sendUp(head);
    if (!this.clientSource) client.on('data', onClientData);
    if (this.targetReader) {
      const held = this.targetReader.attach(this);
      if (held) for (const chunk of held) this.sendDown(chunk);
    } else {
      target.on('data', onTargetData);
    }
    if (!this.isStopping) {
      client.resume();
      target.resume();
    }
    return this;
  }

  /** Relays client bytes (from the client socket, or fed through `clientSource`), metered. */
  sendUp(chunk: Buffer): void {
    this.quietTicks = 0;
    this.up ??= new Pump(this, this.clientSource ?? this.client, this.target, 'up');
    this.up.send(chunk);
  }

  /** Relays target bytes to the client, metered (TargetReader's consumer). */
  sendDown(chunk: Buffer): void {
    this.quietTicks = 0;
    this.down ??= new Pump(this, this.target, this.client, 'down');
    this.down.send(chunk);
  }

  /** Bytes relayed so far (both directions). */
  get bytes(): number {
    return (this.up?.bytes ?? 0) + (this.down?.bytes ?? 0);
  }

  /** Ends the tunnel now (shutdown, revocation, idle): both sockets are destroyed. */
  destroy(reason: string): void {
    this.endReason ??= reason;
    this.isStopping = true;
    this.client.destroy();
    this.target.destroy();
  }

  /**
   * The quota ran out mid-chunk: the allowed part is already written to
   * `destination`; let it flush, then close. The source is dropped at once.
   */
  cutForQuota(destination: Socket, source: Pausable): void {
    this.endReason ??= 'QUOTA';
    this.isStopping = true;
    source.destroy();
    if (!destination.writableEnded) destination.end();
    // Keep reading what the receiving side still sends (discarded, unbilled)
    // so its kernel does not answer our close with a reset that could drop
    // the last bytes; its own close, or the idle timeout, ends the tunnel.
    destination.resume();
  }

  private onCut(code: string): void {
    if (SPENT_CODES.has(code)) this.endSpent(code);
    else this.destroy(code);
  }

  /**
   * The quota or wallet is spent: the bytes already allowed were paid for, so
   * they are delivered (both sides get an orderly end after their writes
   * flush) and nothing more is relayed or metered.
   */
  private endSpent(code: string): void {
    this.endReason ??= code;
    this.isStopping = true;
    for (const socket of [this.client, this.target]) {
      if (!socket.destroyed && !socket.writableEnded) socket.end();
      socket.resume();
    }
  }

  /** An error on one socket (a reset mostly): the other one is dropped too. */
  socketFailed(socket: Socket): void {
    this.endReason ??= 'ERROR';
    (socket === this.client ? this.target : this.client).destroy();
  }

  /** One side finished sending: pass the half-close on. */
  socketEnded(socket: Socket): void {
    const other = socket === this.client ? this.target : this.client;
    if (!other.writableEnded && !other.destroyed) other.end();
  }

  socketClosed(): void {
    this.openSockets -= 1;
    // A socket that closed without an error was ended both ways: let the
    // other side flush what it holds, then end it too.
    const { client, target } = this;
    if (client.destroyed && !target.writableEnded && !target.destroyed) target.end();
    if (target.destroyed && !client.writableEnded && !client.destroyed) client.end();
    if (this.openSockets === 0) this.finish();
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.idleSweep?.delete(this);
    this.client[kRelay] = undefined;
    this.target[kRelay] = undefined;
    // Both sockets closed: no write still holds the target's read buffer.
    this.targetReader?.release();
    this.grant.close();
    this.onEnd?.(
      {
        bytesUp: this.up?.bytes ?? 0,
        bytesDown: this.down?.bytes ?? 0,
        endReason: this.endReason,
      },
      this,
    );
  }
}

/** Starts relaying between two connected sockets; returns the running relay. */
export function relay(options: RelayOptions): Relay {
  return new Relay(options).start();
}
