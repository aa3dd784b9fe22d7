/**
 * Team invites (core/team-invites.ts): the owner hands out a code in chat,
 * whoever redeems it joins the team once; used, expired, withdrawn and
 * mistyped codes are refused, and a failed join leaves the invite usable.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { seedPlans } from '../../core/plans.js';
import { getSeat, listSeats } from '../../core/team.js';
import {
  createSeatInvite,
  joinTeamWithInvite,
  listOpenSeatInvites,
  revokeSeatInvite,
} from '../../core/team-invites.js';
import { TestClock } from '../../lib/clock.js';
import { accountOnPlan, newAccountId } from '../support/accounts.js';
import { useTestDatabase } from '../support/database.js';
import { reasonOf } from '../support/refusals.js';

const clock = new TestClock('2026-03-02T10:30:00.000Z');
useTestDatabase();
const GB = 1_000_000_000;

beforeAll(async () => {
  await seedPlans(clock);
});

const account = newAccountId;
const ownerOn = (planCode: string): Promise<string> => accountOnPlan(planCode, clock);

describe('team invites', () => {
  it('lets the invited person join with the caps the owner chose, once', async () => {
    const owner = await ownerOn('team');
    const invite = await createSeatInvite(
      owner,
      { capBytes: 20 * GB },
      {
        clock,
        links: { telegramBotUsername: 'AtlanticBot', whatsappNumber: '+234 800 000 0000' },
      },
    );
    expect(invite.code).toMatch(/^[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}$/);
    const bare = invite.code.replace('-', '');
    expect(invite.links).toEqual({
      telegram: `https://t.me/AtlanticBot?start=join_${bare}`,
      whatsapp: `https://wa.me/2348000000000?text=JOIN%20${invite.code}`,
    });

    const member = await account();
    // Typed by hand: lower case, a space instead of the dash.
    const seat = await joinTeamWithInvite(
      member,
      ` ${invite.code.toLowerCase().replace('-', ' ')} `,
      { clock },
    );
    expect(seat).toMatchObject({
      ownerAccountId: owner,
      memberAccountId: member,
      capBytes: 20 * GB,
    });
    expect((await getSeat(member))?.ownerAccountId).toBe(owner);

    const latecomer = await account();
    expect(await reasonOf(joinTeamWithInvite(latecomer, invite.code, { clock }))).toBe('USED');
    expect(await getSeat(latecomer)).toBeNull();
    expect(await listOpenSeatInvites(owner, { clock })).toEqual([]);
  });

  it('refuses an expired, a withdrawn and a made-up code', async () => {
    const owner = await ownerOn('team');
    const member = await account();
    const shortLived = await createSeatInvite(owner, {}, { clock, ttlMs: 60_000 });
    const withdrawn = await createSeatInvite(owner, {}, { clock });
    expect((await listOpenSeatInvites(owner, { clock })).map((i) => i.code).sort()).toEqual(
      [shortLived.code, withdrawn.code].sort(),
    );
    await revokeSeatInvite(owner, withdrawn.code, { clock });
    clock.advance(60_001);
    expect(await reasonOf(joinTeamWithInvite(member, shortLived.code, { clock }))).toBe('EXPIRED');
    expect(await reasonOf(joinTeamWithInvite(member, withdrawn.code, { clock }))).toBe('REVOKED');
    expect(await reasonOf(joinTeamWithInvite(member, 'ZZZZ-ZZZZ', { clock }))).toBe('UNKNOWN_CODE');
    expect(await reasonOf(joinTeamWithInvite(member, 'not a code at all', { clock }))).toBe(
      'UNKNOWN_CODE',
    );
    expect(await getSeat(member)).toBeNull();
  });

  it('keeps the invite usable when the join is refused, and gives one seat to two people racing', async () => {
    const owner = await ownerOn('team');
    // Someone with a plan of their own cannot join: the invite stays open.
    const withPlan = await ownerOn('personal');
    const invite = await createSeatInvite(owner, {}, { clock });
    expect(await reasonOf(joinTeamWithInvite(withPlan, invite.code, { clock }))).toBe(
      'MEMBER_HAS_A_PLAN',
    );

    const [a, b] = [await account(), await account()];
    const outcomes = await Promise.all([
      reasonOf(joinTeamWithInvite(a, invite.code, { clock })),
      reasonOf(joinTeamWithInvite(b, invite.code, { clock })),
    ]);
    expect(outcomes.sort()).toEqual(['USED', 'accepted']);
    expect(await listSeats(owner)).toHaveLength(1);
  });

  it('is refused to an owner without a team plan, or with every seat taken', async () => {
    const personal = await ownerOn('personal');
    expect(await reasonOf(createSeatInvite(personal, {}, { clock }))).toBe('NOT_A_TEAM_PLAN');

    const owner = await ownerOn('team');
    for (let i = 0; i < 4; i++) {
      const invite = await createSeatInvite(owner, {}, { clock });
      await joinTeamWithInvite(await account(), invite.code, { clock });
    }
    expect(await reasonOf(createSeatInvite(owner, {}, { clock }))).toBe('SEATS_FULL');
  });
});
