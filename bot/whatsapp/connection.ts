/**
 * The WhatsApp connection: one Baileys socket at a time, logged in with the
 * auth state from MongoDB, and what to do when it closes.
 *
 *   load auth -> connect -> creds.update saved as they come
 *   -> `qr`: printed to the terminal and logged as a data URL (or, with a
 *      pairing number and no login yet, a pairing code requested instead)
 *   -> `open`: serving; the backoff resets
 *   -> `close`: decideAfterClose(status code) says reconnect (after a
 *      backoff), clear the login and pair again, or stop
 *
 * The decision is a pure function of Baileys' DisconnectReason codes
 * (node_modules/@whiskeysockets/baileys/lib/Types/index.d.ts), so it is
 * tested table by table without a network. Baileys is not imported here:
 * the socket comes from the `connect` factory (bot/whatsapp/baileys-socket.ts
 * in production, a fake in tests).
 */
import { EventEmitter } from 'node:events';
import QRCode from 'qrcode';
import type { AuthenticationState } from '@whiskeysockets/baileys';
import type { Logger } from '../../lib/logger.js';
import type { WhatsAppAuthStore } from './auth-store.js';
import type { WhatsAppSocketLike } from './adapter.js';

/**
 * Baileys' DisconnectReason (lib/Types/index.d.ts in 7.0.0-rc14), copied so
 * that deciding needs no Baileys at run time; a test checks the copy against
 * the real enum. connectionLost and timedOut share 408.
 */
export const DISCONNECT = {
  connectionClosed: 428,
  connectionLost: 408,
  connectionReplaced: 440,
  timedOut: 408,
  loggedOut: 401,
  badSession: 500,
  restartRequired: 515,
  multideviceMismatch: 411,
  forbidden: 403,
  unavailableService: 503,
} as const;

export interface BackoffPolicy {
  /** First reconnect delay (default 1 s); each further attempt doubles it. */
  baseMs: number;
  /** Longest delay between attempts (default 60 s). */
  maxMs: number;
  /**
   * Consecutive `badSession` closes (without an `open` in between) after
   * which the login is cleared and paired again (default 3). Baileys reports
   * 500 for a broken session but also for any unrecognised stream or
   * websocket error, so one 500 alone is no reason to throw a login away.
   */
  badSessionsBeforeReset: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = {
  baseMs: 1_000,
  maxMs: 60_000,
  badSessionsBeforeReset: 3,
};

/** How the connection stands when it closes: closes since the last `open`. */
export interface CloseHistory {
  /** Closes since the last `open`, this one included (1 for the first). */
  attempt: number;
  /** Consecutive badSession closes since the last `open`, this one included. */
  badSessions: number;
}

export type CloseDecision =
  | { action: 'reconnect'; delayMs: number; reason: string }
  /** Forget the login and connect again at once: a new QR code or pairing code. */
  | { action: 'repair'; reason: string }
  | { action: 'stop'; clearAuth: boolean; reason: string };

/** The delay before reconnect attempt `attempt` (1, 2, ...): base, 2x base, ..., at most max. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}

/**
 * What to do after the socket closed with `statusCode` (Boom's
 * `output.statusCode` on `lastDisconnect.error`; undefined when there was
 * no error).
 */
export function decideAfterClose(
  statusCode: number | undefined,
  history: CloseHistory,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): CloseDecision {
  const later = (reason: string): CloseDecision => ({
    action: 'reconnect',
    delayMs: backoffDelayMs(history.attempt, policy),
    reason,
  });
  switch (statusCode) {
    case DISCONNECT.loggedOut:
      // The phone removed this device (or WhatsApp logged it out): the keys
      // are worthless; an operator pairs again by restarting the role.
      return { action: 'stop', clearAuth: true, reason: 'logged out' };
    case DISCONNECT.connectionReplaced:
      // Another client opened this login; reconnecting would fight it.
      return { action: 'stop', clearAuth: false, reason: 'connection replaced by another device' };
    case DISCONNECT.forbidden:
      return { action: 'stop', clearAuth: false, reason: 'forbidden (the number may be banned)' };
    case DISCONNECT.multideviceMismatch:
      return { action: 'stop', clearAuth: false, reason: 'multi-device mismatch' };
    case DISCONNECT.restartRequired:
      // Sent right after a successful pairing: the new login connects at once.
      return { action: 'reconnect', delayMs: 0, reason: 'restart required' };
    case DISCONNECT.badSession:
      return history.badSessions >= policy.badSessionsBeforeReset
        ? { action: 'repair', reason: `bad session ${history.badSessions} times in a row` }
        : later('bad session');
    case DISCONNECT.connectionClosed:
      return later('connection closed');
    case DISCONNECT.connectionLost:
      return later('connection lost or timed out');
    case DISCONNECT.unavailableService:
      return later('service unavailable');
    default:
      return later(statusCode === undefined ? 'closed' : `closed with ${statusCode}`);
  }
}

/** Boom's status code on an error, if any (Baileys' errors are Booms). */
export function statusCodeOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const output = (error as { output?: { statusCode?: unknown } }).output;
  return typeof output?.statusCode === 'number' ? output.statusCode : undefined;
}

export interface WhatsAppConnectOptions {
  auth: AuthenticationState;
  logger: Logger;
}

/** Makes a socket for one connection attempt (Baileys' makeWASocket in production). */
export type WhatsAppConnect = (options: WhatsAppConnectOptions) => Promise<WhatsAppSocketLike>;

export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'waiting' | 'stopped';

export interface WhatsAppConnectionEvents {
  /** A QR code to scan: the raw string and a PNG data URL. */
  qr: [{ qr: string; dataUrl: string }];
  'pairing-code': [{ code: string; phoneNumber: string }];
  open: [{ user: string | undefined }];
  /** The socket closed and the decision was carried out (auth cleared, reconnect scheduled). */
  closed: [{ statusCode: number | undefined; decision: CloseDecision }];
}

export interface WhatsAppConnectionOptions {
  connect: WhatsAppConnect;
  store: WhatsAppAuthStore;
  logger: Logger;
  /** Each new socket (the adapter attaches to it). */
  onSocket: (socket: WhatsAppSocketLike) => void;
  /** WHATSAPP_PAIRING_NUMBER (digits): log in with a pairing code instead of a QR code. */
  pairingNumber?: string | undefined;
  backoff?: Partial<BackoffPolicy>;
  /** Where the QR code is drawn (default stderr, away from the JSON logs on stdout). */
  terminal?: { write(text: string): unknown };
}

export class WhatsAppConnection extends EventEmitter<WhatsAppConnectionEvents> {
  private socket: WhatsAppSocketLike | undefined;
  /**
   * The login in use, kept across reconnects: Baileys updates it in place, and
   * reading it back from MongoDB right after a pairing's restartRequired
   * could race the creds write still on its way.
   */
  private auth: AuthenticationState | undefined;
  private current = 'idle' as ConnectionStatus;
  private timer: NodeJS.Timeout | undefined;
  private history: CloseHistory = { attempt: 0, badSessions: 0 };
  private stopping = false;
  private readonly policy: BackoffPolicy;
  /** Work started by socket events and timers (a close being handled), awaited by stop(). */
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: WhatsAppConnectionOptions) {
    super();
    this.policy = { ...DEFAULT_BACKOFF, ...options.backoff };
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  /** The socket while the connection is open, else undefined. */
  get openSocket(): WhatsAppSocketLike | undefined {
    return this.current === 'open' ? this.socket : undefined;
  }

  /** Connects (resolves once the socket exists; `open` follows when WhatsApp accepts it). */
  async start(): Promise<void> {
    this.stopping = false;
    this.history = { attempt: 0, badSessions: 0 };
    // Another process may have used (or cleared) the login since we last held it.
    this.auth = undefined;
    await this.connectOnce();
  }

  /** Closes the socket without logging out; the login stays for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.current = 'stopped';
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (socket) await Promise.resolve(socket.end(undefined)).catch(() => undefined);
    // A standby taking over reads the login from MongoDB: let the last write land.
    await this.options.store.flush();
  }

  private async connectOnce(): Promise<void> {
    if (this.stopping) return;
    this.current = 'connecting';
    const { logger } = this.options;
    let socket: WhatsAppSocketLike;
    let auth: AuthenticationState;
    try {
      auth = this.auth ??= await this.options.store.load();
      socket = await this.options.connect({ auth, logger });
    } catch (error) {
      logger.error({ err: error }, 'whatsapp.connect_failed');
      this.history.attempt += 1;
      this.schedule(backoffDelayMs(this.history.attempt, this.policy));
      return;
    }
    if (this.stopping) {
      await Promise.resolve(socket.end(undefined)).catch(() => undefined);
      return;
    }
    this.socket = socket;
    let pairingRequested = false;
    socket.ev.on('creds.update', () => {
      this.options.store.saveCreds(auth.creds).catch((error: unknown) => {
        logger.error({ err: error }, 'whatsapp.creds_save_failed');
      });
    });
    socket.ev.on('connection.update', (update) => {
      if (this.socket !== socket) return;
      const { pairingNumber } = this.options;
      if (update.qr) {
        if (pairingNumber && !auth.creds.registered) {
          if (!pairingRequested) {
            pairingRequested = true;
            this.track(this.requestPairingCode(socket, pairingNumber));
          }
        } else {
          this.track(this.showQr(update.qr));
        }
      }
      if (update.connection === 'open') {
        this.current = 'open';
        this.history = { attempt: 0, badSessions: 0 };
        const user = socket.user?.id;
        logger.info({ user }, 'whatsapp.connected');
        this.emit('open', { user });
      } else if (update.connection === 'close') {
        this.socket = undefined;
        this.track(this.closed(statusCodeOf(update.lastDisconnect?.error)));
      }
    });
    this.options.onSocket(socket);
  }

  private track(work: Promise<void>): void {
    const logger = this.options.logger;
    const guarded = work.catch((error: unknown) =>
      logger.error({ err: error }, 'whatsapp.connection_event_failed'),
    );
    this.pending.add(guarded);
    void guarded.then(() => this.pending.delete(guarded));
  }

  private async closed(statusCode: number | undefined): Promise<void> {
    const { logger, store } = this.options;
    if (this.stopping) return;
    this.history = {
      attempt: this.history.attempt + 1,
      badSessions: statusCode === DISCONNECT.badSession ? this.history.badSessions + 1 : 0,
    };
    const decision = decideAfterClose(statusCode, this.history, this.policy);
    switch (decision.action) {
      case 'reconnect':
        logger.warn({ statusCode, ...decision }, 'whatsapp.disconnected');
        this.schedule(decision.delayMs);
        break;
      case 'repair':
        logger.error({ statusCode, reason: decision.reason }, 'whatsapp.session_reset');
        this.auth = undefined;
        await store.clear();
        this.history = { attempt: 0, badSessions: 0 };
        this.schedule(0);
        break;
      case 'stop':
        if (decision.clearAuth) {
          this.auth = undefined;
          await store.clear();
        }
        this.current = 'stopped';
        logger.error(
          {
            statusCode,
            reason: decision.reason,
            authCleared: decision.clearAuth,
            hint:
              'restart the whatsapp role to connect again' +
              (decision.clearAuth ? '; it will show a new QR code (or pairing code) to link' : ''),
          },
          'whatsapp.stopped',
        );
        break;
    }
    this.emit('closed', { statusCode, decision });
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.current = 'waiting';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.track(this.connectOnce());
    }, delayMs);
    this.timer.unref();
  }

  private async showQr(qr: string): Promise<void> {
    const [drawing, dataUrl] = await Promise.all([
      QRCode.toString(qr, { type: 'terminal', small: true }),
      QRCode.toDataURL(qr, { errorCorrectionLevel: 'L', margin: 2 }),
    ]);
    const terminal = this.options.terminal ?? process.stderr;
    terminal.write(
      `\nScan with WhatsApp (Settings > Linked devices > Link a device):\n${drawing}\n`,
    );
    this.options.logger.warn(
      {
        qrDataUrl: dataUrl,
        hint: 'WhatsApp > Settings > Linked devices > Link a device: scan the QR code drawn on stderr, or open qrDataUrl in a browser and scan that',
      },
      'whatsapp.qr',
    );
    this.emit('qr', { qr, dataUrl });
  }

  private async requestPairingCode(socket: WhatsAppSocketLike, phoneNumber: string): Promise<void> {
    const code = await socket.requestPairingCode(phoneNumber);
    this.options.logger.warn(
      {
        pairingCode: code,
        phoneNumber,
        hint: 'on that phone: WhatsApp > Settings > Linked devices > Link a device > Link with phone number instead, then enter pairingCode',
      },
      'whatsapp.pairing_code',
    );
    this.emit('pairing-code', { code, phoneNumber });
  }
}
