/**
 * /api/v1/admin over real HTTP against the real database and the Paystack
 * emulator: every admin bot command as a REST route, each with what an
 * operator (or the customer concerned) would notice, its errors, and the
 * audit entry it leaves (channel 'api', the admin's account id). The gates
 * (no token, a customer) are in admin-security.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { markExitHealth } from '../../../core/locations.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { AuditEntry } from '../../../models/audit-entry.js';
import { Account } from '../../../models/account.js';
import { Notification } from '../../../models/notification.js';
import { Payment } from '../../../models/payment.js';
import { Refund } from '../../../models/refund.js';
import { Subscription } from '../../../models/subscription.js';
import { accountOnPlan } from '../../support/accounts.js';
import { useApiHarness, type ApiCustomer } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
const api = useApiHarness();
const clock = () => api.payments.clock;

const GB = 1_000_000_000;
const UNKNOWN_ID = 'aaaaaaaaaaaaaaaaaaaaaaaa';
let serial = 0;
const unique = (prefix: string) => `${prefix}${(serial += 1)}${Date.now() % 100_000}`;

function newAdmin(): Promise<ApiCustomer> {
  return api.customer({ roles: ['customer', 'admin'] });
}

/** The admin's newest audit entry of `action`: it must exist, on channel 'api'. */
async function audited(admin: ApiCustomer, action: string, targetId?: string) {
  const entry = await AuditEntry.findOne({
    actor: admin.accountId,
    action,
    ...(targetId === undefined ? {} : { 'target.id': targetId }),
  })
    .sort({ at: -1, _id: -1 })
    .lean();
  expect(entry).not.toBeNull();
  expect(entry?.channel).toBe('api');
  expect(entry?.actor).toBe(admin.accountId);
  return { details: (entry?.details ?? {}) as Record<string, unknown>, raw: entry };
}

/** A customer who bought `planCode` through a real checkout paid on the emulator. */
async function buyer(planCode = 'personal') {
  const account = await api.payments.newCustomer();
  const accountId = String(account._id);
  const checkout = await api.payments.payments.checkout({ accountId, purpose: 'plan', planCode });
  await api.payments.payAndSettle(checkout.reference);
  const payment = await Payment.findOne({ reference: checkout.reference }).lean().orFail();
  return { accountId, email: String(account.email), reference: checkout.reference, payment };
}

describe('customers: GET /admin/users and /admin/users/:id', () => {
  it('finds a customer by email and shows their report with plan and data', async () => {
    const admin = await newAdmin();
    const customer = await api.customer();
    const found = await api.call(
      'get',
      `/admin/users?query=${encodeURIComponent(customer.email)}`,
      {
        token: admin.accessToken,
      },
    );
    expect(found.status).toBe(200);
    expect(found.body.user).toMatchObject({
      id: customer.accountId,
      email: customer.email,
      status: 'active',
    });
    await audited(admin, 'user.looked_up', customer.accountId);

    const onPlan = await accountOnPlan('starter', clock());
    const report = await api.call('get', `/admin/users/${onPlan}`, { token: admin.accessToken });
    expect(report.status).toBe(200);
    expect(report.body.account.id).toBe(onPlan);
    expect(report.body.subscription).toMatchObject({ planCode: 'starter', status: 'active' });
    expect(report.body.payments).toEqual([]);
    await audited(admin, 'user.viewed', onPlan);
  });

  it('answers 404 for nobody and 400 for a malformed id or an empty query', async () => {
    const admin = await newAdmin();
    const nobody = await api.call('get', '/admin/users?query=nobody%40example.com', {
      token: admin.accessToken,
    });
    expect(nobody.status).toBe(404);
    expect(nobody.body.error.code).toBe('NOT_FOUND');
    expect(
      (await api.call('get', `/admin/users/${UNKNOWN_ID}`, { token: admin.accessToken })).status,
    ).toBe(404);
    expect(
      (await api.call('get', '/admin/users/not-an-id', { token: admin.accessToken })).status,
    ).toBe(400);
    expect((await api.call('get', '/admin/users', { token: admin.accessToken })).status).toBe(400);
  });
});

describe('GET /admin/stats', () => {
  it('counts the customers as the database holds them', async () => {
    const admin = await newAdmin();
    await api.customer();
    const res = await api.call('get', '/admin/stats', { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.customers.total).toBe(
      await Account.countDocuments({ status: { $ne: 'deleted' } }),
    );
    expect(res.body.customers.suspended).toBe(
      await Account.countDocuments({ status: 'suspended' }),
    );
    expect(res.body.revenue.today).toEqual(
      expect.objectContaining({ inMinor: expect.any(Object), refundedMinor: expect.any(Object) }),
    );
    await audited(admin, 'stats.viewed');
  });

  it('refuses an admin whose account was suspended (403), with the refusal on record', async () => {
    const admin = await newAdmin();
    await Account.updateOne({ _id: admin.accountId }, { $set: { status: 'suspended' } });
    const res = await api.call('get', '/admin/stats', { token: admin.accessToken });
    expect(res.status).toBe(403);
    expect(
      await AuditEntry.findOne({ actor: admin.accountId, action: 'admin.refused' }).lean(),
    ).toMatchObject({
      channel: 'api',
      details: { attempted: 'adminGetStats', reason: 'account suspended' },
    });
  });
});

describe('POST /admin/users/:id/grant-data', () => {
  it('adds the data once however often the same request is repeated', async () => {
    const admin = await newAdmin();
    const customer = await accountOnPlan('starter', clock());
    const grant = () =>
      api.call('post', `/admin/users/${customer}/grant-data`, {
        token: admin.accessToken,
        body: { bytes: 2 * GB, reason: 'outage', requestId: 'grant-1' },
      });
    const first = await grant();
    expect(first.status).toBe(200);
    const limitAfterFirst = first.body.period.limitBytes as number;
    expect(first.body).toMatchObject({ accountId: customer, bytes: 2 * GB });
    expect(first.body.period.addedBytes).toBe(2 * GB);

    const repeat = await grant();
    expect(repeat.status).toBe(200);
    expect(repeat.body.period.limitBytes).toBe(limitAfterFirst);
    const usage = await getQuotaUsage(customer, clock().now());
    expect(usage?.limitBytes).toBe(limitAfterFirst);

    const entry = await audited(admin, 'grant.data', customer);
    expect(entry.details).toMatchObject({ bytes: 2 * GB, reason: 'outage', requestId: 'grant-1' });
    expect(await AuditEntry.countDocuments({ actor: admin.accountId, action: 'grant.data' })).toBe(
      1,
    );
  });

  it('takes the request id from the Idempotency-Key header, and refuses it reused for another grant', async () => {
    const admin = await newAdmin();
    const customer = await accountOnPlan('starter', clock());
    const viaHeader = await api.call('post', `/admin/users/${customer}/grant-data`, {
      token: admin.accessToken,
      body: { bytes: GB },
      headers: { 'idempotency-key': 'hdr-1' },
    });
    expect(viaHeader.status).toBe(200);
    expect((await audited(admin, 'grant.data', customer)).details).toMatchObject({
      requestId: 'hdr-1',
    });

    const reused = await api.call('post', `/admin/users/${customer}/grant-data`, {
      token: admin.accessToken,
      body: { bytes: 5 * GB, requestId: 'hdr-1' },
    });
    expect(reused.status).toBe(409);
    expect(reused.body.error.details.reason).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await getQuotaUsage(customer, clock().now()))?.addedBytes).toBe(GB);

    const differ = await api.call('post', `/admin/users/${customer}/grant-data`, {
      token: admin.accessToken,
      body: { bytes: GB, requestId: 'a-1' },
      headers: { 'idempotency-key': 'b-1' },
    });
    expect(differ.status).toBe(400);
  });

  it('answers 404 for an unknown customer, 400 without a request id or with 0 bytes, 409 without a plan', async () => {
    const admin = await newAdmin();
    const post = (id: string, body: unknown) =>
      api.call('post', `/admin/users/${id}/grant-data`, { token: admin.accessToken, body });
    expect((await post(UNKNOWN_ID, { bytes: GB, requestId: 'x-1' })).status).toBe(404);
    const customer = await accountOnPlan('starter', clock());
    const noKey = await post(customer, { bytes: GB });
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.details.field).toBe('requestId');
    expect((await post(customer, { bytes: 0, requestId: 'x-2' })).status).toBe(400);
    const planless = await api.customer();
    const conflict = await post(planless.accountId, { bytes: GB, requestId: 'x-3' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.message).toBe('This customer has no running plan.');
  });
});

describe('POST /admin/users/:id/extend', () => {
  it('moves the end of the paid period once per request', async () => {
    const admin = await newAdmin();
    const customer = await accountOnPlan('personal', clock());
    const before = await Subscription.findOne({ accountId: customer }).lean().orFail();
    const extend = () =>
      api.call('post', `/admin/users/${customer}/extend`, {
        token: admin.accessToken,
        body: { days: 7, requestId: 'ext-1' },
      });
    const first = await extend();
    expect(first.status).toBe(200);
    const expected = new Date((before.periodEnd?.getTime() ?? 0) + 7 * 86_400_000).toISOString();
    expect(first.body).toMatchObject({ field: 'periodEnd', changed: true, to: expected });
    const repeat = await extend();
    expect(repeat.body.changed).toBe(false);

    const report = await api.call('get', `/admin/users/${customer}`, { token: admin.accessToken });
    expect(report.body.subscription.periodEnd).toBe(expected);
    expect((await audited(admin, 'grant.days', customer)).details).toMatchObject({ days: 7 });
  });

  it('answers 404 for an unknown customer and 400 for 0 or too many days', async () => {
    const admin = await newAdmin();
    const post = (id: string, days: number) =>
      api.call('post', `/admin/users/${id}/extend`, {
        token: admin.accessToken,
        body: { days, requestId: 'e-1' },
      });
    expect((await post(UNKNOWN_ID, 3)).status).toBe(404);
    const customer = await accountOnPlan('personal', clock());
    expect((await post(customer, 0)).status).toBe(400);
    expect((await post(customer, 1000)).status).toBe(400);
  });
});

describe('POST /admin/users/:id/suspend and /unsuspend', () => {
  it('suspends a customer, who sees it on their account, and gives the service back', async () => {
    const admin = await newAdmin();
    const customer = await api.customer();
    const suspended = await api.call('post', `/admin/users/${customer.accountId}/suspend`, {
      token: admin.accessToken,
      body: { reason: 'chargeback' },
    });
    expect(suspended.status).toBe(200);
    expect(suspended.body).toEqual({
      accountId: customer.accountId,
      status: 'suspended',
      changed: true,
    });
    expect((await api.call('get', '/me', { token: customer.accessToken })).body.status).toBe(
      'suspended',
    );
    expect((await audited(admin, 'account.suspended', customer.accountId)).details).toMatchObject({
      reason: 'chargeback',
    });

    const again = await api.call('post', `/admin/users/${customer.accountId}/suspend`, {
      token: admin.accessToken,
    });
    expect(again.body.changed).toBe(false);

    const back = await api.call('post', `/admin/users/${customer.accountId}/unsuspend`, {
      token: admin.accessToken,
    });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: 'active', changed: true });
    expect((await api.call('get', '/me', { token: customer.accessToken })).body.status).toBe(
      'active',
    );
    await audited(admin, 'account.unsuspended', customer.accountId);
  });

  it('answers 404 for an unknown account, 409 for suspending oneself, 400 for a malformed id', async () => {
    const admin = await newAdmin();
    const suspend = (id: string) =>
      api.call('post', `/admin/users/${id}/suspend`, { token: admin.accessToken });
    expect((await suspend(UNKNOWN_ID)).status).toBe(404);
    expect((await suspend(admin.accountId)).status).toBe(409);
    expect((await suspend('123')).status).toBe(400);
    const unsuspend = await api.call('post', `/admin/users/${UNKNOWN_ID}/unsuspend`, {
      token: admin.accessToken,
    });
    expect(unsuspend.status).toBe(404);
    const tooLong = await api.call('post', `/admin/users/${admin.accountId}/unsuspend`, {
      token: admin.accessToken,
      body: { reason: 'x'.repeat(501) },
    });
    expect(tooLong.status).toBe(400);
  });
});

describe('payments and refunds', () => {
  it('lists the latest payments and shows one with what is left to refund', async () => {
    const admin = await newAdmin();
    const paid = await buyer('starter');
    const list = await api.call('get', '/admin/payments?filter=recent&limit=50', {
      token: admin.accessToken,
    });
    expect(list.status).toBe(200);
    expect(list.body.payments).toContainEqual(
      expect.objectContaining({
        reference: paid.reference,
        accountId: paid.accountId,
        email: paid.email,
        status: 'paid',
        amountMinor: paid.payment.amountMinor,
      }),
    );
    await audited(admin, 'payments.viewed', 'recent');

    const one = await api.call('get', `/admin/payments/${paid.reference}`, {
      token: admin.accessToken,
    });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      reference: paid.reference,
      refundableMinor: paid.payment.amountMinor,
    });
    await audited(admin, 'payment.viewed', paid.reference);
  });

  it('answers 400 for an unknown filter and 404 for an unknown reference', async () => {
    const admin = await newAdmin();
    expect(
      (await api.call('get', '/admin/payments?filter=stolen', { token: admin.accessToken })).status,
    ).toBe(400);
    const missing = await api.call('get', '/admin/payments/ref_nope', { token: admin.accessToken });
    expect(missing.status).toBe(404);
  });

  it('refunds into the wallet once per request id, and the customer has the money', async () => {
    const admin = await newAdmin();
    const paid = await buyer('personal');
    const refund = () =>
      api.call('post', `/admin/payments/${paid.reference}/refund`, {
        token: admin.accessToken,
        body: { amountMinor: 100_000, method: 'wallet', reason: 'outage', requestId: 'rf-1' },
      });
    const first = await refund();
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({
      state: 'processed',
      method: 'wallet',
      amountMinor: 100_000,
    });
    const repeat = await refund();
    expect(repeat.status).toBe(202);
    expect(repeat.body.refundId).toBe(first.body.refundId);
    expect(await Refund.countDocuments({ paymentReference: paid.reference })).toBe(1);

    const report = await api.call('get', `/admin/users/${paid.accountId}`, {
      token: admin.accessToken,
    });
    expect(report.body.wallet.balanceMinor).toBe(100_000);
    const left = await api.call('get', `/admin/payments/${paid.reference}`, {
      token: admin.accessToken,
    });
    expect(left.body.refundableMinor).toBe(paid.payment.amountMinor - 100_000);
    expect((await audited(admin, 'refund.requested', paid.reference)).details).toMatchObject({
      amountMinor: 100_000,
      method: 'wallet',
      reason: 'outage',
    });

    const reused = await api.call('post', `/admin/payments/${paid.reference}/refund`, {
      token: admin.accessToken,
      body: { amountMinor: 200_000, method: 'wallet', requestId: 'rf-1' },
    });
    expect(reused.status).toBe(409);
    expect(reused.body.error.details.reason).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('refuses more than is left (409, on record), an unknown payment (404) and a bad method (400)', async () => {
    const admin = await newAdmin();
    const paid = await buyer('starter');
    const refund = (reference: string, body: Record<string, unknown>) =>
      api.call('post', `/admin/payments/${reference}/refund`, { token: admin.accessToken, body });
    const part = await refund(paid.reference, {
      amountMinor: 100_000,
      method: 'wallet',
      requestId: 'part-1',
    });
    expect(part.status).toBe(202);
    const tooMuch = await refund(paid.reference, {
      amountMinor: paid.payment.amountMinor - 50_000,
      method: 'wallet',
      requestId: 'big-1',
    });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error.details.reason).toBe('EXCEEDS_REFUNDABLE');
    expect((await audited(admin, 'refund.requested.failed', paid.reference)).details).toMatchObject(
      {
        error: 'CONFLICT',
        requestId: 'big-1',
      },
    );
    expect((await refund('ref_nope', { method: 'wallet', requestId: 'n-1' })).status).toBe(404);
    expect((await refund(paid.reference, { method: 'cash', requestId: 'n-2' })).status).toBe(400);
    // The refused one stays on record as refused; only the first moved money.
    expect(
      await Refund.countDocuments({ paymentReference: paid.reference, status: { $ne: 'refused' } }),
    ).toBe(1);
    const report = await api.call('get', `/admin/users/${paid.accountId}`, {
      token: admin.accessToken,
    });
    expect(report.body.wallet.balanceMinor).toBe(100_000);
  });
});

describe('locations and upstreams', () => {
  it('adds a location and an upstream (password never shown nor recorded), lists, marks healthy, removes', async () => {
    const admin = await newAdmin();
    const code = unique('loc');
    const added = await api.call('post', '/admin/locations', {
      token: admin.accessToken,
      body: { code, countryCode: 'NG', city: 'Lagos', label: 'Lagos 2' },
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ code, countryCode: 'ng', label: 'Lagos 2', upstreams: [] });
    await audited(admin, 'location.added', code);

    const upstream = await api.call('post', `/admin/locations/${code}/upstreams`, {
      token: admin.accessToken,
      body: {
        exitId: 'up1',
        kind: 'socks5',
        host: '10.0.0.9',
        port: 1080,
        username: 'u',
        password: 'hunter2-secret',
      },
    });
    expect(upstream.status).toBe(201);
    expect(upstream.body.upstreams).toEqual([
      expect.objectContaining({
        exitId: 'up1',
        kind: 'socks5',
        host: '10.0.0.9',
        hasPassword: true,
      }),
    ]);
    expect(JSON.stringify(upstream.body)).not.toContain('hunter2-secret');
    const entry = await audited(admin, 'upstream.added', `${code}/up1`);
    expect(JSON.stringify(entry.raw)).not.toContain('hunter2-secret');

    await markExitHealth(
      code,
      'up1',
      { healthy: false, error: 'ECONNREFUSED' },
      { clock: clock() },
    );
    const listed = await api.call('get', '/admin/locations', { token: admin.accessToken });
    expect(listed.status).toBe(200);
    const sick = listed.body.locations.find((l: any) => l.code === code);
    expect(sick.upstreams[0]).toMatchObject({
      healthy: false,
      failures: 1,
      lastError: 'ECONNREFUSED',
    });
    expect(JSON.stringify(listed.body)).not.toContain('hunter2-secret');
    await audited(admin, 'locations.viewed');

    const healthy = await api.call('post', `/admin/locations/${code}/upstreams/up1/healthy`, {
      token: admin.accessToken,
    });
    expect(healthy.status).toBe(204);
    const after = await api.call('get', '/admin/locations', { token: admin.accessToken });
    expect(after.body.locations.find((l: any) => l.code === code).upstreams[0]).toMatchObject({
      healthy: true,
      failures: 0,
      retryAfter: null,
    });
    await audited(admin, 'upstream.marked_healthy', `${code}/up1`);

    const removed = await api.call('delete', `/admin/locations/${code}/upstreams/up1`, {
      token: admin.accessToken,
    });
    expect(removed.status).toBe(200);
    expect(removed.body.upstreams).toEqual([]);
    await audited(admin, 'upstream.removed', `${code}/up1`);

    const gone = await api.call('delete', `/admin/locations/${code}`, { token: admin.accessToken });
    expect(gone.status).toBe(204);
    const catalogue = await api.call('get', '/locations');
    expect(catalogue.body.locations.map((l: any) => l.code)).not.toContain(code);
    await audited(admin, 'location.removed', code);
  });

  it('answers 409 for a location that exists, 400 for a bad country, 404 for unknown locations and exits', async () => {
    const admin = await newAdmin();
    const code = unique('dup');
    const add = (body: unknown) =>
      api.call('post', '/admin/locations', { token: admin.accessToken, body });
    expect((await add({ code, countryCode: 'gh', label: 'Accra' })).status).toBe(201);
    expect((await add({ code, countryCode: 'gh', label: 'Accra' })).status).toBe(409);
    expect((await add({ code: unique('c'), countryCode: 'ghana', label: 'Accra' })).status).toBe(
      400,
    );

    const token = admin.accessToken;
    expect((await api.call('delete', '/admin/locations/nowhere1', { token })).status).toBe(404);
    expect(
      (
        await api.call('post', '/admin/locations/nowhere1/upstreams', {
          token,
          body: { exitId: 'd1', kind: 'direct' },
        })
      ).status,
    ).toBe(404);
    const noPort = await api.call('post', `/admin/locations/${code}/upstreams`, {
      token,
      body: { exitId: 'u1', kind: 'http', host: 'proxy.example.com' },
    });
    expect(noPort.status).toBe(400);
    expect(
      (await api.call('delete', `/admin/locations/${code}/upstreams/ghost`, { token })).status,
    ).toBe(404);
    expect(
      (await api.call('post', `/admin/locations/${code}/upstreams/ghost/healthy`, { token }))
        .status,
    ).toBe(404);
    expect((await api.call('delete', '/admin/locations/-bad-', { token })).status).toBe(400);
  });
});

describe('plans', () => {
  it('lists every plan with its version and changes a price customers then see', async () => {
    const admin = await newAdmin();
    const list = await api.call('get', '/admin/plans', { token: admin.accessToken });
    expect(list.status).toBe(200);
    const personal = list.body.plans.find((p: any) => p.code === 'personal');
    expect(personal).toMatchObject({ kind: 'recurring', isOnSale: true });
    await audited(admin, 'plans.viewed');

    const edited = await api.call('patch', '/admin/plans/personal', {
      token: admin.accessToken,
      body: {
        field: 'price',
        amountMinor: 777_700,
        currency: 'NGN',
        expectedVersion: personal.version,
      },
    });
    expect(edited.status).toBe(200);
    expect(edited.body.version).toBe(personal.version + 1);
    expect(edited.body.prices).toContainEqual({ currency: 'NGN', amountMinor: 777_700 });
    const catalogue = await api.call('get', '/plans?currency=NGN');
    expect(catalogue.body.plans.find((p: any) => p.code === 'personal').price.amountMinor).toBe(
      777_700,
    );
    expect((await audited(admin, 'plan.edited', 'personal')).details).toMatchObject({
      field: 'price',
      to: 777_700,
    });

    const stale = await api.call('patch', '/admin/plans/personal', {
      token: admin.accessToken,
      body: { field: 'quota', bytes: 50 * GB, expectedVersion: personal.version },
    });
    expect(stale.status).toBe(409);
  });

  it('answers 404 for an unknown plan and 400 for an unknown field', async () => {
    const admin = await newAdmin();
    const unknown = await api.call('patch', '/admin/plans/gold', {
      token: admin.accessToken,
      body: { field: 'quota', bytes: GB },
    });
    expect(unknown.status).toBe(404);
    const bad = await api.call('patch', '/admin/plans/starter', {
      token: admin.accessToken,
      body: { field: 'colour', value: 'blue' },
    });
    expect(bad.status).toBe(400);
  });
});

describe('settings', () => {
  it('reads the settings and changes one, keeping the others', async () => {
    const admin = await newAdmin();
    const before = await api.call('get', '/admin/settings', { token: admin.accessToken });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ currency: 'NGN', vat: { enabled: false } });
    await audited(admin, 'settings.viewed');

    const changed = await api.call('patch', '/admin/settings', {
      token: admin.accessToken,
      body: { graceDays: 5, vat: { rateBps: 800 } },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({
      graceDays: 5,
      vat: { enabled: before.body.vat.enabled, rateBps: 800 },
      version: before.body.version + 1,
      trialDepositMinor: before.body.trialDepositMinor,
    });
    expect((await api.payments.settings.get()).graceDays).toBe(5);
    expect((await audited(admin, 'settings.changed')).details).toMatchObject({
      changes: { graceDays: 5, vat: { rateBps: 800 } },
    });
  });

  it('answers 400 for a value out of range, an unknown setting and an empty change', async () => {
    const admin = await newAdmin();
    const patch = (body: unknown) =>
      api.call('patch', '/admin/settings', { token: admin.accessToken, body });
    expect((await patch({ graceDays: -1 })).status).toBe(400);
    expect((await patch({ dunningOffsetsHours: [72, 24] })).status).toBe(400);
    expect((await patch({ colour: 'blue' })).status).toBe(400);
    expect((await patch({})).status).toBe(400);
  });
});

describe('broadcasts', () => {
  it('counts a segment, sends once per request id, and each customer gets one message', async () => {
    const admin = await newAdmin();
    const before = await api.call('post', '/admin/broadcast/count', {
      token: admin.accessToken,
      body: { segment: 'plan:team' },
    });
    expect(before.status).toBe(200);
    const owner = await accountOnPlan('team', clock());
    const count = await api.call('post', '/admin/broadcast/count', {
      token: admin.accessToken,
      body: { segment: 'plan:team' },
    });
    expect(count.body).toEqual({ segment: 'plan:team', recipients: before.body.recipients + 1 });
    await audited(admin, 'broadcast.counted', 'plan:team');

    const send = (text: string) =>
      api.call('post', '/admin/broadcast', {
        token: admin.accessToken,
        body: { segment: 'plan:team', text, requestId: 'bc-1' },
      });
    const sent = await send('Maintenance tonight at 22:00 UTC.');
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ broadcastId: 'bc-1', recipients: count.body.recipients });
    expect(sent.body.queued).toBe(count.body.recipients);
    const repeat = await send('Maintenance tonight at 22:00 UTC.');
    expect(repeat.status).toBe(202);
    expect(repeat.body.queued).toBe(0);
    expect(
      await Notification.countDocuments({ accountId: owner, event: 'broadcast', period: 'bc-1' }),
    ).toBe(1);
    expect((await audited(admin, 'broadcast.sent', 'bc-1')).details).toMatchObject({
      segment: 'plan:team',
      text: 'Maintenance tonight at 22:00 UTC.',
    });

    const reused = await send('Something else entirely.');
    expect(reused.status).toBe(409);
    const next = await api.call('post', '/admin/broadcast', {
      token: admin.accessToken,
      body: { segment: 'plan:team', text: 'And another.', requestId: 'bc-2' },
    });
    expect(next.status).toBe(429);
    expect(Number(next.headers.get('retry-after'))).toBeGreaterThan(0);
    await audited(admin, 'broadcast.rate_limited', 'bc-2');
  });

  it('answers 400 for a bad segment or empty text, 404 for an unknown plan', async () => {
    const admin = await newAdmin();
    const count = (segment: string) =>
      api.call('post', '/admin/broadcast/count', { token: admin.accessToken, body: { segment } });
    expect((await count('everyone')).status).toBe(400);
    expect((await count('plan:gold')).status).toBe(404);
    const empty = await api.call('post', '/admin/broadcast', {
      token: admin.accessToken,
      body: { segment: 'all', text: '   ', requestId: 'e-1' },
    });
    expect(empty.status).toBe(400);
    const noKey = await api.call('post', '/admin/broadcast', {
      token: admin.accessToken,
      body: { segment: 'all', text: 'hello' },
    });
    expect(noKey.status).toBe(400);
  });
});

describe('admins', () => {
  it('makes an account an admin, who can then use the admin API, and takes it away again', async () => {
    const admin = await newAdmin();
    const colleague = await api.customer();
    expect((await api.call('get', '/admin/stats', { token: colleague.accessToken })).status).toBe(
      403,
    );

    const added = await api.call('post', '/admin/admins', {
      token: admin.accessToken,
      body: { email: colleague.email },
    });
    expect(added.status).toBe(200);
    expect(added.body).toEqual({ accountId: colleague.accountId, changed: true });
    await audited(admin, 'admin.added', colleague.accountId);
    expect((await api.call('get', '/admin/stats', { token: colleague.accessToken })).status).toBe(
      200,
    );

    const list = await api.call('get', '/admin/admins', { token: admin.accessToken });
    expect(list.status).toBe(200);
    expect(list.body.admins.map((a: any) => a.accountId)).toEqual(
      expect.arrayContaining([admin.accountId, colleague.accountId]),
    );
    await audited(admin, 'admins.viewed');

    const removed = await api.call('delete', `/admin/admins/${colleague.accountId}`, {
      token: admin.accessToken,
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ accountId: colleague.accountId, changed: true });
    await audited(admin, 'admin.removed', colleague.accountId);
    expect((await api.call('get', '/admin/stats', { token: colleague.accessToken })).status).toBe(
      403,
    );
  });

  it('answers 404 for an unknown account, 409 for removing oneself, 400 for a body naming nobody', async () => {
    const admin = await newAdmin();
    const add = (body: unknown) =>
      api.call('post', '/admin/admins', { token: admin.accessToken, body });
    expect((await add({ email: 'ghost@example.com' })).status).toBe(404);
    expect((await add({ accountId: UNKNOWN_ID })).status).toBe(404);
    expect((await add({})).status).toBe(400);
    expect((await add({ accountId: admin.accountId, email: 'x@example.com' })).status).toBe(400);
    const self = await api.call('delete', `/admin/admins/${admin.accountId}`, {
      token: admin.accessToken,
    });
    expect(self.status).toBe(409);
    expect(
      (await api.call('delete', `/admin/admins/${UNKNOWN_ID}`, { token: admin.accessToken }))
        .status,
    ).toBe(404);
  });
});

describe('GET /admin/audit', () => {
  it("shows an admin's actions, filtered by actor, action and target, newest first", async () => {
    const admin = await newAdmin();
    const customer = await api.customer();
    await api.call('post', `/admin/users/${customer.accountId}/suspend`, {
      token: admin.accessToken,
    });
    await api.call('post', `/admin/users/${customer.accountId}/unsuspend`, {
      token: admin.accessToken,
    });

    const res = await api.call(
      'get',
      `/admin/audit?actor=${admin.accountId}&targetKind=account&targetId=${customer.accountId}`,
      { token: admin.accessToken },
    );
    expect(res.status).toBe(200);
    expect(res.body.entries.map((e: any) => e.action)).toEqual([
      'account.unsuspended',
      'account.suspended',
    ]);
    expect(res.body.entries[0]).toMatchObject({ actor: admin.accountId, channel: 'api' });

    const byAction = await api.call(
      'get',
      `/admin/audit?action=account.suspended&actor=${admin.accountId}`,
      {
        token: admin.accessToken,
      },
    );
    expect(byAction.body.entries).toHaveLength(1);
    await audited(admin, 'audit.viewed');
  });

  it('answers 400 for a malformed actor or limit', async () => {
    const admin = await newAdmin();
    expect(
      (await api.call('get', '/admin/audit?actor=bob', { token: admin.accessToken })).status,
    ).toBe(400);
    expect(
      (await api.call('get', '/admin/audit?limit=5000', { token: admin.accessToken })).status,
    ).toBe(400);
  });
});
