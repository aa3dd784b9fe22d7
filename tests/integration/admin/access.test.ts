/**
 * Who may run admin operations: every operation in core/admin refuses a
 * customer with FORBIDDEN, records the refused attempt in the audit log and
 * changes nothing; a suspended admin is refused too; an admin named in
 * configuration (by chat identity) is let in and given the role in the
 * database once, so the refund path (which asks the database) knows them.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  addAdmin,
  addLocationAsAdmin,
  addUpstream,
  countBroadcast,
  describePayment,
  editPlan,
  extendPlan,
  findUser,
  getSettingsForAdmin,
  getStats,
  grantData,
  isAdmin,
  listAdmins,
  listLocationsForAdmin,
  listPayments,
  listPlansForAdmin,
  lookupAccount,
  markUpstreamHealthy,
  refundPayment,
  removeAdmin,
  removeLocationAsAdmin,
  removeUpstream,
  sendBroadcast,
  suspendAccount,
  unsuspendAccount,
  updateSettingsAsAdmin,
  type AdminContext,
} from '../../../core/admin/index.js';
import { listAudit } from '../../../core/audit.js';
import { addExit, addLocation, listLocations } from '../../../core/locations.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Refund } from '../../../models/refund.js';
import { useTestDatabase } from '../../support/database.js';
import { auditBy, linkChat, useAdminHarness, type Customer } from './harness.js';

useTestDatabase();
const h = useAdminHarness();
const GB = 1_000_000_000;

let target: Customer & { reference: string };
let outsider: string;

beforeAll(async () => {
  target = await h.buyer('personal');
  outsider = (await h.customer({ planCode: 'starter' })).accountId;
  await addLocation({ countryCode: 'ng', label: 'Nigeria' });
  await addExit('ng', { exitId: 'up1', kind: 'socks5', host: '10.0.0.1', port: 1080 });
  await addLocation({ countryCode: 'gb', label: 'United Kingdom' });
});

/** Every operation of core/admin, as a non-admin would call it. */
function everyOperation(ctx: AdminContext): [string, () => Promise<unknown>][] {
  const user = target.email;
  return [
    ['stats', () => getStats(ctx)],
    ['user.view', () => findUser(ctx, user)],
    ['user.lookup', () => lookupAccount(ctx, user)],
    ['grant.data', () => grantData(ctx, { user, bytes: 5 * GB, requestId: 'r1' })],
    ['grant.days', () => extendPlan(ctx, { user, days: 7, requestId: 'r2' })],
    ['account.suspend', () => suspendAccount(ctx, { user })],
    ['account.unsuspend', () => unsuspendAccount(ctx, { user })],
    ['payments.list', () => listPayments(ctx, { filter: 'recent' })],
    ['payments.view', () => describePayment(ctx, target.reference)],
    [
      'refund',
      () =>
        refundPayment(ctx, h.payments.payments, {
          paymentReference: target.reference,
          method: 'wallet',
          reason: 'mine now',
          requestId: 'r3',
        }),
    ],
    ['locations.list', () => listLocationsForAdmin(ctx)],
    ['locations.add', () => addLocationAsAdmin(ctx, { countryCode: 'us', label: 'US' })],
    ['locations.remove', () => removeLocationAsAdmin(ctx, 'gb')],
    [
      'upstreams.add',
      () => addUpstream(ctx, 'ng', { exitId: 'evil', kind: 'socks5', host: 'evil', port: 1 }),
    ],
    ['upstreams.remove', () => removeUpstream(ctx, 'ng', 'up1')],
    ['upstreams.health', () => markUpstreamHealthy(ctx, 'ng', 'up1')],
    ['plans.list', () => listPlansForAdmin(ctx)],
    [
      'plans.edit',
      () =>
        editPlan(ctx, {
          code: 'starter',
          edit: { field: 'price', amountMinor: 1, currency: 'NGN' },
        }),
    ],
    ['settings.view', () => getSettingsForAdmin(ctx, h.payments.settings)],
    ['settings.update', () => updateSettingsAsAdmin(ctx, h.payments.settings, { graceDays: 30 })],
    ['broadcast.count', () => countBroadcast(ctx, 'all')],
    ['broadcast.send', () => sendBroadcast(ctx, { segment: 'all', text: 'spam', requestId: 'r4' })],
    ['admins.list', () => listAdmins(ctx)],
    ['admins.add', () => addAdmin(ctx, { user: ctx.actor.accountId })],
    ['admins.remove', () => removeAdmin(ctx, { user })],
  ];
}

describe('a customer', () => {
  it('is refused every admin operation, each attempt audited, and nothing changes', async () => {
    const ctx = h.ctx(outsider, 'whatsapp');
    const before = {
      settings: (await h.payments.settings.get()).version,
      starter: (await getPlan('starter')).version,
      quota: (await getQuotaUsage(target.accountId, h.payments.clock.now()))?.limitBytes ?? null,
      periodEnd: (await getLiveSubscription(target.accountId))?.periodEnd,
    };
    const operations = everyOperation(ctx);
    for (const [attempted, run] of operations) {
      await expect(run()).rejects.toMatchObject({ code: 'FORBIDDEN', details: { attempted } });
    }

    const refused = (await auditBy(outsider)).filter((e) => e.action === 'admin.refused');
    expect(refused.map((e) => e.details.attempted).sort()).toEqual(
      operations.map(([attempted]) => attempted).sort(),
    );
    expect(
      refused.every((e) => e.channel === 'whatsapp' && e.details.reason === 'not an admin'),
    ).toBe(true);
    // Nothing but refusals on record, and nothing moved.
    expect((await auditBy(outsider)).every((e) => e.action === 'admin.refused')).toBe(true);
    expect(await Account.findById(target.accountId).lean()).toMatchObject({ status: 'active' });
    expect((await Account.findById(outsider).lean())?.roles).toEqual(['customer']);
    expect((await h.payments.settings.get()).version).toBe(before.settings);
    expect((await getPlan('starter')).version).toBe(before.starter);
    expect(
      (await getQuotaUsage(target.accountId, h.payments.clock.now()))?.limitBytes ?? null,
    ).toBe(before.quota);
    expect((await getLiveSubscription(target.accountId))?.periodEnd).toEqual(before.periodEnd);
    expect(await Refund.countDocuments({ paymentReference: target.reference })).toBe(0);
    expect(await Notification.countDocuments({ event: 'broadcast' })).toBe(0);
    const locations = await listLocations();
    expect(locations.map((l) => l.code)).toEqual(['gb', 'ng']);
    expect(locations.find((l) => l.code === 'ng')?.exits.map((e) => e.exitId)).toEqual(['up1']);
    expect(await isAdmin(ctx)).toBe(false);
  });

  it('cannot act with an account id that does not exist, or with something else', async () => {
    await expect(getStats(h.ctx('0123456789abcdef01234567'))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(getStats(h.ctx('not-an-id'))).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('an admin', () => {
  it('loses admin rights while suspended (the refusal audited)', async () => {
    const admin = await h.admin();
    await Account.updateOne({ _id: admin }, { $set: { status: 'suspended' } });
    await expect(getStats(h.ctx(admin))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const [entry] = await auditBy(admin);
    expect(entry).toMatchObject({
      action: 'admin.refused',
      details: { attempted: 'stats', reason: 'account suspended' },
    });
  });

  it('named in configuration is let in by chat identity and given the role once', async () => {
    const { accountId } = await h.customer();
    await linkChat(accountId, 'whatsapp', '2348011112222');
    const configured = { telegramIds: [], whatsappNumbers: ['+234 801 111 2222'] };
    const ctx = h.ctx(accountId, 'whatsapp', configured);

    expect(await isAdmin(ctx)).toBe(true);
    await getStats(ctx);
    await listPlansForAdmin(ctx);
    expect((await Account.findById(accountId).lean())?.roles).toContain('admin');
    const bootstrapped = (await auditBy(accountId)).filter(
      (e) => e.action === 'admin.bootstrapped',
    );
    expect(bootstrapped).toHaveLength(1);
    expect(bootstrapped[0]).toMatchObject({
      channel: 'whatsapp',
      details: { source: 'configuration' },
    });

    // Another number on the same list is not this account.
    const other = await h.customer();
    await linkChat(other.accountId, 'whatsapp', '2348011113333');
    await expect(getStats(h.ctx(other.accountId, 'whatsapp', configured))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    // A Telegram id equal to the configured number's digits is not the WhatsApp number.
    const lookalike = await h.customer();
    await linkChat(lookalike.accountId, 'telegram', '2348011112222');
    await expect(
      getStats(h.ctx(lookalike.accountId, 'telegram', configured)),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await listAudit({ actor: lookalike.accountId })).toHaveLength(1);
  });
});
