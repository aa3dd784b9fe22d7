/**
 * The jobs role gives a dead gateway's leased bytes back to the customer: the
 * scheduled job finds a lease nobody renewed for two minutes and returns it.
 * And it closes PAYG hours: unused per-GB data goes back to the wallet.
 */
import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { buyPaygData, paygHourKey } from '../../core/payg.js';
import { getQuotaUsage, leaseBytes, openQuotaPeriod, settleLease } from '../../core/quota.js';
import { credit, debit, getWallet } from '../../core/wallet.js';
import { PaygHour } from '../../models/payg-hour.js';
import { createJobsRole } from '../../jobs/index.js';
import { gatewayJobNames, registerGatewayJobs, STALE_LEASE_MS } from '../../jobs/gateway.js';
import { TestClock } from '../../lib/clock.js';
import { createLogger } from '../../lib/logger.js';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });
const MiB = 1_048_576;

describe('gateway jobs', () => {
  it('returns the bytes a dead gateway held to the customer quota', async () => {
    const clock = new TestClock('2026-03-02T10:00:00.000Z');
    const accountId = new Types.ObjectId().toHexString();
    await openQuotaPeriod(accountId, {
      periodStart: new Date('2026-03-01T00:00:00.000Z'),
      periodEnd: new Date('2026-04-01T00:00:00.000Z'),
      limitBytes: 10 * MiB,
    });
    await leaseBytes(accountId, 4 * MiB, clock.now(), { gatewayId: 'gw_gone' });
    expect((await getQuotaUsage(accountId, clock.now()))?.remainingBytes).toBe(6 * MiB);

    // The gateway died: nobody renews its lease for longer than the stale time.
    clock.advanceBy({ seconds: STALE_LEASE_MS / 1000 + 1 });

    const role = createJobsRole({
      db: database.db,
      logger,
      workerName: 'test-worker',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
      register: (agenda) => registerGatewayJobs(agenda, { clock, logger }),
    });
    // The job is scheduled every minute and first runs as the role starts.
    const ran = new Promise<void>((resolve) =>
      role.agenda.once(`complete:${gatewayJobNames.reclaimLeases}`, () => resolve()),
    );
    await role.start();
    try {
      await ran;
    } finally {
      await role.stop();
    }
    expect(await getQuotaUsage(accountId, clock.now())).toMatchObject({
      leasedBytes: 0,
      remainingBytes: 10 * MiB,
    });
  });

  it('closes a PAYG hour once it has ended: unused data back to the wallet, the statement kept', async () => {
    const clock = new TestClock('2026-03-09T10:20:00.000Z');
    const accountId = new Types.ObjectId().toHexString();
    await credit(
      accountId,
      { amountMinor: 20_000, currency: 'NGN', key: `topup:${accountId}`, description: 'top-up' },
      { clock },
    );
    const hour = new Date('2026-03-09T10:00:00.000Z');
    await debit(
      accountId,
      {
        amountMinor: 15_000,
        currency: 'NGN',
        key: paygHourKey(accountId, hour),
        description: 'hour',
      },
      { clock },
    );
    // ₦500 per GB: 100 MB for 5,000 kobo, of which 40 MB are used (2,000 kobo).
    const rate = { now: clock.now(), perGbRateMinor: 50_000, currency: 'NGN' as const };
    expect(await buyPaygData(accountId, rate, { clock })).toBe(100_000_000);
    await leaseBytes(accountId, 40_000_000, clock.now(), { gatewayId: 'gw_a' });
    await settleLease(
      accountId,
      hour,
      { leasedBytes: 40_000_000, usedBytes: 40_000_000 },
      { gatewayId: 'gw_a' },
    );
    expect((await getWallet(accountId)).balanceMinor).toBe(0);

    clock.set('2026-03-09T11:05:00.000Z');
    const role = createJobsRole({
      db: database.db,
      logger,
      workerName: 'test-worker-payg',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
      register: (agenda) => registerGatewayJobs(agenda, { clock, logger }),
    });
    const ran = new Promise<void>((resolve) =>
      role.agenda.once(`complete:${gatewayJobNames.closePaygHours}`, () => resolve()),
    );
    await role.start();
    try {
      // Scheduled every 5 minutes; the earlier test's role already ran it once.
      await role.agenda.now(gatewayJobNames.closePaygHours);
      await ran;
    } finally {
      await role.stop();
    }
    expect((await getWallet(accountId)).balanceMinor).toBe(3_000);
    expect(await PaygHour.findOne({ accountId }).lean()).toMatchObject({
      connectedMinor: 15_000,
      dataUsedBytes: 40_000_000,
      dataCostMinor: 2_000,
      dataReturnedMinor: 3_000,
      totalMinor: 17_000,
    });
  });
});
