/**
 * The whatsapp role: the adapter (bot/whatsapp/adapter.ts) on the
 * conversation core over one WhatsApp Web connection, and the WhatsApp
 * deliveries from the notification outbox.
 *
 * Only one process may hold a WhatsApp Web login open: a lease in MongoDB
 * (core/role-lease.ts, `whatsapp-connection`) elects it; the others stand by
 * and one takes over within the lease's lifetime when the holder dies (at
 * once when it stops cleanly), with the same login from MongoDB. The holder
 * connects (bot/whatsapp/connection.ts: QR code or pairing code on the first
 * run, reconnects, logged-out handling) and delivers while connected.
 *
 * Baileys is loaded on start (the auth store and the socket factory are
 * imported then), so a process without this role never pays for it.
 */
import { adminChatIds } from '../../core/admin/admins.js';
import type { Role } from '../../lib/role.js';
import { LeaseHolder } from '../../core/role-lease.js';
import { createConversation, type Conversation, type ConversationDeps } from '../core/index.js';
import { WhatsAppAdapter } from './adapter.js';
import type { WhatsAppAuthStore } from './auth-store.js';
import {
  WhatsAppConnection,
  type BackoffPolicy,
  type ConnectionStatus,
  type WhatsAppConnect,
} from './connection.js';
import { WhatsAppDeliverer } from './deliver.js';

export const WHATSAPP_CONNECTION_LEASE = 'whatsapp-connection';

export interface WhatsAppRoleOptions {
  deps: ConversationDeps;
  /** ADMIN_WHATSAPP_NUMBERS (E.164 digits): where admin alerts go. */
  adminNumbers: readonly string[];
  /** WHATSAPP_PAIRING_NUMBER: pair with a code for this number instead of a QR code. */
  pairingNumber?: string | undefined;
  /** Names this process in the connection lease and the outbox claims. */
  workerId: string;
  /** Makes the socket (default: Baileys' makeWASocket); tests pass a fake. */
  connect?: WhatsAppConnect;
  /** The login's name in the auth collection (default 'default'). */
  session?: string;
  /** Connection lease lifetime (default 30 s). */
  leaseTtlMs?: number;
  /** Outbox idle wait (default 1 s). */
  deliveryIdleMs?: number;
  /** Reconnect backoff (default 1 s doubling to 60 s). */
  backoff?: Partial<BackoffPolicy>;
  /** Where the QR code is drawn (default stderr). */
  terminal?: { write(text: string): unknown };
  /** Messages per number per window (default 20 per 10 s). */
  rateLimit?: { messages: number; windowMs: number };
}

export interface WhatsAppRole extends Role {
  readonly conversation: Conversation;
  readonly adapter: WhatsAppAdapter;
  readonly deliverer: WhatsAppDeliverer;
  /** The connection: its status and its events (`qr`, `pairing-code`, `open`, `closed`). */
  readonly connection: WhatsAppConnection;
  /** Whether this process holds the connection lease. */
  isConnectionHolder(): boolean;
  /** The connection's status in this process. */
  status(): ConnectionStatus;
}

export function createWhatsAppRole(options: WhatsAppRoleOptions): WhatsAppRole {
  const logger = options.deps.logger.child({ role: 'whatsapp' });
  const conversation = createConversation({ ...options.deps, logger });
  const adapter = new WhatsAppAdapter({
    conversation,
    logger,
    ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
  });
  const session = options.session ?? 'default';
  const store = lazyAuthStore(session);
  const connection = new WhatsAppConnection({
    connect: options.connect ?? lazyBaileysConnect(),
    store,
    logger,
    onSocket: (socket) => adapter.attach(socket),
    pairingNumber: options.pairingNumber,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.terminal ? { terminal: options.terminal } : {}),
  });
  const deliverer = new WhatsAppDeliverer({
    socket: () => connection.openSocket,
    clock: options.deps.clock,
    logger,
    workerId: options.workerId,
    // Configured admins and the database's (core/admin), looked up at each alert.
    adminNumbers: async () => [
      ...new Set([
        ...options.adminNumbers,
        ...(await adminChatIds('whatsapp', options.deps.admins)),
      ]),
    ],
    ...(options.deliveryIdleMs ? { idleMs: options.deliveryIdleMs } : {}),
  });
  connection.on('open', () => deliverer.poke());
  const lease = new LeaseHolder({
    name: WHATSAPP_CONNECTION_LEASE,
    holder: options.workerId,
    ttlMs: options.leaseTtlMs ?? 30_000,
    onAcquired: async () => {
      logger.info({ worker: options.workerId }, 'whatsapp.lease_acquired');
      await connection.start();
    },
    onLost: async () => {
      await connection.stop();
      logger.info({ worker: options.workerId }, 'whatsapp.lease_released');
    },
    onError: (error) => logger.warn({ err: error }, 'whatsapp.lease_failed'),
  });

  return {
    name: 'whatsapp',
    conversation,
    adapter,
    deliverer,
    connection,
    isConnectionHolder: () => lease.isHolder,
    status: () => connection.status,
    async start() {
      await lease.start();
      deliverer.start();
      logger.info(
        { holder: lease.isHolder, pairing: options.pairingNumber !== undefined },
        'whatsapp.started',
      );
    },
    async stop() {
      // Sends in flight finish while the socket is still open, then it closes.
      await deliverer.stop();
      await adapter.drain();
      await lease.stop();
      await adapter.drain();
    },
  };
}

/** The MongoDB auth store, imported (with Baileys) on first use. */
function lazyAuthStore(session: string): WhatsAppAuthStore {
  let loading: Promise<WhatsAppAuthStore> | undefined;
  const real = (): Promise<WhatsAppAuthStore> =>
    (loading ??= import('./auth-store.js').then((m) => m.createWhatsAppAuthStore(session)));
  return {
    session,
    load: async () => (await real()).load(),
    saveCreds: async (creds) => (await real()).saveCreds(creds),
    flush: async () => (loading ? (await loading).flush() : undefined),
    hasCreds: async () => (await real()).hasCreds(),
    clear: async () => (await real()).clear(),
  };
}

/** Baileys' socket factory, imported on the first connection. */
function lazyBaileysConnect(): WhatsAppConnect {
  let loading: Promise<WhatsAppConnect> | undefined;
  return async (connectOptions) => {
    loading ??= import('./baileys-socket.js').then((m) => m.createBaileysConnect());
    return (await loading)(connectOptions);
  };
}
