/**
 * The telegram role around the conversation: outbox deliveries (a customer
 * who blocked the bot is marked failing and skipped until they write again;
 * admin alerts reach the admin chats), one poller at a time elected by a
 * lease with a standby taking over, and webhook mode served by the api role
 * with Telegram's secret token. All against the Bot API emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RequestHandler } from 'express';
import { createApiRole, type ApiRole } from '../../../api/index.js';
import {
  createTelegramRole,
  TELEGRAM_WEBHOOK_PATH,
  type TelegramRole,
  type TelegramRoleOptions,
} from '../../../bot/telegram/role.js';
import { accountForIdentity } from '../../../core/accounts/index.js';
import { getOutboxItem, notify, notifyAdmins } from '../../../core/notifications.js';
import { createLogger } from '../../../lib/logger.js';
import { createMetricsRegistry } from '../../../lib/metrics.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { startTelegramEmulator, type TelegramEmulator } from '../../support/telegram-emulator.js';

const TOKEN = '777000:role-test';
const ADMIN_ID = 900_001;
const logger = createLogger({ level: 'silent' });
let emulator: TelegramEmulator;
const roles: TelegramRole[] = [];
let api: ApiRole | undefined;

afterAll(async () => {
  for (const role of roles) await role.stop();
  await api?.stop();
  await emulator.stop();
});
useTestDatabase();
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});

beforeAll(async () => {
  emulator = await startTelegramEmulator({ token: TOKEN, botUser: { username: 'role_test_bot' } });
});

function newRole(overrides: Partial<TelegramRoleOptions> = {}): TelegramRole {
  const role = createTelegramRole({
    token: TOKEN,
    apiRoot: emulator.apiRoot,
    mode: 'polling',
    publicUrl: 'http://atlantic.test',
    adminIds: [ADMIN_ID],
    workerId: `worker-${roles.length + 1}`,
    botInfo: emulator.botInfo,
    leaseTtlMs: 600,
    deliveryIdleMs: 30,
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
    ...overrides,
  });
  roles.push(role);
  return role;
}

/** Resolves once `condition` holds, re-checked every 20 ms (the roles run on real timers). */
async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('polling: one process at a time', () => {
  it('elects one poller, answers each message once, and a standby takes over when it stops', async () => {
    const first = newRole();
    const second = newRole();
    await first.start();
    await second.start();
    expect([first.isPolling(), second.isPolling()]).toEqual([true, false]);

    const carol = emulator.user({ id: 310_001, firstName: 'Carol' });
    carol.sendText('/help');
    const [help] = await carol.waitForMessages(1);
    expect(help?.text).toContain('/connect: your proxy address and password');

    await first.stop();
    await until(() => second.isPolling());
    carol.sendText('/help');
    expect((await carol.waitForMessages(1))[0]?.text).toContain('/cancel');
    expect(carol.messages()).toHaveLength(2);
  });
});

describe('deliveries from the outbox', () => {
  it('sends a failed payment with its link, marks a blocked customer failing, and skips them until they write', async () => {
    const role = roles.find((r) => r.isPolling()) ?? newRole();
    if (!role.isPolling()) await role.start();
    const dave = emulator.user({ id: 320_002, firstName: 'Dave', hasStartedBot: true });
    const { account } = await accountForIdentity(
      { channel: 'telegram', externalId: String(dave.id) },
      { clock: h.clock },
    );

    await notify(
      {
        accountId: account.id,
        event: 'payment_failed',
        period: 'ref-1',
        data: {
          amountMinor: 350_000,
          currency: 'NGN',
          reason: 'Declined',
          authorizationUrl: 'https://checkout.paystack.test/abc',
        },
      },
      { clock: h.clock },
    );
    const [failed] = await dave.waitForMessages(1);
    expect(failed?.text).toContain('❌ Your payment of ₦3,500.00 did not go through (Declined).');
    expect(failed?.inlineKeyboard?.[0]?.[0]).toMatchObject({
      text: 'Pay ₦3,500.00',
      url: 'https://checkout.paystack.test/abc',
    });

    dave.block();
    const { item } = await notify(
      { accountId: account.id, event: 'usage_80', period: 'w1', data: {} },
      { clock: h.clock },
    );
    await until(async () => {
      const slot = (await getOutboxItem(item.id))?.deliveries.find((d) => d.channel === 'telegram');
      return slot?.status === 'failed';
    });
    const identity = await ChannelIdentity.findOne({ externalId: String(dave.id) }).lean();
    expect(identity?.failingSince).toBeInstanceOf(Date);

    // Skipped while failing ...
    const skipped = await notify(
      { accountId: account.id, event: 'usage_95', period: 'w1', data: {} },
      { clock: h.clock },
    );
    expect(skipped.item.deliveries.find((d) => d.channel === 'telegram')).toBeUndefined();

    // ... until Dave writes again.
    dave.unblock();
    dave.sendText('/help');
    await dave.waitForMessages(1);
    await until(async () => {
      const again = await ChannelIdentity.findOne({ externalId: String(dave.id) }).lean();
      return again?.failingSince === undefined;
    });
  });

  it('sends admin alerts to the admin chats', async () => {
    const admin = emulator.user({ id: ADMIN_ID, firstName: 'Admin', hasStartedBot: true });
    await notifyAdmins(
      { event: 'dispute_opened', dedupKey: 'dispute-1', data: { reference: 'ref-9' } },
      { clock: h.clock },
    );
    const [alert] = await admin.waitForMessages(1);
    expect(alert?.text).toContain('dispute_opened');
    expect(alert?.text).toContain('ref-9');
  });
});

describe('webhook mode', () => {
  it('registers the webhook with the secret token; the api role serves it and refuses a wrong secret', async () => {
    for (const role of roles) await role.stop();
    // The route exists once the role does, which needs the api's address first.
    const mounted: { route?: RequestHandler } = {};
    api = createApiRole({
      port: 0,
      host: '127.0.0.1',
      logger,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      pingDatabase: () => Promise.resolve(),
      mountRoutes: (app) => {
        app.use((req, res, next) => (mounted.route ? mounted.route(req, res, next) : next()));
      },
    });
    await api.start();
    const base = `http://127.0.0.1:${api.address().port}`;
    const secret = 'a-long-webhook-secret-0123456789';
    const role = newRole({ mode: 'webhook', webhookSecret: secret, publicUrl: base });
    mounted.route = role.webhookRouter();
    await role.start();
    expect(emulator.webhook).toMatchObject({
      url: `${base}${TELEGRAM_WEBHOOK_PATH}`,
      secretToken: secret,
    });

    const erin = emulator.user({ id: 330_003, firstName: 'Erin' });
    emulator.deliverTo(`${base}${TELEGRAM_WEBHOOK_PATH}`, secret);
    erin.sendText('/help');
    expect((await erin.waitForMessages(1))[0]?.text).toContain('/connect');

    const forged = await fetch(`${base}${TELEGRAM_WEBHOOK_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'wrong' },
      body: JSON.stringify({ update_id: 1, message: { text: '/help' } }),
    });
    expect(forged.status).toBe(401);
    emulator.stopDelivering();
  });
});
