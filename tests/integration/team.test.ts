import { beforeAll, describe, expect, it } from '@jest/globals';
import { Notification } from '../../models/notification.js';
import { seedPlans } from '../../core/plans.js';
import { getQuotaUsage } from '../../core/quota.js';
import {
  addSeat,
  getSeat,
  listSeats,
  listSeatsWithUsage,
  removeSeat,
  setSeatCaps,
} from '../../core/team.js';
import { TestClock } from '../../lib/clock.js';
import { DomainError } from '../../lib/errors.js';
import { UsageBucket } from '../../models/usage-bucket.js';
import { accountOnPlan, newAccountId } from '../support/accounts.js';
import { useTestDatabase } from '../support/database.js';

const clock = new TestClock('2026-03-02T10:30:00.000Z');
useTestDatabase();

beforeAll(async () => {
  await seedPlans(clock);
});

const account = newAccountId;
const ownerOn = (planCode: string): Promise<string> => accountOnPlan(planCode, clock);

/** The DomainError a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a DomainError');
}

describe('team seats', () => {
  it("adds members up to the plan's seats, the owner counting as one", async () => {
    const owner = await ownerOn('team');
    const members = [await account(), await account(), await account(), await account()];
    for (const member of members) await addSeat(owner, member, {}, { clock });

    const fifth = await refusal(addSeat(owner, await account(), {}, { clock }));

    expect(fifth.code).toBe('CONFLICT');
    expect(fifth.message).toBe(
      'All 5 seats of your Team plan are taken (you hold one). Remove a member to add another.',
    );
    expect((await listSeats(owner)).map((seat) => seat.memberAccountId)).toEqual(members);
  });

  it('never gives out more seats than the plan has when members are added at once', async () => {
    const owner = await ownerOn('team');
    const members = await Promise.all(Array.from({ length: 7 }, () => account()));

    const results = await Promise.allSettled(
      members.map((member) => addSeat(owner, member, {}, { clock })),
    );

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(await listSeats(owner)).toHaveLength(4);
  });

  it('frees the seat of a removed member for someone else', async () => {
    const owner = await ownerOn('team');
    const members = await Promise.all(Array.from({ length: 4 }, () => account()));
    for (const member of members) await addSeat(owner, member, {}, { clock });

    await removeSeat(owner, members[1] as string, { clock });
    const newcomer = await account();
    await addSeat(owner, newcomer, {}, { clock });
    // The member heard both: added, then removed.
    expect(
      (await Notification.find({ accountId: members[1] }).lean()).map((n) => n.event).sort(),
    ).toEqual(['seat_added', 'seat_removed']);

    expect(await getSeat(members[1] as string)).toBeNull();
    expect((await getSeat(newcomer))?.ownerAccountId).toBe(owner);
    expect((await refusal(removeSeat(owner, members[1] as string))).code).toBe('NOT_FOUND');
  });

  it('refuses seats to an owner whose plan is not a team plan, or who has no plan', async () => {
    const personal = await ownerOn('personal');
    const onPersonal = await refusal(addSeat(personal, await account(), {}, { clock }));
    expect(onPersonal).toMatchObject({ code: 'CONFLICT' });
    expect(onPersonal.message).toBe(
      'Your Personal plan has no seats for members. Upgrade to Team to add members with their own credentials.',
    );

    const noPlan = await refusal(addSeat(await account(), await account(), {}, { clock }));
    expect(noPlan).toMatchObject({ code: 'CONFLICT' });
    expect(noPlan.message).toMatch(/no plan running/);
  });

  it('refuses a member who has a plan or a team already, and the owner itself', async () => {
    const owner = await ownerOn('team');
    const withPlan = await ownerOn('personal');
    expect((await refusal(addSeat(owner, withPlan, {}, { clock }))).message).toMatch(
      /has a plan of its own/,
    );

    const member = await account();
    await addSeat(owner, member, {}, { clock });
    const otherOwner = await ownerOn('team');
    expect((await refusal(addSeat(otherOwner, member, {}, { clock }))).message).toBe(
      'That account is already a member of a team.',
    );
    expect((await refusal(addSeat(owner, owner, {}, { clock }))).code).toBe('VALIDATION_FAILED');
    expect((await refusal(addSeat(owner, await account(), { capBytes: -1 }, { clock }))).code).toBe(
      'VALIDATION_FAILED',
    );
  });

  it("counts a cap set mid-window from the seat's use so far, and follows cap changes", async () => {
    const owner = await ownerOn('team');
    const member = await account();
    await addSeat(owner, member, { maxConnections: 2 }, { clock });
    await UsageBucket.create({
      accountId: member,
      hourStart: new Date('2026-03-02T10:00:00.000Z'),
      location: 'ng',
      bytesUp: 1_000,
      bytesDown: 4_000,
    });

    const capped = await setSeatCaps(owner, member, { capBytes: 1_000_000 }, { clock });

    expect(capped).toMatchObject({ capBytes: 1_000_000, maxConnections: 2 });
    expect(await getQuotaUsage(member, clock.now())).toMatchObject({
      limitBytes: 1_000_000,
      usedBytes: 5_000,
      remainingBytes: 995_000,
    });

    await setSeatCaps(owner, member, { capBytes: 4_000 }, { clock });
    expect(await getQuotaUsage(member, clock.now())).toMatchObject({
      limitBytes: 4_000,
      remainingBytes: 0,
    });

    const lifted = await setSeatCaps(
      owner,
      member,
      { capBytes: null, maxConnections: null },
      { clock },
    );
    expect(lifted).toMatchObject({ capBytes: null, maxConnections: null });
  });

  it('shows the owner what each member used in the current window', async () => {
    const owner = await ownerOn('team');
    const [busy, idle] = [await account(), await account()];
    await addSeat(owner, busy, {}, { clock });
    await addSeat(owner, idle, { capBytes: 2_000_000 }, { clock });
    for (const hour of ['2026-03-02T10:00:00.000Z', '2026-03-02T11:00:00.000Z']) {
      await UsageBucket.create({
        accountId: busy,
        hourStart: new Date(hour),
        location: 'ng',
        bytesUp: 100,
        bytesDown: 900,
      });
    }
    const later = new Date('2026-03-02T12:30:00.000Z');
    const seats = await listSeatsWithUsage(owner, later);
    expect(seats.map((seat) => [seat.memberAccountId, seat.usedBytes, seat.capBytes])).toEqual([
      [busy, 2_000, null],
      [idle, 0, 2_000_000],
    ]);
    expect(seats[0]?.windowStart.getTime()).toBeLessThanOrEqual(clock.now().getTime());
  });
});
