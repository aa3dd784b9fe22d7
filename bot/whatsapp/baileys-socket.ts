/**
 * The real socket: Baileys' makeWASocket with the auth state from MongoDB
 * behind Baileys' in-memory key cache. The only module that starts a
 * WhatsApp Web connection; the role imports it when it starts.
 */
import makeWASocket, {
  Browsers,
  makeCacheableSignalKeyStore,
  type proto,
} from '@whiskeysockets/baileys';
import type { WhatsAppSocketLike } from './adapter.js';
import type { WhatsAppConnect } from './connection.js';

/** How many of our own recent messages are kept for WhatsApp's retry requests. */
const RECENT_MESSAGES = 500;

export function createBaileysConnect(): WhatsAppConnect {
  // A recipient's phone that could not decrypt a message asks for it again;
  // Baileys re-encrypts it from getMessage ("waiting for this message" otherwise).
  const recent = new Map<string, proto.IMessage>();
  return ({ auth, logger }) => {
    // Baileys logs a lot at info; warnings and errors are what an operator needs.
    const level = logger.levelVal >= (logger.levels.values.warn ?? 40) ? logger.level : 'warn';
    const baileysLogger = logger.child({ module: 'baileys' }, { level });
    const socket = makeWASocket({
      auth: { creds: auth.creds, keys: makeCacheableSignalKeyStore(auth.keys, baileysLogger) },
      logger: baileysLogger,
      browser: Browsers.ubuntu('Chrome'),
      // Stay "offline" so the phone keeps showing notifications.
      markOnlineOnConnect: false,
      // A storefront answers new messages (history arrives as 'append' and is
      // ignored). The recent history sync stays on (Baileys' default
      // shouldSyncHistoryMessage): it carries the initial LID mappings, and
      // Baileys warns that turning it off leads to session errors.
      syncFullHistory: false,
      getMessage: (key) => Promise.resolve(key.id ? recent.get(key.id) : undefined),
    });
    socket.ev.on('messages.upsert', ({ messages }) => {
      for (const message of messages) {
        if (!message.key.fromMe || !message.key.id || !message.message) continue;
        recent.set(message.key.id, message.message);
        if (recent.size > RECENT_MESSAGES) {
          const oldest = recent.keys().next().value;
          if (oldest !== undefined) recent.delete(oldest);
        }
      }
    });
    const typed: WhatsAppSocketLike = socket;
    return Promise.resolve(typed);
  };
}
