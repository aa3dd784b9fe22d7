/**
 * WhatsApp deliveries from the notification outbox (bot/whatsapp/deliver.ts)
 * against the real outbox in the database: a customer's notice reaches
 * their number, a number that is not on WhatsApp is marked failing and
 * skipped until the customer writes again, admin alerts reach the admin
 * numbers, and nothing is claimed while the connection is down.
 */
import { describe, expect, it } from '@jest/globals';
import { WhatsAppAdapter } from '../../../bot/whatsapp/adapter.js';
import { WhatsAppDeliverer } from '../../../bot/whatsapp/deliver.js';
import { createConversation } from '../../../bot/core/index.js';
import { accountForIdentity } from '../../../core/accounts/index.js';
import { getOutboxItem, notify, notifyAdmins } from '../../../core/notifications.js';
import { createLogger } from '../../../lib/logger.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { FakeSocket, shownText } from './fake-socket.js';

useTestDatabase();
const h = usePaymentsHarness({
  start: new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString(),
});
const logger = createLogger({ level: 'silent' });
const ADMINS = ['2348100000001', '2348100000002'];

let numbers = 0;
const newNumber = (): string => `2347${String(100_000_000 + ++numbers * 7919)}`;

function setup(connected = true) {
  const socket = new FakeSocket();
  const state = { connected };
  const deliverer = new WhatsAppDeliverer({
    socket: () => (state.connected ? socket : undefined),
    clock: h.clock,
    logger,
    workerId: 'wa-test',
    adminNumbers: () => Promise.resolve(ADMINS),
  });
  /** Sends everything due, one claim at a time, until nothing is left. */
  const deliverAll = async (): Promise<void> => {
    while (await deliverer.deliverOnce());
  };
  return { socket, deliverer, deliverAll, state };
}

async function customer(number: string): Promise<string> {
  const { account } = await accountForIdentity(
    { channel: 'whatsapp', externalId: number },
    { clock: h.clock },
  );
  return account.id;
}

const slotOf = async (itemId: string) =>
  (await getOutboxItem(itemId))?.deliveries.find((d) => d.channel === 'whatsapp');

describe('customer notices', () => {
  it("sends a failed payment with its link to the customer's number and marks it sent", async () => {
    const { socket, deliverAll } = setup();
    const number = newNumber();
    socket.onWhatsAppNumbers.add(number);
    const accountId = await customer(number);
    const { item } = await notify(
      {
        accountId,
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
    await deliverAll();

    expect(socket.sent).toHaveLength(1);
    const [sent] = socket.sent;
    expect(sent?.jid).toBe(`${number}@s.whatsapp.net`);
    const shown = shownText(sent?.content ?? { text: '' });
    expect(shown).toContain('❌ Your payment of ₦3,500.00 did not go through (Declined).');
    expect(shown).toContain('Pay ₦3,500.00: https://checkout.paystack.test/abc');
    expect(shown).toMatch(/\n1\. .*Menu\n0\. Menu$/);
    expect(await slotOf(item.id)).toMatchObject({ status: 'sent' });
  });

  it('marks a number that is not on WhatsApp failing, skips it, and lifts the mark when the customer writes', async () => {
    const { socket, deliverAll } = setup();
    const number = newNumber(); // not in socket.onWhatsAppNumbers
    const accountId = await customer(number);
    const { item } = await notify(
      { accountId, event: 'usage_80', period: 'w1', data: {} },
      { clock: h.clock },
    );
    await deliverAll();

    expect(socket.sent).toEqual([]);
    expect(await slotOf(item.id)).toMatchObject({ status: 'failed' });
    const identity = await ChannelIdentity.findOne({ channel: 'whatsapp', externalId: number })
      .lean()
      .orFail();
    expect(identity.failingSince).toBeInstanceOf(Date);
    expect(identity.failingReason).toContain('not on WhatsApp');

    // Skipped while failing ...
    const skipped = await notify(
      { accountId, event: 'usage_95', period: 'w1', data: {} },
      { clock: h.clock },
    );
    expect(skipped.item.deliveries.find((d) => d.channel === 'whatsapp')).toBeUndefined();

    // ... until the customer writes from that number.
    const adapter = new WhatsAppAdapter({
      conversation: createConversation({
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
      }),
      logger,
    });
    adapter.attach(socket);
    socket.receive(number, { conversation: '/help' });
    await adapter.drain();
    const again = await ChannelIdentity.findOne({ channel: 'whatsapp', externalId: number })
      .lean()
      .orFail();
    expect(again.failingSince).toBeUndefined();
    const next = await notify(
      { accountId, event: 'usage_100', period: 'w1', data: {} },
      { clock: h.clock },
    );
    expect(next.item.deliveries.find((d) => d.channel === 'whatsapp')).toMatchObject({
      status: 'pending',
    });
  });

  it('retries later when WhatsApp does not answer the lookup', async () => {
    const { socket, deliverAll } = setup();
    const number = newNumber();
    socket.onWhatsAppNumbers.add(number);
    socket.lookupFails = true;
    const accountId = await customer(number);
    const { item } = await notify(
      { accountId, event: 'wallet_empty', period: 'd1', data: {} },
      { clock: h.clock },
    );
    await deliverAll();
    const slot = await slotOf(item.id);
    expect(slot).toMatchObject({ status: 'pending', attempts: 1 });
    expect(slot?.lastError).toContain('could not check');

    socket.lookupFails = false;
    h.clock.advanceBy({ minutes: 10 });
    await deliverAll();
    expect(await slotOf(item.id)).toMatchObject({ status: 'sent' });
    expect(socket.sent.map((m) => m.jid)).toEqual([`${number}@s.whatsapp.net`]);
  });

  it('claims nothing while the connection is down', async () => {
    const { socket, deliverAll, state } = setup(false);
    const number = newNumber();
    socket.onWhatsAppNumbers.add(number);
    const accountId = await customer(number);
    const { item } = await notify(
      { accountId, event: 'trial_ending', period: 't1', data: { trialEndsAt: '2026-12-01' } },
      { clock: h.clock },
    );
    await deliverAll();
    expect(await slotOf(item.id)).toMatchObject({ status: 'pending', attempts: 0 });

    state.connected = true;
    await deliverAll();
    expect(await slotOf(item.id)).toMatchObject({ status: 'sent', attempts: 1 });
  });
});

describe('admin alerts', () => {
  it('go to every admin number on WhatsApp; one that is not is skipped', async () => {
    const { socket, deliverAll } = setup();
    socket.onWhatsAppNumbers.add(ADMINS[0] ?? '');
    const { item } = await notifyAdmins(
      { event: 'dispute_opened', dedupKey: 'dispute-wa-1', data: { reference: 'ref-9' } },
      { clock: h.clock },
    );
    await deliverAll();
    expect(socket.sent.map((m) => m.jid)).toEqual([`${ADMINS[0]}@s.whatsapp.net`]);
    const shown = shownText(socket.sent[0]?.content ?? { text: '' });
    expect(shown).toContain('dispute_opened');
    expect(shown).toContain('ref-9');
    expect(await slotOf(item.id)).toMatchObject({ status: 'sent' });
  });
});
