/**
 * The admin commands through the conversation core, on both channels, with
 * real payments, the database and core/admin behind them: an admin named in
 * configuration by Telegram id presses buttons, one named by WhatsApp number
 * types and answers numbered choices. Every command works for them and is in
 * the audit log with its channel; a customer typing the same commands gets
 * the answer any unknown command gets, and the attempt is on record.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { COMMANDS } from '../../../bot/core/index.js';
import { renderNotice } from '../../../bot/core/notices.js';
import { textsFor } from '../../../bot/core/texts/index.js';
import type { Outbound } from '../../../bot/core/types.js';
import { listAudit } from '../../../core/audit.js';
import { claimNext } from '../../../core/notifications.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { getWallet } from '../../../core/wallet.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { Location } from '../../../models/location.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { useTestDatabase } from '../../support/database.js';
import { textOf, useBotHarness, type ChatUser } from '../../support/bot.js';

const TG_ADMIN = '424242001';
const WA_ADMIN = '2348055556666';

useTestDatabase();
const h = useBotHarness({
  admins: { telegramIds: [Number(TG_ADMIN)], whatsappNumbers: [`+${WA_ADMIN}`] },
});
const GB = 1_000_000_000;

interface Customer {
  user: ChatUser;
  accountId: string;
  email: string;
  reference: string;
}

/** A customer who signed up and bought `planCode` through the link the bot sent. */
async function customerOn(planCode: string): Promise<Customer> {
  const email = `cust${Math.floor(Math.random() * 1e8)}@example.com`;
  const user = await h.signedUp(email);
  await user.press('Plans');
  const answer = await user.press(`buy:${planCode}`);
  const link = answer.find((m): m is Extract<Outbound, { kind: 'link' }> => m.kind === 'link');
  if (!link) throw new Error(`no payment link: ${textOf(answer)}`);
  const payment = await Payment.findOne({ authorizationUrl: link.url }).lean().orFail();
  await h.payments.payAndSettle(payment.reference);
  return { user, accountId: await accountOf(user), email, reference: payment.reference };
}

async function accountOf(user: ChatUser): Promise<string> {
  const identity = await ChannelIdentity.findOne({
    channel: user.identity.channel,
    externalId: user.identity.externalId,
  }).lean();
  if (!identity) throw new Error('no identity');
  return String(identity.accountId);
}

/** The actions `actor` has on record through `channel`, oldest first. */
async function auditedActions(actor: string, channel: string): Promise<string[]> {
  const entries = await listAudit({ actor, limit: 500 });
  return entries
    .filter((e) => e.channel === channel)
    .map((e) => e.action)
    .reverse();
}

let customer: Customer;
let tgAdmin: ChatUser;
let waAdmin: ChatUser;

beforeAll(async () => {
  customer = await customerOn('starter');
  tgAdmin = h.user(TG_ADMIN, 'telegram');
  waAdmin = h.user(WA_ADMIN, 'whatsapp');
});

describe('a customer', () => {
  const attempts: [string, string][] = [
    ['admin', ''],
    ['stats', ''],
    ['user', 'someone@example.com'],
    ['grant', 'someone@example.com 5GB'],
    ['suspend', 'someone@example.com'],
    ['unsuspend', 'someone@example.com'],
    ['refund', 'atl-123'],
    ['payments', 'flagged'],
    ['locations', 'add ng ng Nigeria'],
    ['upstreams', ''],
    ['settings', 'graceDays 30'],
    ['broadcast', 'all buy crypto'],
    ['admins', 'add me@example.com'],
  ];

  it('gets "I don’t know" for every admin command, each attempt audited, and their own plans page', async () => {
    for (const [command, args] of attempts) {
      const answer = textOf(await customer.user.command(command, args));
      expect(answer).toBe(`I don't know /${command}. Here is what I can do:`);
    }
    const refused = (await listAudit({ actor: customer.accountId, limit: 100 })).filter(
      (e) => e.action === 'admin.refused',
    );
    expect(refused.map((e) => e.details.attempted).sort()).toEqual(
      attempts.map(([command]) => `/${command}`).sort(),
    );
    expect(refused.every((e) => e.channel === 'telegram')).toBe(true);

    // A button from an admin's chat does nothing for them either.
    const pressed = await h.conversation.handle(customer.user.identity, {
      kind: 'action',
      action: 'admin:suspend:000000000000000000000000',
    });
    expect(textOf(pressed.messages)).toContain('That button is from an older message');

    // /plans is their plans page, not the catalogue editor, and not a refusal.
    expect(textOf(await customer.user.command('plans'))).toContain('Our plans:');
    expect(await Account.findById(customer.accountId).lean()).toMatchObject({
      status: 'active',
      roles: ['customer'],
    });
  });

  it('never sees admin commands in the Telegram command menu', () => {
    const listed = COMMANDS.map((c) => c.command);
    for (const [command] of attempts) expect(listed).not.toContain(command);
  });
});

describe('the Telegram admin (by id in configuration)', () => {
  it('reads /admin, /stats, /user and /payments', async () => {
    expect(textOf(await tgAdmin.command('admin'))).toContain('/refund <payment ref>');
    const stats = textOf(await tgAdmin.command('stats'));
    expect(stats).toMatch(/Customers: \d+/);
    expect(stats).toContain('starter: 1');
    expect(textOf(await tgAdmin.press('Refresh'))).toContain('Tunnels open now: 0');

    const user = textOf(await tgAdmin.command('user', customer.email));
    expect(user).toContain(`👤 ${customer.email}`);
    expect(user).toContain('Plan: starter (active');
    expect(user).toContain(customer.reference);
    // What the customer was told, per channel (the purchase's confirmation at least).
    expect(user).toMatch(/Last told:\n(.|\n)*payment_confirmed: .*telegram (pending|sent)/);

    expect(textOf(await tgAdmin.command('payments'))).toContain(customer.reference);
    expect(textOf(await tgAdmin.press('Flagged'))).toBe('No flagged payments.');

    const adminId = await accountOf(tgAdmin);
    expect((await Account.findById(adminId).lean())?.roles).toContain('admin');
    expect(await auditedActions(adminId, 'telegram')).toEqual([
      'admin.bootstrapped',
      'stats.viewed',
      'stats.viewed',
      'user.viewed',
      'payments.viewed',
      'payments.viewed',
    ]);
  });

  it('suspends from /user with Confirm, and /unsuspend gives the account back', async () => {
    await tgAdmin.command('user', customer.email);
    expect(textOf(await tgAdmin.press('Suspend'))).toContain(`Suspend ${customer.email}?`);
    expect(textOf(await tgAdmin.press('Confirm'))).toContain(`${customer.email} is suspended`);
    expect((await Account.findById(customer.accountId).lean())?.status).toBe('suspended');

    expect(textOf(await tgAdmin.command('unsuspend', customer.email))).toContain('Unsuspend');
    expect(textOf(await tgAdmin.press('Confirm'))).toContain('is active again');
    expect((await Account.findById(customer.accountId).lean())?.status).toBe('active');

    const entries = await listAudit({ target: { kind: 'account', id: customer.accountId } });
    expect(entries.slice(0, 4).map((e) => [e.action, e.channel])).toEqual([
      ['account.unsuspended', 'telegram'],
      ['user.looked_up', 'telegram'],
      ['account.suspended', 'telegram'],
      ['user.looked_up', 'telegram'],
    ]);
  });

  it('/cancel and Cancel leave everything as it was', async () => {
    await tgAdmin.command('suspend', `${customer.email} testing`);
    expect(textOf(await tgAdmin.command('cancel'))).toContain('Cancelled');
    await tgAdmin.command('suspend', customer.email);
    expect(textOf(await tgAdmin.press('Cancel'))).toContain('Nothing was changed');
    expect((await Account.findById(customer.accountId).lean())?.status).toBe('active');
  });

  it('grants data and days with Confirm, once however often Confirm is pressed', async () => {
    const before = await getQuotaUsage(customer.accountId, h.payments.clock.now());
    expect(textOf(await tgAdmin.command('grant', `${customer.email} 5GB apology`))).toContain(
      `Give ${customer.email} 5 GB of extra data`,
    );
    const confirm = tgAdmin.received.at(-1);
    expect(textOf(await tgAdmin.press('Confirm'))).toContain(`${customer.email} got 5 GB`);
    const after = await getQuotaUsage(customer.accountId, h.payments.clock.now());
    expect((after?.limitBytes ?? 0) - (before?.limitBytes ?? 10 * GB)).toBe(5 * GB);
    // The same Confirm again (a double tap): nothing more.
    const action = confirm && 'menu' in confirm ? confirm.menu?.[0]?.[0]?.action : undefined;
    const again = await h.conversation.handle(tgAdmin.identity, {
      kind: 'action',
      action: action ?? '',
    });
    expect(textOf(again.messages)).toContain('no longer open');
    expect((await getQuotaUsage(customer.accountId, h.payments.clock.now()))?.limitBytes).toBe(
      after?.limitBytes,
    );

    const periodEnd = (await getLiveSubscription(customer.accountId))?.periodEnd ?? new Date(0);
    expect(textOf(await tgAdmin.command('grant', `${customer.email} 7d`))).toContain(
      `Add 7 days to ${customer.email}'s plan?`,
    );
    expect(textOf(await tgAdmin.press('Confirm'))).toContain('plan now runs until');
    expect((await getLiveSubscription(customer.accountId))?.periodEnd?.getTime()).toBe(
      periodEnd.getTime() + 7 * 86_400_000,
    );
    const adminId = await accountOf(tgAdmin);
    expect((await auditedActions(adminId, 'telegram')).slice(-4)).toEqual([
      'user.looked_up',
      'grant.data',
      'user.looked_up',
      'grant.days',
    ]);
  });

  it('refunds part of a payment to the wallet after Confirm', async () => {
    const confirm = textOf(
      await tgAdmin.command('refund', `${customer.reference} 1,000 wallet goodwill gesture`),
    );
    expect(confirm).toContain(`Refund ₦1,000.00 of ₦3,500.00 (payment ${customer.reference}`);
    expect(confirm).toContain("to the customer's wallet");
    expect(confirm).toContain('Reason: goodwill gesture');
    expect(textOf(await tgAdmin.press('Confirm'))).toBe('✅ Refund of ₦1,000.00: processed.');
    expect((await getWallet(customer.accountId)).balanceMinor).toBe(100_000);
    const [entry] = await listAudit({ target: { kind: 'payment', id: customer.reference } });
    expect(entry).toMatchObject({
      action: 'refund.requested',
      channel: 'telegram',
      actor: await accountOf(tgAdmin),
      details: expect.objectContaining({ amountMinor: 100_000, reason: 'goodwill gesture' }),
    });
    expect(textOf(await tgAdmin.command('refund', `${customer.reference} 5000`))).toContain(
      'what is left on this payment',
    );
  });
});

describe('the WhatsApp admin (by number in configuration)', () => {
  /** Types a command, checks the confirmation, answers 1 (Confirm). */
  async function confirmTyped(command: string, args: string, expected: string): Promise<string> {
    expect(textOf(await waAdmin.command(command, args))).toContain(expected);
    return textOf(await waAdmin.send('1'));
  }

  it('manages locations and upstreams, never echoing an upstream password', async () => {
    expect(textOf(await waAdmin.command('locations', 'add ng ng Nigeria (Lagos)'))).toContain(
      'Location ng added',
    );
    expect(
      textOf(
        await waAdmin.command('upstreams', 'add ng up1 socks5 10.0.0.1:1080 proxyuser:s3cret'),
      ),
    ).toContain('Upstream up1 added to ng');
    const listed = textOf(await waAdmin.command('upstreams'));
    expect(listed).toContain('🟢 up1 socks5 proxyuser@10.0.0.1:1080');
    expect(listed).not.toContain('s3cret');
    expect(textOf(await waAdmin.command('locations'))).toContain(
      'ng: Nigeria (Lagos), 1/1 upstreams healthy',
    );
    expect(textOf(await waAdmin.command('upstreams', 'health'))).toContain(
      'Every upstream is healthy',
    );
    expect(textOf(await waAdmin.command('upstreams', 'healthy ng up1'))).toContain(
      'marked healthy',
    );
    expect(
      await confirmTyped('upstreams', 'remove ng up1', 'Remove upstream up1 from ng?'),
    ).toContain('Upstream up1 removed from ng');
    expect(await confirmTyped('locations', 'remove ng', 'Remove location ng')).toContain(
      'Location ng removed',
    );
    expect(await Location.countDocuments({})).toBe(0);
  });

  it('edits a plan’s price for new subscriptions and a business setting', async () => {
    const plans = textOf(await waAdmin.command('plans'));
    expect(plans).toContain('• starter (Starter): ₦3,500.00/month; 10 GB/week; version 1');
    const starter = await getPlan('starter');
    expect(
      await confirmTyped(
        'plans',
        'starter price 4,000',
        'Change the price of starter from ₦3,500.00 to ₦4,000.00?',
      ),
    ).toContain('starter saved (now version 2)');
    expect((await getPlan('starter')).prices).toEqual([{ currency: 'NGN', amountMinor: 400_000 }]);
    expect((await getPlan('starter')).version).toBe(starter.version + 1);
    expect((await getLiveSubscription(customer.accountId))?.priceMinor).toBe(350_000);

    expect(textOf(await waAdmin.command('settings'))).toContain('• graceDays: 3');
    expect(
      await confirmTyped('settings', 'graceDays 5', 'Change graceDays from 3 to 5?'),
    ).toContain('graceDays is now 5');
    expect((await h.payments.settings.get()).graceDays).toBe(5);
    expect(
      await confirmTyped('settings', 'trialDepositMinor 2500', 'from ₦2,000.00 to ₦2,500.00?'),
    ).toContain('trialDepositMinor is now ₦2,500.00');
    expect(textOf(await waAdmin.command('settings', 'graceDays 500'))).toContain(
      'Change graceDays',
    );
    expect(textOf(await waAdmin.send('1'))).toMatch(/graceDays/);
    expect((await h.payments.settings.get()).graceDays).toBe(5);
  });

  it('broadcasts to a segment after confirming the count', async () => {
    expect(
      await confirmTyped(
        'broadcast',
        'plan:starter Planned maintenance tonight at 01:00 UTC.',
        'Send this to 1 customer (plan:starter)?',
      ),
    ).toContain('Queued for 1 customer');
    const items = await Notification.find({ event: 'broadcast' }).lean();
    expect(items.map((i) => String(i.accountId))).toEqual([customer.accountId]);
    expect(items[0]?.data).toMatchObject({ text: 'Planned maintenance tonight at 01:00 UTC.' });
    // What the customer's chat gets when the Telegram process delivers it.
    for (;;) {
      const claimed = await claimNext('telegram', {
        workerId: 'test',
        clock: h.payments.clock,
        leaseMs: 60_000,
      });
      if (!claimed) throw new Error('the broadcast has no Telegram slot');
      if (claimed.event !== 'broadcast') continue;
      expect(claimed.accountId).toBe(customer.accountId);
      expect(await renderNotice(textsFor('en'), claimed)).toEqual([
        { kind: 'text', text: '📣 Planned maintenance tonight at 01:00 UTC.' },
      ]);
      break;
    }
    expect(textOf(await waAdmin.command('broadcast', 'plan:payg hello'))).toContain(
      'Nobody is in plan:payg',
    );
    expect(textOf(await waAdmin.command('broadcast', 'all Again?'))).toContain('Send this to');
    expect(textOf(await waAdmin.send('1'))).toContain('the next one can go in 10 minutes');
  });

  it('lists, adds and removes admins, but not one from configuration', async () => {
    const list = textOf(await waAdmin.command('admins'));
    expect(list).toContain(`telegram ${TG_ADMIN}`);
    expect(list).toContain(`whatsapp ${WA_ADMIN}`);
    expect(
      await confirmTyped('admins', `add ${customer.email}`, `Make ${customer.email} an admin?`),
    ).toContain(`${customer.email} is an admin now`);
    expect((await Account.findById(customer.accountId).lean())?.roles).toContain('admin');
    expect(textOf(await waAdmin.command('admins', `remove tg:${TG_ADMIN}`))).toContain(
      'named in the configuration',
    );
    expect(
      await confirmTyped('admins', `remove ${customer.email}`, `Remove ${customer.email}`),
    ).toContain('is no longer an admin');
    expect((await Account.findById(customer.accountId).lean())?.roles).not.toContain('admin');

    const adminId = await accountOf(waAdmin);
    const actions = await auditedActions(adminId, 'whatsapp');
    for (const action of [
      'admin.bootstrapped',
      'location.added',
      'upstream.added',
      'upstream.marked_healthy',
      'upstream.removed',
      'location.removed',
      'plans.viewed',
      'plan.edited',
      'settings.viewed',
      'settings.changed',
      'settings.changed.failed',
      'broadcast.sent',
      'broadcast.rate_limited',
      'admins.viewed',
      'admin.added',
      'admin.removed',
    ]) {
      expect(actions).toContain(action);
    }
  });
});
