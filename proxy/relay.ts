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
  /** Both sockets are destroyed after this long without a byte either way. 0 = never. */
  idleTimeoutMs: number;
  /** Client bytes that arrived with the handshake (relayed and billed first). */
  clientHead?: Buffer;
  /**
   * Where client bytes come from when not from `client` itself: plain HTTP
   * forwarding feeds the request (re-framed by the HTTP parser) through
   * sendUp(); the relay pauses and resumes this source for backpressure.
   */
  clientSource?: Pausable;
  /** Called once, after both sockets closed and grant.close() ran. */
  onEnd?: (stats: RelayStats) => void;
}

/** What a pump reads from: a socket, or an HTTP request body. */
export interface Pausable {
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
}

/** One direction: source chunks, metered, into the destination socket. */
class Pump {
  bytes = 0;
  private waiting = false;
  /** Read but not yet allowed: the local lease ran dry and is being renewed. */
  private held: Buffer | null = null;

  constructor(
    private readonly relay: Relay,
    private readonly source: Pausable,
    private readonly destination: Socket,
    private readonly direction: 'up' | 'down',
  ) {}

  /** Pre-bound so no closure is made per chunk. */
  readonly onChunk = (chunk: Buffer): void => {
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
  };

  private readonly onFlushed = (): void => {
    if (!this.waiting || this.destination.writableLength > 0) return;
    this.waiting = false;
    if (!this.source.destroyed && this.held === null) this.source.resume();
  };

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
    this.onChunk(held);
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

export class Relay {
  readonly grant: TunnelGrant;
  private readonly client: Socket;
  private readonly target: Socket;
  private readonly up: Pump;
  private readonly down: Pump;
  private readonly options: RelayOptions;
  private openSockets = 2;
  private endReason: string | undefined;
  /** Set once a cut or shutdown began: no more bytes are relayed. */
  isStopping = false;
  private isClosed = false;

  constructor(options: RelayOptions) {
    this.options = options;
    this.grant = options.grant;
    this.client = options.client;
    this.target = options.target;
    this.up = new Pump(this, options.clientSource ?? this.client, this.target, 'up');
    this.down = new Pump(this, this.target, this.client, 'down');
  }

  /** Wires both sockets and starts moving bytes. */
  start(): this {
    const { client, target } = this;
    this.grant.onCut(this.onCut);
    client.on('error', this.onClientError);
    target.on('error', this.onTargetError);
    if (!this.options.clientSource) client.on('end', this.onClientEnd);
    target.on('end', this.onTargetEnd);
    client.on('close', this.onSocketClose);
    target.on('close', this.onSocketClose);
    if (this.options.idleTimeoutMs > 0) {
      client.setTimeout(this.options.idleTimeoutMs, this.onIdle);
      target.setTimeout(this.options.idleTimeoutMs, this.onIdle);
    }
    if (this.options.clientHead && this.options.clientHead.length > 0) {
      this.up.onChunk(this.options.clientHead);
    }
    if (!this.options.clientSource) client.on('data', this.up.onChunk);
    if (this.options.targetReader) {
      for (const chunk of this.options.targetReader.attach(this.down.onChunk)) {
        this.down.onChunk(chunk);
      }
    } else {
      target.on('data', this.down.onChunk);
    }
    if (!this.isStopping) {
      client.resume();
      target.resume();
    }
    return this;
  }

  /** Relays client bytes that came through `clientSource` (metered like the rest). */
  sendUp(chunk: Buffer): void {
    this.up.onChunk(chunk);
  }

  /** Bytes relayed so far (both directions). */
  get bytes(): number {
    return this.up.bytes + this.down.bytes;
  }

  /** Ends the tunnel now (shutdown, revocation): both sockets are destroyed. */
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

  private readonly onCut = (code: string): void => {
    if (SPENT_CODES.has(code)) this.endSpent(code);
    else this.destroy(code);
  };

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

  private readonly onIdle = (): void => {
    this.destroy('IDLE');
  };

  private readonly onClientError = (): void => {
    this.endReason ??= 'ERROR';
    this.target.destroy();
  };

  private readonly onTargetError = (): void => {
    this.endReason ??= 'ERROR';
    this.client.destroy();
  };

  /** The client finished sending: pass the half-close on. */
  private readonly onClientEnd = (): void => {
    if (!this.target.writableEnded && !this.target.destroyed) this.target.end();
  };

  private readonly onTargetEnd = (): void => {
    if (!this.client.writableEnded && !this.client.destroyed) this.client.end();
  };

  private readonly onSocketClose = (): void => {
    this.openSockets -= 1;
    // A socket that closed without an error was ended both ways: let the
    // other side flush what it holds, then end it too.
    const { client, target } = this;
    if (client.destroyed && !target.writableEnded && !target.destroyed) target.end();
    if (target.destroyed && !client.writableEnded && !client.destroyed) client.end();
    if (this.openSockets === 0) this.finish();
  };

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.grant.close();
    this.options.onEnd?.({
      bytesUp: this.up.bytes,
      bytesDown: this.down.bytes,
      endReason: this.endReason,
    });
  }
}

/** Starts relaying between two connected sockets; returns the running relay. */
export function relay(options: RelayOptions): Relay {
  return new Relay(options).start();
}
