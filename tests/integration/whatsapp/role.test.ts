/**
 * The whatsapp role (bot/whatsapp/role.ts) with a fake socket factory and
 * everything else real: the connection lease elects one process and a
 * standby takes over with the same login from MongoDB, the QR code is drawn
 * and logged, a pairing code is asked for instead when a pairing number is
 * set, a logout clears the login and stops, a lost connection reconnects,
 * and deliveries flow only while connected.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';
import { DisconnectReason } from '@whiskeysockets/baileys';
import {
  createWhatsAppRole,
  WHATSAPP_CONNECTION_LEASE,
  type WhatsAppRole,
  type WhatsAppRoleOptions,
} from '../../../bot/whatsapp/role.js';
import { createWhatsAppAuthStore } from '../../../bot/whatsapp/auth-store.js';
import type { WhatsAppConnectOptions } from '../../../bot/whatsapp/connection.js';
import { accountForIdentity } from '../../../core/accounts/index.js';
import { getOutboxItem, notify } from '../../../core/notifications.js';
import { createLogger } from '../../../lib/logger.js';
import { RoleLease } from '../../../models/role-lease.js';
import { WhatsAppAuth } from '../../../models/whatsapp-auth.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { FakeSocket, shownText } from './fake-socket.js';

useTestDatabase();
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});
const roles: WhatsAppRole[] = [];
afterAll(async () => {
  for (const role of roles) await role.stop();
});

interface Harness {
  role: WhatsAppRole;
  /** Every socket the role asked for, newest last. */
  sockets: FakeSocket[];
  connects: WhatsAppConnectOptions[];
  logs: Record<string, unknown>[];
  terminal: string[];
  /** Resolves with the next socket the role connects. */
  nextSocket(): Promise<FakeSocket>;
}

let sessions = 0;
let workers = 0;

function newRole(overrides: Partial<WhatsAppRoleOptions> = {}): Harness {
  const sockets: FakeSocket[] = [];
  const connects: WhatsAppConnectOptions[] = [];
  const logs: Record<string, unknown>[] = [];
  const terminal: string[] = [];
  const waiting: ((socket: FakeSocket) => void)[] = [];
  const logger = createLogger({
    level: 'info',
    destination: {
      write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
  const role = createWhatsAppRole({
    deps: {
      clock: h.clock,
      payments: h.payments,
      settings: h.settings,
      mailer: { send: () => Promise.resolve({ messageId: 'unused' }) },
      logger,
      proxy: {
        host: 'proxy.test',
        socksPort: 1080,
        httpPort: 8080,
        policy: { httpsOnlyPorts: [443], blockedPorts: [25] },
      },
    },
    adminNumbers: [],
    workerId: `wa-worker-${++workers}`,
    session: `role-${sessions}`,
    leaseTtlMs: 600,
    deliveryIdleMs: 20,
    backoff: { baseMs: 5, maxMs: 20 },
    terminal: { write: (text: string) => terminal.push(text) },
    connect: (options) => {
      connects.push(options);
      const socket = new FakeSocket();
      sockets.push(socket);
      for (const resolve of waiting.splice(0)) resolve(socket);
      return Promise.resolve(socket);
    },
    ...overrides,
  });
  roles.push(role);
  return {
    role,
    sockets,
    connects,
    logs,
    terminal,
    nextSocket: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

const messagesOf = (logs: Record<string, unknown>[]): string[] =>
  logs.map((record) => String(record.msg));

describe('one connection at a time', () => {
  it('takes the lease and connects; a standby takes over with the same login when it stops', async () => {
    sessions += 1;
    const first = newRole();
    const second = newRole();
    await first.role.start();
    await second.role.start();
    expect([first.role.isConnectionHolder(), second.role.isConnectionHolder()]).toEqual([
      true,
      false,
    ]);
    expect(first.sockets).toHaveLength(1);
    expect(second.sockets).toHaveLength(0);
    expect(await RoleLease.findOne({ name: WHATSAPP_CONNECTION_LEASE }).lean()).toMatchObject({
      holder: 'wa-worker-1',
    });
    const login = first.connects[0]?.auth.creds.noiseKey.public;

    const opened = once(first.role.connection, 'open');
    first.sockets[0]?.open();
    await opened;
    expect(first.role.status()).toBe('open');

    const takeover = second.nextSocket();
    await first.role.stop();
    expect(first.sockets[0]?.ended).toBe(true);
    await takeover;
    expect(second.role.isConnectionHolder()).toBe(true);
    // The standby logs in with the login the first process left in MongoDB.
    expect(Buffer.from(second.connects[0]?.auth.creds.noiseKey.public ?? []).toString('hex')).toBe(
      Buffer.from(login ?? []).toString('hex'),
    );
    await second.role.stop();
  });
});

describe('logging in', () => {
  it('draws the QR code in the terminal and logs it as a data URL', async () => {
    sessions += 1;
    const { role, sockets, logs, terminal } = newRole();
    await role.start();
    const shown = once(role.connection, 'qr');
    sockets[0]?.emit('connection.update', { qr: '2@Q1x2y3,abcdefghijk,lmnopqrstu,vwxyz' });
    const [{ dataUrl }] = (await shown) as [{ dataUrl: string }];

    expect(dataUrl).toMatch(/^data:image\/png;base64,/);
    expect(terminal.join('')).toContain('Link a device');
    expect(terminal.join('')).toMatch(/[▄▀█]/);
    const record = logs.find((r) => String(r.msg).startsWith('whatsapp.qr'));
    expect(record).toMatchObject({ qrDataUrl: dataUrl });
    await role.stop();
  });

  it('asks for a pairing code for the pairing number instead, once per connection', async () => {
    sessions += 1;
    const { role, sockets, logs, terminal } = newRole({ pairingNumber: '2348012345678' });
    await role.start();
    const paired = once(role.connection, 'pairing-code');
    sockets[0]?.emit('connection.update', { qr: '2@first' });
    sockets[0]?.emit('connection.update', { qr: '2@second' });
    await paired;
    expect(sockets[0]?.pairingRequests).toEqual(['2348012345678']);
    expect(terminal).toEqual([]);
    expect(logs.find((r) => String(r.msg).startsWith('whatsapp.pairing_code'))).toMatchObject({
      pairingCode: 'ABCD1234',
    });
    await role.stop();
  });
});

describe('when the connection closes', () => {
  it('clears the login and stops after a logout', async () => {
    sessions += 1;
    const session = `role-${sessions}`;
    const { role, sockets, connects, logs } = newRole();
    await role.start();
    sockets[0]?.open();
    // Baileys writes keys as it runs.
    await connects[0]?.auth.keys.set({ 'lid-mapping': { '1': '2@lid' } });
    expect(await WhatsAppAuth.countDocuments({ session })).toBe(2);

    const closed = once(role.connection, 'closed');
    sockets[0]?.close(DisconnectReason.loggedOut);
    const [{ decision }] = (await closed) as [{ decision: { action: string } }];
    expect(decision).toMatchObject({ action: 'stop', clearAuth: true });
    expect(await WhatsAppAuth.countDocuments({ session })).toBe(0);
    expect(role.status()).toBe('stopped');
    expect(sockets).toHaveLength(1);
    expect(messagesOf(logs).some((m) => m.startsWith('whatsapp.stopped'))).toBe(true);
    await role.stop();
  });

  it('reconnects at once after pairing (restart required) with the new login, saved for the next process', async () => {
    sessions += 1;
    const session = `role-${sessions}`;
    const { role, sockets, connects, nextSocket } = newRole();
    await role.start();
    // What Baileys does when the phone accepts the pairing: update creds, then ask for a restart.
    const creds = connects[0]?.auth.creds;
    if (!creds) throw new Error('no login');
    creds.registered = true;
    creds.me = { id: '2348012345678:3@s.whatsapp.net', name: 'Atlantic' };
    sockets[0]?.emit('creds.update', { registered: true, me: creds.me });
    const restarted = nextSocket();
    sockets[0]?.close(DisconnectReason.restartRequired);
    await restarted;
    expect(connects[1]?.auth.creds).toMatchObject({ registered: true, me: creds.me });

    await role.stop();
    const stored = await createWhatsAppAuthStore(session).load();
    expect(stored.creds).toMatchObject({ registered: true, me: creds.me });
  });

  it('reconnects after a lost connection, keeping the login', async () => {
    sessions += 1;
    const session = `role-${sessions}`;
    const { role, sockets, nextSocket } = newRole();
    await role.start();
    sockets[0]?.open();
    const reconnected = nextSocket();
    sockets[0]?.close(DisconnectReason.connectionLost);
    const socket = await reconnected;
    expect(sockets).toHaveLength(2);
    expect(await WhatsAppAuth.countDocuments({ session, key: 'creds' })).toBe(1);
    const opened = once(role.connection, 'open');
    socket.open();
    await opened;
    expect(role.status()).toBe('open');
    await role.stop();
  });

  it('delivers from the outbox only once connected, and answers the customer', async () => {
    sessions += 1;
    const { role, sockets } = newRole();
    await role.start();
    const socket = sockets[0];
    if (!socket) throw new Error('no socket');
    const number = '2348055500011';
    socket.onWhatsAppNumbers.add(number);
    const { account } = await accountForIdentity(
      { channel: 'whatsapp', externalId: number },
      { clock: h.clock },
    );
    const { item } = await notify(
      { accountId: account.id, event: 'wallet_empty', period: 'role-1', data: {} },
      { clock: h.clock },
    );
    expect(socket.sent).toEqual([]);

    socket.open();
    const [sent] = await socket.waitForSent(1);
    expect(sent?.jid).toBe(`${number}@s.whatsapp.net`);
    expect(shownText(sent?.content ?? { text: '' })).toContain('0. Menu');
    socket.receive(number, { conversation: 'help' });
    await role.adapter.drain();
    expect(shownText(socket.sent[1]?.content ?? { text: '' })).toContain('/connect');
    await role.stop();
    expect(
      (await getOutboxItem(item.id))?.deliveries.find((d) => d.channel === 'whatsapp'),
    ).toMatchObject({ status: 'sent' });
  });
});

describe('loading', () => {
  it('does not load Baileys until the role starts (main.ts imports it in every process)', async () => {
    // A module resolution hook in a child process lists what importing role.ts resolves.
    const dir = await mkdtemp(path.join(tmpdir(), 'wa-load-'));
    const hook = path.join(dir, 'hook.mjs');
    await writeFile(
      hook,
      `export async function resolve(specifier, context, next) {
        if (specifier.includes('baileys')) process.stdout.write('BAILEYS ' + specifier + '\\n');
        return next(specifier, context);
      }`,
    );
    const register = path.join(dir, 'register.mjs');
    await writeFile(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});`,
    );
    const load = async (module: string): Promise<string> => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          register,
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `await import(${JSON.stringify(pathToFileURL(path.resolve(module)).href)}); console.log('LOADED');`,
        ],
        { cwd: path.resolve(import.meta.dirname, '../../..') },
      );
      return stdout;
    };
    const role = await load('bot/whatsapp/role.ts');
    expect(role).toContain('LOADED');
    expect(role).not.toContain('BAILEYS');
    // The hook does see Baileys when a module that needs it is loaded.
    expect(await load('bot/whatsapp/auth-store.ts')).toContain('BAILEYS @whiskeysockets/baileys');
    await rm(dir, { recursive: true, force: true });
  });
});
