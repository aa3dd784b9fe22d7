/**
 * The gates of every /api/v1/admin route over real HTTP: without a token
 * 401, a customer 403 with the refused attempt in the audit trail (channel
 * 'api', the customer's account id, the operation), and nothing done.
 */
import { describe, expect, it } from '@jest/globals';
import { adminRoutes } from '../../../api/v1/routes/admin.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { AuditEntry } from '../../../models/audit-entry.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { accountOnPlan } from '../../support/accounts.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
/** A Telegram id named in configuration (ADMIN_TELEGRAM_IDS). */
const CONFIGURED_TELEGRAM_ID = 700_100_200;
const api = useApiHarness({
  admins: { telegramIds: [CONFIGURED_TELEGRAM_ID], whatsappNumbers: [] },
});

/** Path parameters that pass validation, so only the gates can stop the request. */
const sample: Record<string, string> = {
  id: 'aaaaaaaaaaaaaaaaaaaaaaaa',
  accountId: 'aaaaaaaaaaaaaaaaaaaaaaaa',
  reference: 'ref_sample',
  code: 'ng',
  exitId: 'up1',
};
const pathOf = (path: string) =>
  path.replace(/:([A-Za-z]+)/g, (_m, name: string) => sample[name] ?? 'x');
const cases = adminRoutes.map(
  (route) => [route.operationId, route.method, pathOf(route.path)] as const,
);

describe('every admin route', () => {
  it('is declared admin-only and mounted under /admin', () => {
    expect(adminRoutes.length).toBeGreaterThanOrEqual(25);
    for (const route of adminRoutes) {
      expect(route.access).toBe('admin');
      expect(route.path.startsWith('/admin/')).toBe(true);
    }
  });

  it.each(cases)('%s refuses a request without a token (401)', async (_id, method, path) => {
    const res = await api.call(method, path, { body: method === 'get' ? undefined : {} });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('TOKEN_MISSING');
  });

  it.each(cases)(
    '%s refuses a customer (403), with the attempt audited',
    async (operationId, method, path) => {
      const customer = await api.customer();
      const res = await api.call(method, path, {
        token: customer.accessToken,
        body: method === 'get' ? undefined : {},
      });
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({
        code: 'FORBIDDEN',
        message: 'Only an admin can do that.',
        details: { reason: 'NOT_ADMIN' },
      });
      const refused = await AuditEntry.find({ actor: customer.accountId }).lean();
      expect(refused).toEqual([
        expect.objectContaining({
          action: 'admin.refused',
          channel: 'api',
          actor: customer.accountId,
          target: { kind: 'operation', id: operationId },
        }),
      ]);
    },
  );
});

describe('a refused customer', () => {
  it('cannot grant data or make themselves an admin: nothing changes', async () => {
    const customer = await api.customer();
    const onPlan = await accountOnPlan('starter', api.payments.clock);
    const before = await getQuotaUsage(onPlan, api.payments.clock.now());
    const grant = await api.call('post', `/admin/users/${onPlan}/grant-data`, {
      token: customer.accessToken,
      body: { bytes: 1_000_000_000, requestId: 'sneaky-1' },
    });
    expect(grant.status).toBe(403);
    expect(await getQuotaUsage(onPlan, api.payments.clock.now())).toEqual(before);

    const promote = await api.call('post', '/admin/admins', {
      token: customer.accessToken,
      body: { accountId: customer.accountId },
    });
    expect(promote.status).toBe(403);
    const account = await Account.findById(customer.accountId).lean().orFail();
    expect(account.roles).not.toContain('admin');
  });

  it('an admin who lost the role is refused from the next request on', async () => {
    const admin = await api.customer({ roles: ['customer', 'admin'] });
    expect((await api.call('get', '/admin/plans', { token: admin.accessToken })).status).toBe(200);
    await Account.updateOne({ _id: admin.accountId }, { $pull: { roles: 'admin' } });
    expect((await api.call('get', '/admin/plans', { token: admin.accessToken })).status).toBe(403);
  });
});

describe('an admin named in configuration', () => {
  it('uses the admin API once their chat is linked, is given the role (audited), and cannot be removed from here', async () => {
    const configured = await api.customer();
    await ChannelIdentity.create({
      accountId: configured.accountId,
      channel: 'telegram',
      externalId: String(CONFIGURED_TELEGRAM_ID),
    });
    const stats = await api.call('get', '/admin/stats', { token: configured.accessToken });
    expect(stats.status).toBe(200);
    expect(
      await AuditEntry.findOne({
        actor: configured.accountId,
        action: 'admin.bootstrapped',
      }).lean(),
    ).toMatchObject({ channel: 'api' });
    expect((await Account.findById(configured.accountId).lean().orFail()).roles).toContain('admin');

    const other = await api.customer({ roles: ['customer', 'admin'] });
    const removal = await api.call('delete', `/admin/admins/${configured.accountId}`, {
      token: other.accessToken,
    });
    expect(removal.status).toBe(409);
    expect(removal.body.error.details.reason).toBe('CONFIGURED');
    const list = await api.call('get', '/admin/admins', { token: other.accessToken });
    expect(list.body.admins).toContainEqual(
      expect.objectContaining({ accountId: configured.accountId, configured: true }),
    );
  });
});
