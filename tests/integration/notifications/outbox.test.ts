import { describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import {
  DEFAULT_RETRY_POLICY,
  claimNext,
  getOutboxItem,
  getPreferences,
  markFailed,
  markSent,
  markSkipped,
  notify,
  notifyAdmins,
  retryDelayMs,
  setPreferences,
  type ClaimedDelivery,
} from '../../../core/notifications.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { Notification } from '../../../models/notification.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

let externalIds = 0;

/** An account reachable on the given chat channels, plus email when `email` is true. */
async function customer(
  channels: ('telegram' | 'whatsapp')[],
  { email = false } = {},
): Promise<string> {
  externalIds += 1;
  const account = await Account.create(email ? { email: `c${externalIds}@example.com` } : {});
  for (const channel of channels) {
    await ChannelIdentity.create({
      channel,
      externalId: `${externalIds}00${channel.length}`,
      accountId: account._id,
    });
  }
  return account._id.toHexString();
}

const LEASE_MS = 60_000;

/** Claims until nothing is due, so tests can start from an empty queue for a channel. */
async function drain(channel: 'telegram' | 'whatsapp' | 'email', clock: TestClock): Promise<void> {
  for (;;) {
    const claim = await claimNext(channel, { workerId: 'drain', clock, leaseMs: LEASE_MS });
    if (!claim) return;
    await markSent(claim.itemId, channel, { clock });
  }
}

describe('notify', () => {
  it('writes one item with a pending slot for each channel the customer can be reached on', async () => {
    const clock = new TestClock('2026-01-01T00:00:00Z');
    const accountId = await customer(['telegram'], { email: true });

    const { item, created } = await notify(
      { accountId, event: 'welcome', data: { name: 'Ada' } },
      { clock },
    );

    expect(created).toBe(true);
    expect(item).toMatchObject({ audience: 'customer', accountId, event: 'welcome', period: null });
    expect(item.data).toEqual({ name: 'Ada' });
    expect(item.deliveries.map((d) => [d.channel, d.status, d.attempts])).toEqual([
      ['telegram', 'pending', 0],
      ['email', 'pending', 0],
    ]);
    expect(item.deliveries[0]?.nextAttemptAt).toEqual(clock.now());
  });

  it('writes exactly one item when 20 processes raise the same event for the same period', async () => {
    const clock = new TestClock('2026-01-01T00:00:00Z');
    const accountId = await customer(['telegram', 'whatsapp']);

    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        notify({ accountId, event: 'usage_80', period: '2026-01', data: {} }, { clock }),
      ),
    );

    expect(new Set(results.map((r) => r.item.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await Notification.countDocuments({ accountId, event: 'usage_80' })).toBe(1);
  });

  it('writes a new item for a new period of the same event', async () => {
    const clock = new TestClock('2026-01-01T00:00:00Z');
    const accountId = await customer(['telegram']);

    const january = await notify({ accountId, event: 'usage_50', period: '2026-01' }, { clock });
    const february = await notify({ accountId, event: 'usage_50', period: '2026-02' }, { clock });

    expect(february.created).toBe(true);
    expect(february.item.id).not.toBe(january.item.id);
  });

  it('refuses an unknown account and leaves admin alerts to notifyAdmins', async () => {
    const clock = new TestClock();
    await expect(
      notify({ accountId: '0123456789abcdef01234567', event: 'welcome' }, { clock }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      notify({ accountId: await customer(['telegram']), event: 'payment_flagged' }, { clock }),
    ).rejects.toThrow(/notifyAdmins/);
  });
});

describe('preferences', () => {
  it('defaults to every channel on and nothing muted', async () => {
    const accountId = await customer([]);
    expect(await getPreferences(accountId)).toEqual({
      channels: { telegram: true, whatsapp: true, email: true },
      mutedEvents: [],
    });
  });

  it('skips a channel the customer turned off, and that channel never sends it', async () => {
    const clock = new TestClock('2026-02-01T00:00:00Z');
    await drain('email', clock);
    const accountId = await customer(['telegram'], { email: true });
    await setPreferences(accountId, { channels: { email: false } });

    const { item } = await notify({ accountId, event: 'wallet_low', period: 'w1' }, { clock });

    expect(item.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['telegram', 'pending'],
      ['email', 'skipped'],
    ]);
    expect(await claimNext('email', { workerId: 'mailer', clock, leaseMs: LEASE_MS })).toBeNull();
  });

  it('skips a muted event everywhere but still sends mandatory ones', async () => {
    const clock = new TestClock('2026-02-01T00:00:00Z');
    const accountId = await customer(['telegram', 'whatsapp']);
    await setPreferences(accountId, { mutedEvents: ['usage_80', 'usage_95'] });

    const muted = await notify({ accountId, event: 'usage_80', period: 'p1' }, { clock });
    const receipt = await notify(
      { accountId, event: 'payment_confirmed', period: 'ref-1' },
      { clock },
    );

    expect(muted.item.deliveries.every((d) => d.status === 'skipped')).toBe(true);
    expect(muted.item.deliveries[0]?.lastError).toMatch(/muted/);
    expect(receipt.item.deliveries.every((d) => d.status === 'pending')).toBe(true);
  });

  it('refuses to mute a mandatory event', async () => {
    const accountId = await customer([]);
    await expect(
      setPreferences(accountId, { mutedEvents: ['usage_50', 'payment_confirmed'] }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await getPreferences(accountId)).mutedEvents).toEqual([]);
  });

  it('sends a mandatory event to every channel when the customer turned all of them off', async () => {
    const clock = new TestClock('2026-02-01T00:00:00Z');
    const accountId = await customer(['telegram'], { email: true });
    await setPreferences(accountId, {
      channels: { telegram: false, whatsapp: false, email: false },
    });

    const renewal = await notify({ accountId, event: 'renewal_due', period: '2026-03' }, { clock });
    const usage = await notify({ accountId, event: 'usage_50', period: '2026-03' }, { clock });

    expect(renewal.item.deliveries.map((d) => d.status)).toEqual(['pending', 'pending']);
    expect(usage.item.deliveries.map((d) => d.status)).toEqual(['skipped', 'skipped']);
  });

  it('changes only the fields given', async () => {
    const accountId = await customer([]);
    await setPreferences(accountId, { channels: { whatsapp: false }, mutedEvents: ['usage_50'] });
    const after = await setPreferences(accountId, { channels: { email: false } });
    expect(after).toEqual({
      channels: { telegram: true, whatsapp: false, email: false },
      mutedEvents: ['usage_50'],
    });
  });
});

describe('claiming and delivery', () => {
  it('never gives the same slot to two workers claiming at once', async () => {
    const clock = new TestClock('2026-03-01T00:00:00Z');
    await drain('whatsapp', clock);
    const accountId = await customer(['whatsapp']);
    const ids = new Set<string>();
    for (let i = 0; i < 10; i += 1) {
      ids.add((await notify({ accountId, event: 'usage_50', period: `c${i}` }, { clock })).item.id);
    }

    const claims = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        claimNext('whatsapp', { workerId: `worker-${i % 2}`, clock, leaseMs: LEASE_MS }),
      ),
    );

    const won = claims.filter((c): c is ClaimedDelivery => c !== null);
    expect(won).toHaveLength(10);
    expect(new Set(won.map((c) => c.itemId))).toEqual(ids);
    const winnerOf = new Map(claims.map((c, i) => [c?.itemId, `worker-${i % 2}`]));
    const stored = await Notification.find({ _id: { $in: [...ids] } }).lean();
    for (const doc of stored) {
      expect(doc.deliveries?.whatsapp).toMatchObject({
        status: 'sending',
        attempts: 1,
        claimedBy: winnerOf.get(String(doc._id)),
      });
    }
  });

  it('claims only its own channel and hands the renderer what it needs', async () => {
    const clock = new TestClock('2026-03-02T00:00:00Z');
    await drain('telegram', clock);
    await drain('email', clock);
    const accountId = await customer(['telegram'], { email: true });
    await notify(
      { accountId, event: 'payment_confirmed', period: 'ref-9', data: { amountMinor: 500_000 } },
      { clock },
    );

    const telegram = await claimNext('telegram', { workerId: 'tg', clock, leaseMs: LEASE_MS });
    const email = await claimNext('email', { workerId: 'mail', clock, leaseMs: LEASE_MS });

    expect(telegram).toMatchObject({
      channel: 'telegram',
      accountId,
      event: 'payment_confirmed',
      period: 'ref-9',
      data: { amountMinor: 500_000 },
      attempts: 1,
      leaseUntil: new Date(clock.now().getTime() + LEASE_MS),
    });
    expect(email?.itemId).toBe(telegram?.itemId);
    expect(await markSent(telegram?.itemId ?? '', 'telegram', { clock })).toBe(true);
    const item = await getOutboxItem(telegram?.itemId ?? '');
    expect(item?.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['telegram', 'sent'],
      ['email', 'sending'],
    ]);
    expect(item?.deliveries[0]?.sentAt).toEqual(clock.now());
  });

  it('lets another worker take a slot whose lease expired, and only it settles the slot', async () => {
    const clock = new TestClock('2026-03-03T00:00:00Z');
    await drain('telegram', clock);
    const accountId = await customer(['telegram']);
    await notify({ accountId, event: 'trial_ending', period: 't1' }, { clock });

    const first = await claimNext('telegram', { workerId: 'a', clock, leaseMs: LEASE_MS });
    expect(first).not.toBeNull();
    clock.advance(LEASE_MS - 1);
    expect(await claimNext('telegram', { workerId: 'b', clock, leaseMs: LEASE_MS })).toBeNull();

    clock.advance(1);
    const second = await claimNext('telegram', { workerId: 'b', clock, leaseMs: LEASE_MS });
    expect(second?.itemId).toBe(first?.itemId);
    expect(second?.attempts).toBe(2);

    const itemId = second?.itemId ?? '';
    expect(await markSent(itemId, 'telegram', { clock, workerId: 'a' })).toBe(false);
    expect(
      await markFailed(itemId, 'telegram', new Error('late'), {
        clock,
        workerId: 'a',
        retryable: true,
      }),
    ).toBeNull();
    expect(await markSent(itemId, 'telegram', { clock, workerId: 'b' })).toBe(true);
    expect(await markSent(itemId, 'telegram', { clock, workerId: 'b' })).toBe(false);
  });

  it('retries after 30 s, 1, 2, 4 and 8 minutes, then gives up after the sixth attempt', async () => {
    const clock = new TestClock('2026-03-04T00:00:00Z');
    await drain('whatsapp', clock);
    const accountId = await customer(['whatsapp']);
    const { item } = await notify({ accountId, event: 'cancelled', period: 's1' }, { clock });
    const options = { workerId: 'wa', clock, leaseMs: LEASE_MS };

    const delays: number[] = [];
    for (let attempt = 1; attempt <= DEFAULT_RETRY_POLICY.maxAttempts; attempt += 1) {
      const claim = await claimNext('whatsapp', options);
      expect(claim?.attempts).toBe(attempt);
      const status = await markFailed(item.id, 'whatsapp', new Error(`socket closed ${attempt}`), {
        clock,
        retryable: true,
      });
      if (attempt < DEFAULT_RETRY_POLICY.maxAttempts) {
        expect(status).toBe('pending');
        const slot = (await getOutboxItem(item.id))?.deliveries[0];
        const delay = (slot?.nextAttemptAt.getTime() ?? 0) - clock.now().getTime();
        delays.push(delay);
        clock.advance(delay - 1);
        expect(await claimNext('whatsapp', options)).toBeNull();
        clock.advance(1);
      } else {
        expect(status).toBe('failed');
      }
    }

    expect(delays).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
    expect(delays).toEqual([1, 2, 3, 4, 5].map((n) => retryDelayMs(n)));
    const slot = (await getOutboxItem(item.id))?.deliveries[0];
    expect(slot).toMatchObject({
      status: 'failed',
      attempts: 6,
      lastError: 'Error: socket closed 6',
    });
    clock.advanceBy({ days: 1 });
    expect(await claimNext('whatsapp', options)).toBeNull();
  });

  it('gives up at once on a failure that is not retryable', async () => {
    const clock = new TestClock('2026-03-05T00:00:00Z');
    await drain('telegram', clock);
    const accountId = await customer(['telegram']);
    const { item } = await notify({ accountId, event: 'welcome' }, { clock });
    await claimNext('telegram', { workerId: 'tg', clock, leaseMs: LEASE_MS });

    expect(
      await markFailed(item.id, 'telegram', new Error('403: bot was blocked by the user'), {
        clock,
        retryable: false,
      }),
    ).toBe('failed');
    clock.advanceBy({ hours: 1 });
    expect(await claimNext('telegram', { workerId: 'tg', clock, leaseMs: LEASE_MS })).toBeNull();
  });

  it('fails a slot whose workers keep dying once its attempts are used up', async () => {
    const clock = new TestClock('2026-03-06T00:00:00Z');
    await drain('telegram', clock);
    const accountId = await customer(['telegram']);
    const { item } = await notify({ accountId, event: 'usage_100', period: 'x' }, { clock });
    const options = { workerId: 'doomed', clock, leaseMs: LEASE_MS };

    for (let attempt = 1; attempt <= DEFAULT_RETRY_POLICY.maxAttempts; attempt += 1) {
      expect((await claimNext('telegram', options))?.attempts).toBe(attempt);
      clock.advance(LEASE_MS); // the worker dies holding the lease
    }
    expect(await claimNext('telegram', options)).toBeNull();
    expect((await getOutboxItem(item.id))?.deliveries[0]).toMatchObject({
      status: 'failed',
      lastError: expect.stringMatching(/lease expired/) as unknown as string,
    });
  });
});

describe('admin alerts', () => {
  it('writes one alert per key with a slot on every channel, for the admin senders to settle', async () => {
    const clock = new TestClock('2026-04-01T00:00:00Z');
    for (const channel of ['telegram', 'whatsapp', 'email'] as const) await drain(channel, clock);

    const [first, repeat] = await Promise.all([
      notifyAdmins(
        {
          event: 'payment_flagged',
          dedupKey: 'payment_flagged:ref-7',
          data: { reference: 'ref-7' },
        },
        { clock },
      ),
      notifyAdmins({ event: 'payment_flagged', dedupKey: 'payment_flagged:ref-7' }, { clock }),
    ]);
    expect(repeat.item.id).toBe(first.item.id);
    expect([first.created, repeat.created].sort()).toEqual([false, true]);
    expect(first.item).toMatchObject({ audience: 'admins', accountId: null });
    expect(first.item.deliveries.map((d) => [d.channel, d.status])).toEqual([
      ['telegram', 'pending'],
      ['whatsapp', 'pending'],
      ['email', 'pending'],
    ]);

    // A customer-only sender does not see it; the admin sender does.
    expect(
      await claimNext('telegram', {
        workerId: 'tg',
        clock,
        leaseMs: LEASE_MS,
        audience: 'customer',
      }),
    ).toBeNull();
    const tg = await claimNext('telegram', {
      workerId: 'tg',
      clock,
      leaseMs: LEASE_MS,
      audience: 'admins',
    });
    expect(tg).toMatchObject({
      audience: 'admins',
      event: 'payment_flagged',
      data: { reference: 'ref-7' },
    });
    expect(await markSent(first.item.id, 'telegram', { clock, workerId: 'tg' })).toBe(true);

    // No admin has an email address: the mailer settles its slot as skipped.
    await claimNext('email', { workerId: 'mail', clock, leaseMs: LEASE_MS });
    expect(
      await markSkipped(first.item.id, 'email', 'no admin email', { clock, workerId: 'mail' }),
    ).toBe(true);

    const stored = await getOutboxItem(first.item.id);
    expect(stored?.deliveries.map((d) => d.status)).toEqual(['sent', 'pending', 'skipped']);
  });
});

describe('accounts without a way to reach them', () => {
  it('records the event with no slot for an account that has no chat identity or email', async () => {
    const clock = new TestClock('2026-05-01T00:00:00Z');
    const accountId = await customer([]);
    const { item } = await notify({ accountId, event: 'welcome' }, { clock });
    expect(item.deliveries).toEqual([]);
  });

  it('skips every channel of a deleted account', async () => {
    const clock = new TestClock('2026-05-01T00:00:00Z');
    const accountId = await customer(['telegram'], { email: true });
    await Account.updateOne({ _id: accountId }, { $set: { status: 'deleted' } });
    const { item } = await notify({ accountId, event: 'cancelled', period: 'final' }, { clock });
    expect(item.deliveries.map((d) => [d.status, d.lastError])).toEqual([
      ['skipped', 'account deleted'],
      ['skipped', 'account deleted'],
    ]);
  });
});
