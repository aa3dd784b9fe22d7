/**
 * The WhatsApp login kept in MongoDB (bot/whatsapp/auth-store.ts) with
 * Baileys' real initAuthCreds, BufferJSON and proto: credentials and every
 * kind of Signal key come back as Baileys wrote them (Buffers as Buffers,
 * app-state sync keys as protobuf objects), also through Baileys' own key
 * cache, and clearing forgets the login.
 */
import { describe, expect, it } from '@jest/globals';
import {
  initAuthCreds,
  makeCacheableSignalKeyStore,
  proto,
  type LTHashState,
} from '@whiskeysockets/baileys';
import { createWhatsAppAuthStore } from '../../../bot/whatsapp/auth-store.js';
import { WhatsAppAuth } from '../../../models/whatsapp-auth.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

let sessions = 0;
const newSession = (): string => `test-${++sessions}`;

const bytes = (value: unknown): string => {
  expect(Buffer.isBuffer(value)).toBe(true);
  return (value as Buffer).toString('hex');
};

describe('credentials', () => {
  it('makes credentials with initAuthCreds on the first run, stores them, and reads the same back', async () => {
    const session = newSession();
    const first = await createWhatsAppAuthStore(session).load();
    expect(await WhatsAppAuth.countDocuments({ session, key: 'creds' })).toBe(1);
    expect(first.creds.registered).toBe(false);

    // Another process (a new store) reads the same login.
    const again = await createWhatsAppAuthStore(session).load();
    expect(bytes(again.creds.noiseKey.private)).toBe(bytes(first.creds.noiseKey.private));
    expect(bytes(again.creds.noiseKey.public)).toBe(bytes(first.creds.noiseKey.public));
    expect(bytes(again.creds.signedIdentityKey.private)).toBe(
      bytes(first.creds.signedIdentityKey.private),
    );
    expect(bytes(again.creds.signedPreKey.signature)).toBe(
      bytes(first.creds.signedPreKey.signature),
    );
    expect(again.creds.registrationId).toBe(first.creds.registrationId);
    expect(again.creds.advSecretKey).toBe(first.creds.advSecretKey);
    expect(again.creds).toEqual(first.creds);
  });

  it('saves updated credentials (as Baileys does on creds.update) in the order they were saved', async () => {
    const session = newSession();
    const store = createWhatsAppAuthStore(session);
    const { creds } = await store.load();
    creds.registered = true;
    creds.me = { id: '2348012345678:12@s.whatsapp.net', name: 'Atlantic' };
    creds.routingInfo = Buffer.from([1, 2, 3, 250]);
    const first = store.saveCreds({ ...creds, nextPreKeyId: 31 });
    const second = store.saveCreds({ ...creds, nextPreKeyId: 62 });
    await Promise.all([first, second]);

    const loaded = (await createWhatsAppAuthStore(session).load()).creds;
    expect(loaded.registered).toBe(true);
    expect(loaded.me).toEqual({ id: '2348012345678:12@s.whatsapp.net', name: 'Atlantic' });
    expect(bytes(loaded.routingInfo)).toBe('010203fa');
    expect(loaded.nextPreKeyId).toBe(62);
  });
});

describe('signal keys', () => {
  it('round-trips every kind of key, with Buffers and app-state sync keys as Baileys expects', async () => {
    const session = newSession();
    const { keys } = await createWhatsAppAuthStore(session).load();
    const preKey = initAuthCreds().signedIdentityKey; // a real Curve25519 key pair
    const syncKey = proto.Message.AppStateSyncKeyData.fromObject({
      keyData: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
      fingerprint: { rawId: 7, currentIndex: 2, deviceIndexes: [0, 1] },
      timestamp: 1_760_000_000,
    });
    const version: LTHashState = {
      version: 3,
      hash: Buffer.alloc(128, 9),
      indexValueMap: { 'aGVsbG8/d29ybGQ=': { valueMac: Buffer.from([4, 5, 6]) } },
    };
    await keys.set({
      'pre-key': { '1': preKey },
      session: { '2348012345678.0': Uint8Array.from([10, 20, 30]) },
      'sender-key-memory': { '120363@g.us': { '2348012345678@s.whatsapp.net': true } },
      'app-state-sync-key': { AAAAAIs6: syncKey },
      'app-state-sync-version': { regular_high: version },
      'lid-mapping': { '2348012345678': '99887766@lid' },
      'device-list': { '2348012345678': ['0', '3'] },
    });

    const readBack = (await createWhatsAppAuthStore(session).load()).keys;
    const pre = (await readBack.get('pre-key', ['1', 'missing']))['1'];
    expect(bytes(pre?.private)).toBe(bytes(preKey.private));
    expect(bytes(pre?.public)).toBe(bytes(preKey.public));
    expect(await readBack.get('pre-key', ['missing'])).toEqual({});

    const sessionRecord = (await readBack.get('session', ['2348012345678.0']))['2348012345678.0'];
    expect(bytes(sessionRecord)).toBe('0a141e');

    expect(await readBack.get('sender-key-memory', ['120363@g.us'])).toEqual({
      '120363@g.us': { '2348012345678@s.whatsapp.net': true },
    });

    const sync = (await readBack.get('app-state-sync-key', ['AAAAAIs6']))['AAAAAIs6'];
    expect(sync).toBeInstanceOf(proto.Message.AppStateSyncKeyData);
    expect(Buffer.from(sync?.keyData ?? []).toString('hex')).toBe(
      '00112233445566778899aabbccddeeff',
    );
    expect(sync?.fingerprint).toMatchObject({ rawId: 7, currentIndex: 2, deviceIndexes: [0, 1] });
    expect(Number(sync?.timestamp)).toBe(1_760_000_000);
    // Baileys encodes it again when syncing app state: the bytes must match the original's.
    expect(Buffer.from(proto.Message.AppStateSyncKeyData.encode(sync ?? {}).finish())).toEqual(
      Buffer.from(proto.Message.AppStateSyncKeyData.encode(syncKey).finish()),
    );

    const lthash = (await readBack.get('app-state-sync-version', ['regular_high']))['regular_high'];
    expect(lthash?.version).toBe(3);
    expect(bytes(lthash?.hash)).toBe(Buffer.alloc(128, 9).toString('hex'));
    expect(bytes(lthash?.indexValueMap['aGVsbG8/d29ybGQ=']?.valueMac)).toBe('040506');

    expect(await readBack.get('lid-mapping', ['2348012345678'])).toEqual({
      '2348012345678': '99887766@lid',
    });
    expect(await readBack.get('device-list', ['2348012345678'])).toEqual({
      '2348012345678': ['0', '3'],
    });
  });

  it('deletes a key set to null, and serves reads through Baileys’ key cache', async () => {
    const session = newSession();
    const { keys } = await createWhatsAppAuthStore(session).load();
    const cached = makeCacheableSignalKeyStore(keys);
    const keyPair = initAuthCreds().noiseKey;
    await cached.set({ 'pre-key': { '5': keyPair, '6': keyPair } });
    expect(bytes((await cached.get('pre-key', ['5']))['5']?.private)).toBe(bytes(keyPair.private));
    expect(await WhatsAppAuth.countDocuments({ session, key: /^pre-key\// })).toBe(2);

    await cached.set({ 'pre-key': { '5': null } });
    expect(await WhatsAppAuth.countDocuments({ session, key: /^pre-key\// })).toBe(1);
    const fresh = (await createWhatsAppAuthStore(session).load()).keys;
    expect(Object.keys(await fresh.get('pre-key', ['5', '6']))).toEqual(['6']);
  });

  it('writes the 812 pre-keys Baileys uploads on a first login in one go', async () => {
    const session = newSession();
    const { keys } = await createWhatsAppAuthStore(session).load();
    const keyPair = initAuthCreds().noiseKey;
    const preKeys: Record<string, typeof keyPair> = {};
    for (let id = 1; id <= 812; id++) preKeys[String(id)] = keyPair;
    await keys.set({ 'pre-key': preKeys });
    expect(await WhatsAppAuth.countDocuments({ session, key: /^pre-key\// })).toBe(812);
    const some = await keys.get('pre-key', ['1', '400', '812']);
    expect(Object.keys(some).sort()).toEqual(['1', '400', '812']);
  });
});

describe('clearing', () => {
  it('forgets the login and its keys, and only this session’s', async () => {
    const session = newSession();
    const other = newSession();
    const store = createWhatsAppAuthStore(session);
    const before = await store.load();
    await before.keys.set({ 'lid-mapping': { '1': '2@lid' } });
    await createWhatsAppAuthStore(other).load();

    await store.clear();
    expect(await WhatsAppAuth.countDocuments({ session })).toBe(0);
    expect(await store.hasCreds()).toBe(false);
    expect(await createWhatsAppAuthStore(other).hasCreds()).toBe(true);

    // The next start pairs again with new credentials.
    const after = await store.load();
    expect(bytes(after.creds.noiseKey.private)).not.toBe(bytes(before.creds.noiseKey.private));
    expect(await after.keys.get('lid-mapping', ['1'])).toEqual({});
  });
});
