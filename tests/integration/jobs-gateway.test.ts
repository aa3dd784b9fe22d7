/**
 * The jobs role gives a dead gateway's leased bytes back to the customer: the
 * scheduled job finds a lease nobody renewed for two minutes and returns it.
 */
import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { getQuotaUsage, leaseBytes, openQuotaPeriod } from '../../core/quota.js';
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
});
