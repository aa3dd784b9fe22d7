/**
 * Baileys' auth state (the WhatsApp login: credentials and Signal keys) in
 * MongoDB (models/whatsapp-auth.ts), so the login survives restarts and a
 * standby process that takes the connection lease over uses the same one.
 *
 * Baileys' `useMultiFileAuthState` keeps one JSON file per item and says it
 * is not for production; this is the same shape with one document per item:
 * values written with `BufferJSON.replacer` and read back with its reviver
 * (Buffers survive), credentials made by `initAuthCreds()` on the first run,
 * and `app-state-sync-key` values rebuilt with
 * `proto.Message.AppStateSyncKeyData.fromObject` as Baileys expects. The
 * socket factory wraps `keys` in `makeCacheableSignalKeyStore`, so reads
 * mostly come from memory.
 *
 * This module loads Baileys; the role imports it only when it starts.
 */
import {
  BufferJSON,
  initAuthCreds,
  proto,
  type AuthenticationCreds,
  type AuthenticationState,
  type SignalDataSet,
  type SignalDataTypeMap,
  type SignalKeyStore,
} from '@whiskeysockets/baileys';
import type { AnyBulkWriteOperation } from 'mongoose';
import { WhatsAppAuth } from '../../models/whatsapp-auth.js';

const CREDS_KEY = 'creds';

export interface WhatsAppAuthStore {
  /** The session name the documents carry. */
  readonly session: string;
  /** The stored login, or fresh credentials (saved at once) on the first run. */
  load(): Promise<AuthenticationState>;
  /** Writes the credentials (Baileys' `creds.update`); writes happen in call order. */
  saveCreds(creds: AuthenticationCreds): Promise<void>;
  /** Resolves once every creds write asked for so far has landed. */
  flush(): Promise<void>;
  /** Whether credentials are stored (a login or a pairing in progress). */
  hasCreds(): Promise<boolean>;
  /** Forgets the login entirely (logged out, or a broken session to pair again). */
  clear(): Promise<void>;
}

const encode = (value: unknown): string => JSON.stringify(value, BufferJSON.replacer);
const decode = (text: string): unknown => JSON.parse(text, BufferJSON.reviver) as unknown;
const keyOf = (type: string, id: string): string => `${type}/${id}`;

export function createWhatsAppAuthStore(session = 'default'): WhatsAppAuthStore {
  // One write at a time: creds.update fires in bursts, and two overlapping
  // writes of the (mutable) creds object could land out of order.
  let credsWrites: Promise<void> = Promise.resolve();

  const writeCreds = async (creds: AuthenticationCreds): Promise<void> => {
    const value = encode(creds);
    await WhatsAppAuth.updateOne(
      { session, key: CREDS_KEY },
      { $set: { value } },
      { upsert: true },
    );
  };

  const keys: SignalKeyStore = {
    async get<T extends keyof SignalDataTypeMap>(type: T, ids: string[]) {
      const found: { [id: string]: SignalDataTypeMap[T] } = {};
      if (ids.length === 0) return found;
      const prefix = `${type}/`;
      const docs = await WhatsAppAuth.find(
        { session, key: { $in: ids.map((id) => keyOf(type, id)) } },
        { key: 1, value: 1 },
      ).lean<{ key: string; value: string }[]>();
      for (const doc of docs) {
        const id = doc.key.slice(prefix.length);
        let value = decode(doc.value);
        if (type === 'app-state-sync-key' && value) {
          value = proto.Message.AppStateSyncKeyData.fromObject(value);
        }
        found[id] = value as SignalDataTypeMap[T];
      }
      return found;
    },
    async set(data: SignalDataSet) {
      const operations: AnyBulkWriteOperation[] = [];
      for (const [type, entries] of Object.entries(data)) {
        for (const [id, value] of Object.entries((entries ?? {}) as Record<string, unknown>)) {
          const key = keyOf(type, id);
          operations.push(
            value === null || value === undefined
              ? { deleteOne: { filter: { session, key } } }
              : {
                  updateOne: {
                    filter: { session, key },
                    update: { $set: { value: encode(value) } },
                    upsert: true,
                  },
                },
          );
        }
      }
      if (operations.length > 0) await WhatsAppAuth.bulkWrite(operations, { ordered: true });
    },
    async clear() {
      await WhatsAppAuth.deleteMany({ session, key: { $ne: CREDS_KEY } });
    },
  };

  return {
    session,
    async load() {
      const stored = await WhatsAppAuth.findOne({ session, key: CREDS_KEY }).lean<{
        value: string;
      }>();
      let creds: AuthenticationCreds;
      if (stored) {
        creds = decode(stored.value) as AuthenticationCreds;
      } else {
        creds = initAuthCreds();
        await writeCreds(creds);
      }
      return { creds, keys };
    },
    saveCreds(creds) {
      const write = credsWrites.then(() => writeCreds(creds));
      credsWrites = write.catch(() => undefined);
      return write;
    },
    flush() {
      return credsWrites;
    },
    async hasCreds() {
      return (await WhatsAppAuth.countDocuments({ session, key: CREDS_KEY })) > 0;
    },
    async clear() {
      await credsWrites;
      await WhatsAppAuth.deleteMany({ session });
    },
  };
}
