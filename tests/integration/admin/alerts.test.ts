/**
 * Admin alerts raised by the business itself: a location whose every exit is
 * failing, and wallets whose balance does not match their ledger. Each is
 * told once per hour, however often it is seen.
 */
import { describe, expect, it } from '@jest/globals';
import { Types } from 'mongoose';
import { addExit, addLocation, markExitHealth } from '../../../core/locations.js';
import { credit, getWallet, reconcileAndAlert } from '../../../core/wallet.js';
import { TestClock } from '../../../lib/clock.js';
import { Notification } from '../../../models/notification.js';
import { Wallet } from '../../../models/wallet.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();
const clock = new TestClock('2026-11-26T10:00:00.000Z');

describe('exit pool down', () => {
  it('tells the admins when the last healthy exit of a location fails, once an hour', async () => {
    await addLocation({ countryCode: 'gh', city: 'Accra', label: 'Ghana (Accra)' });
    await addExit('gh', { exitId: 'up1', kind: 'socks5', host: '10.0.0.1', port: 1080 });
    await addExit('gh', { exitId: 'up2', kind: 'socks5', host: '10.0.0.2', port: 1080 });
    const alerts = () => Notification.find({ event: 'exit_pool_down' }).lean();

    await markExitHealth('gh', 'up1', { healthy: false, error: 'ECONNREFUSED' }, { clock });
    expect(await alerts()).toHaveLength(0);

    await markExitHealth('gh', 'up2', { healthy: false, error: 'ETIMEDOUT' }, { clock });
    await markExitHealth('gh', 'up2', { healthy: false, error: 'ETIMEDOUT' }, { clock });
    const [alert, ...more] = await alerts();
    expect(more).toHaveLength(0);
    expect(alert).toMatchObject({
      audience: 'admins',
      data: {
        location: 'gh',
        label: 'Ghana (Accra)',
        exits: ['up1', 'up2'],
        lastError: 'ETIMEDOUT',
      },
    });

    // Back up, then down again in a later hour: told again.
    await markExitHealth('gh', 'up1', { healthy: true }, { clock });
    clock.advanceBy({ hours: 1 });
    await markExitHealth('gh', 'up1', { healthy: false, error: 'ECONNRESET' }, { clock });
    expect(await alerts()).toHaveLength(2);
  });
});

describe('ledger drift', () => {
  it('fixes a wallet whose balance left its ledger and tells the admins once', async () => {
    const accountId = new Types.ObjectId().toHexString();
    await credit(
      accountId,
      { amountMinor: 50_000, currency: 'NGN', key: `topup:${accountId}`, description: 'Top-up' },
      { clock },
    );
    await Wallet.updateOne({ accountId }, { $inc: { balanceMinor: 1_234 } });

    const report = await reconcileAndAlert({ clock });
    expect(report.drifts).toEqual([
      expect.objectContaining({ accountId, driftMinor: 1_234, fixed: true }),
    ]);
    expect((await getWallet(accountId)).balanceMinor).toBe(50_000);
    const alerts = await Notification.find({ event: 'ledger_drift' }).lean();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.data).toMatchObject({ wallets: 1, totalDriftMinor: 1_234, fixed: 1 });

    // Fixed: the next pass finds nothing and says nothing.
    expect((await reconcileAndAlert({ clock })).drifts).toEqual([]);
    expect(await Notification.countDocuments({ event: 'ledger_drift' })).toBe(1);
  });
});
