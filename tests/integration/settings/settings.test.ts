import { describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import {
  DEFAULT_SETTINGS,
  createSettingsStore,
  type SettingsChanges,
} from '../../../core/settings.js';
import { SettingsRecord } from '../../../models/settings.js';
import { useTestDatabase } from '../../support/database.js';
import { pick, useExtraConnections } from '../wallet/connections.js';

const database = useTestDatabase();
const extra = useExtraConnections(database);

// The tests share one settings document, so they run in order and each resets it.
async function reset(): Promise<void> {
  await SettingsRecord.deleteMany({});
}

describe('business settings', () => {
  it('seeds the defaults once when two processes read them at the same moment', async () => {
    await reset();
    const clock = new TestClock();
    const connections = await extra.open(2);
    const stores = connections.map((connection) => createSettingsStore({ clock, connection }));
    const read = await Promise.all(
      stores.flatMap((store) => [store.get(), store.get(), store.get()]),
    );

    expect(await SettingsRecord.countDocuments({})).toBe(1);
    for (const settings of read) {
      expect(settings).toMatchObject({ ...DEFAULT_SETTINGS, version: 1 });
    }
    expect(read[0]).toMatchObject({
      currency: 'NGN',
      trialDepositMinor: 200_000,
      vat: { enabled: false, rateBps: 750 },
      dunningOffsetsHours: [24, 72],
      usageThresholdsPct: [50, 80, 95, 100],
    });
  });

  it('shows another process’s change once the cache is older than refreshMs', async () => {
    await reset();
    const clock = new TestClock();
    const [a, b] = await extra.open(2);
    const reader = createSettingsStore({ clock, refreshMs: 5_000, connection: a });
    const admin = createSettingsStore({ clock, refreshMs: 5_000, connection: b });
    expect((await reader.get()).graceDays).toBe(3);

    const updated = await admin.update({ graceDays: 5 }, { actor: 'telegram:42' });
    expect(updated).toMatchObject({ graceDays: 5, version: 2, updatedBy: 'telegram:42' });
    expect((await admin.get()).graceDays).toBe(5);

    clock.advance(4_999);
    expect((await reader.get()).graceDays).toBe(3);
    clock.advance(1);
    expect((await reader.get()).graceDays).toBe(5);
  });

  it('changes part of the VAT or business details and keeps the rest', async () => {
    await reset();
    const store = createSettingsStore({ clock: new TestClock() });
    const updated = await store.update(
      { vat: { enabled: true }, business: { taxId: 'TIN-1234', email: 'billing@atlantic.ng' } },
      { actor: 'admin:1' },
    );
    expect(updated.vat).toEqual({ enabled: true, rateBps: 750 });
    expect(updated.business).toEqual({
      name: 'Atlantic',
      address: '',
      email: 'billing@atlantic.ng',
      taxId: 'TIN-1234',
    });
    const stored = await SettingsRecord.findById('business');
    expect(stored?.history).toHaveLength(1);
    expect(stored?.history[0]).toMatchObject({ actor: 'admin:1', version: 2 });
  });

  it.each<[string, SettingsChanges | Record<string, unknown>]>([
    ['vat.rateBps', { vat: { rateBps: -1 } }],
    ['trialDepositMinor', { trialDepositMinor: 1.5 }],
    ['currency', { currency: 'EUR' }],
    ['trialDepositRefund', { trialDepositRefund: 'cash' }],
    ['dunningOffsetsHours', { dunningOffsetsHours: [72, 24] }],
    ['usageThresholdsPct.0', { usageThresholdsPct: [0, 50] }],
    ['business.email', { business: { email: 'not-an-email' } }],
    ['vatRate', { vatRate: 7.5 }],
    ['version', { version: 99 }],
  ])('refuses an invalid %s and names it', async (field, changes) => {
    await reset();
    const store = createSettingsStore({ clock: new TestClock() });
    const before = await store.get();
    await expect(
      store.update(changes as SettingsChanges, { actor: 'admin:1' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field } });
    expect(await SettingsRecord.findById('business').lean()).toMatchObject({
      version: before.version,
    });
  });

  it('refuses a change without an actor', async () => {
    await reset();
    const store = createSettingsStore({ clock: new TestClock() });
    await expect(store.update({ graceDays: 1 }, { actor: ' ' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'actor' },
    });
  });

  it('loses none of many changes made at once by admins in different processes', async () => {
    await reset();
    const clock = new TestClock();
    const connections = await extra.open(3);
    const stores = connections.map((connection) => createSettingsStore({ clock, connection }));
    const changes: SettingsChanges[] = [
      { graceDays: 7 },
      { renewalReminderDays: 5 },
      { webhookRetentionDays: 30 },
      { walletLowThresholdMinor: 123_400 },
      { pendingPaymentReverifyAfterMinutes: 15 },
      { trialDepositMinor: 300_000 },
      { vat: { enabled: true } },
      { vat: { rateBps: 800 } },
      { business: { name: 'Atlantic Proxies Ltd' } },
      { business: { address: '1 Marina, Lagos' } },
    ];
    await Promise.all(
      changes.map((change, i) => pick(stores, i).update(change, { actor: `admin:${i}` })),
    );

    const final = await createSettingsStore({ clock }).get();
    expect(final).toMatchObject({
      graceDays: 7,
      renewalReminderDays: 5,
      webhookRetentionDays: 30,
      walletLowThresholdMinor: 123_400,
      pendingPaymentReverifyAfterMinutes: 15,
      trialDepositMinor: 300_000,
      vat: { enabled: true, rateBps: 800 },
      business: { name: 'Atlantic Proxies Ltd', address: '1 Marina, Lagos' },
      version: 11,
    });
    const stored = await SettingsRecord.findById('business');
    expect(stored?.history.map((h) => h.version)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });
});
