/**
 * Suspension through the real gateway access layer: an admin suspends a
 * customer whose tunnel is open on a GatewayAccessController, the tunnel is
 * cut with ACCOUNT_SUSPENDED and new ones are refused; unsuspending lets the
 * customer in again. Both are audited with the admin, the channel and the
 * reason; a customer cannot suspend anyone, and an admin not themselves.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { findUser, suspendAccount, unsuspendAccount } from '../../../core/admin/index.js';
import { listAudit } from '../../../core/audit.js';
import { TestClock } from '../../../lib/clock.js';
import { Account } from '../../../models/account.js';
import { GatewayPresence } from '../../../models/gateway-presence.js';
import { useTestDatabase } from '../../support/database.js';
import {
  cutCode,
  grantOf,
  newCustomer,
  request,
  seedCatalogue,
  useControllers,
  waitUntil,
} from '../proxy/access/harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
// Controllers first: they stop (flushing usage) before the database is dropped.
const controllers = useControllers(clock);
useTestDatabase();
let admin = '';

beforeAll(async () => {
  await seedCatalogue(clock);
  admin = String((await Account.create({ roles: ['customer', 'admin'] }))._id);
});

const ctx = (accountId: string, channel: 'telegram' | 'whatsapp' = 'telegram') => ({
  actor: { accountId, channel },
  clock,
});

describe('suspending a customer', () => {
  it('cuts their live tunnel on the gateway within moments, refuses new ones, and unsuspending lets them back', async () => {
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const grant = grantOf(await controller.authorize(request(customer)));
    const cut = cutCode(grant);
    expect(grant.allow(1_000)).toBe(1_000);
    // The gateway tells the others (and /user) about the open tunnel.
    await waitUntil(
      async () =>
        (await GatewayPresence.countDocuments({ 'openTunnels.accountId': customer.accountId })) > 0,
    );
    expect((await findUser(ctx(admin), customer.accountId)).openTunnels).toBe(1);

    const outcome = await suspendAccount(ctx(admin, 'whatsapp'), {
      user: customer.accountId,
      reason: 'chargeback fraud',
    });
    expect(outcome).toEqual({ accountId: customer.accountId, status: 'suspended', changed: true });

    await waitUntil(() => cut.code !== null);
    expect(cut.code).toBe('ACCOUNT_SUSPENDED');
    expect(grant.allow(1_000)).toBe(0);
    expect(await controller.authorize(request(customer))).toMatchObject({
      ok: false,
      code: 'ACCOUNT_SUSPENDED',
    });
    grant.close();

    // A second suspend changes nothing.
    expect((await suspendAccount(ctx(admin), { user: customer.accountId })).changed).toBe(false);

    expect((await unsuspendAccount(ctx(admin), { user: customer.accountId })).changed).toBe(true);
    await waitUntil(async () => {
      const decision = await controller.authorize(request(customer));
      if (decision.ok) decision.grant.close();
      return decision.ok;
    });

    const entries = await listAudit({ target: { kind: 'account', id: customer.accountId } });
    expect(entries.map((e) => [e.action, e.channel])).toEqual([
      ['account.unsuspended', 'telegram'],
      ['account.suspended', 'whatsapp'],
      ['user.viewed', 'telegram'],
    ]);
    expect(entries[1]).toMatchObject({ actor: admin, details: { reason: 'chargeback fraud' } });
  });

  it('is refused to a customer (audited) and an admin cannot suspend themselves', async () => {
    const customer = await newCustomer('starter', clock);
    const other = await newCustomer('starter', clock);
    await expect(
      suspendAccount(ctx(customer.accountId), { user: other.accountId }),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    expect((await Account.findById(other.accountId).lean())?.status).toBe('active');
    expect(await listAudit({ actor: customer.accountId })).toEqual([
      expect.objectContaining({
        action: 'admin.refused',
        details: expect.objectContaining({ attempted: 'account.suspend' }),
      }),
    ]);
    await expect(suspendAccount(ctx(admin), { user: admin })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });
});
