/**
 * Team seats over real HTTP (/api/v1/me/team...), against the real database:
 * the owner of a Team plan invites members with a code, sees each member's
 * use, caps and removes them; a member sees their team; anyone joins with an
 * invite. Owner routes are refused on plans without seats (403
 * PLAN_FEATURE_REQUIRED), and another team's members and invites answer 404.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { teamRoutes } from '../../../api/v1/routes/team.js';
import { getSeat } from '../../../core/team.js';
import { addToUsageBuckets, hourStart } from '../../../core/usage.js';
import { activateFromPayment } from '../../../core/subscriptions.js';
import { useTestDatabase } from '../../support/database.js';
import { useApiHarness, type ApiCustomer } from '../../support/api.js';

useTestDatabase();
const api = useApiHarness();

const GB = 1_000_000_000;

/** A logged-in customer whose `planCode` subscription was paid now. */
async function customerOn(planCode: string): Promise<ApiCustomer> {
  const customer = await api.customer();
  await activateFromPayment({
    accountId: customer.accountId,
    planCode,
    paymentRef: `ref_${randomBytes(6).toString('hex')}`,
    clock: api.payments.clock,
  });
  return customer;
}

async function invite(owner: ApiCustomer, body: object = {}): Promise<string> {
  const res = await api.call('post', '/me/team/invites', { token: owner.accessToken, body });
  expect(res.status).toBe(201);
  return res.body.code as string;
}

async function join(member: ApiCustomer, code: string) {
  return api.call('post', '/me/team/join', { token: member.accessToken, body: { code } });
}

/** An owner on Team with one member who joined through an invite. */
async function teamWithMember() {
  const owner = await customerOn('team');
  const member = await api.customer();
  const joined = await join(member, await invite(owner));
  expect(joined.status).toBe(201);
  return { owner, member };
}

const concrete = (path: string) =>
  path.replace(':memberId', '0123456789abcdef01234567').replace(':code', 'ABCD-EFGH');

describe('every team route', () => {
  it('refuses a caller without a token (401)', async () => {
    expect(teamRoutes.length).toBe(6);
    for (const route of teamRoutes) {
      const res = await api.call(route.method, concrete(route.path), {
        ...(route.method === 'get' ? {} : { body: {} }),
      });
      expect([route.operationId, res.status]).toEqual([route.operationId, 401]);
    }
  });

  it('refuses a caller whose email is not verified (403 EMAIL_NOT_VERIFIED)', async () => {
    const unverified = await api.customer({ verified: false });
    for (const route of teamRoutes) {
      const res = await api.call(route.method, concrete(route.path), {
        token: unverified.accessToken,
        ...(route.method === 'get' ? {} : { body: {} }),
      });
      expect([route.operationId, res.status]).toEqual([route.operationId, 403]);
      expect(res.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
    }
  });

  it('refuses every team route but joining to a Starter customer (403 PLAN_FEATURE_REQUIRED)', async () => {
    const starter = await customerOn('starter');
    for (const route of teamRoutes.filter((r) => r.operationId !== 'joinTeam')) {
      const res = await api.call(route.method, concrete(route.path), {
        token: starter.accessToken,
        ...(route.method === 'get' ? {} : { body: {} }),
      });
      expect([route.operationId, res.status]).toEqual([route.operationId, 403]);
      expect(res.body.error.details).toMatchObject({
        reason: 'PLAN_FEATURE_REQUIRED',
        feature: 'seats',
        upgrade: { planCode: 'team' },
      });
    }
  });
});

describe('GET /me/team', () => {
  it("shows the owner the seats, the shared data, each member's use and cap, and open invites", async () => {
    const { owner, member } = await teamWithMember();
    const open = await invite(owner, { capBytes: 20 * GB });
    // The gateway's metering of the member this hour (as its flush writes it).
    await addToUsageBuckets([
      {
        accountId: member.accountId,
        hourStart: hourStart(api.payments.clock.now()),
        location: 'ng',
        bytesUp: 1_000_000,
        bytesDown: 2_500_000,
      },
    ]);
    const res = await api.call('get', '/me/team', { token: owner.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.role).toBe('owner');
    expect(res.body.member).toBeNull();
    expect(res.body.owner).toMatchObject({
      plan: { code: 'team' },
      seats: 5,
      freeSeats: 3,
      // No byte used yet: the plan's whole allowance for this month.
      pool: { usedBytes: 0, limitBytes: 500 * GB },
      members: [
        {
          member: { accountId: member.accountId, email: member.email },
          usedBytes: 3_500_000,
          capBytes: null,
          maxConnections: null,
        },
      ],
      invites: [{ code: open, capBytes: 20 * GB }],
    });
  });

  it('shows a member whose team they are on, with their cap', async () => {
    const { owner, member } = await teamWithMember();
    await api.call('put', `/me/team/seats/${member.accountId}/caps`, {
      token: owner.accessToken,
      body: { capBytes: 5 * GB },
    });
    const res = await api.call('get', '/me/team', { token: member.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      role: 'member',
      owner: null,
      member: {
        owner: { accountId: owner.accountId, email: owner.email },
        capBytes: 5 * GB,
        usedBytes: 0,
      },
    });
  });

  it('refuses a customer on no team and without a plan', async () => {
    const nobody = await api.customer();
    const res = await api.call('get', '/me/team', { token: nobody.accessToken });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe('PLAN_FEATURE_REQUIRED');
  });
});

describe('invites and joining', () => {
  it('gives an invite code with bot links; whoever joins with it is on the team, once', async () => {
    const owner = await customerOn('team');
    const res = await api.call('post', '/me/team/invites', {
      token: owner.accessToken,
      body: { maxConnections: 3 },
    });
    expect(res.status).toBe(201);
    expect(res.body.code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(res.body.links.telegram).toBe(
      `https://t.me/AtlanticProxyBot?start=join_${res.body.code.replace('-', '')}`,
    );
    expect(res.body.maxConnections).toBe(3);

    const member = await api.customer();
    const joined = await join(member, res.body.code.toLowerCase());
    expect(joined.status).toBe(201);
    expect(joined.body).toMatchObject({
      owner: { accountId: owner.accountId, email: owner.email },
      maxConnections: 3,
    });
    expect((await getSeat(member.accountId))?.ownerAccountId).toBe(owner.accountId);

    const second = await join(await api.customer(), res.body.code);
    expect(second.status).toBe(409);
    expect(second.body.error.details.reason).toBe('USED');
  });

  it('refuses an unknown code, and a customer with a plan of their own', async () => {
    const owner = await customerOn('team');
    const unknown = await join(await api.customer(), 'ZZZZ-ZZZZ');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details.reason).toBe('UNKNOWN_CODE');

    const code = await invite(owner);
    const paying = await customerOn('starter');
    const refused = await join(paying, code);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details.reason).toBe('MEMBER_HAS_A_PLAN');
    // The invite was given back: someone else can still use it.
    expect((await join(await api.customer(), code)).status).toBe(201);
  });

  it('refuses a new invite once every seat is taken (the owner holds one)', async () => {
    const owner = await customerOn('team');
    for (let i = 0; i < 4; i++) {
      expect((await join(await api.customer(), await invite(owner))).status).toBe(201);
    }
    const full = await api.call('post', '/me/team/invites', { token: owner.accessToken, body: {} });
    expect(full.status).toBe(409);
    expect(full.body.error.details.reason).toBe('SEATS_FULL');
  });

  it('refuses a member of a team inviting members of their own', async () => {
    const { member } = await teamWithMember();
    const res = await api.call('post', '/me/team/invites', { token: member.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.error.details.reason).toBe('PLAN_FEATURE_REQUIRED');
  });

  it("withdraws an unused invite; another owner's invite is 404", async () => {
    const owner = await customerOn('team');
    const other = await customerOn('team');
    const code = await invite(owner);
    const foreign = await api.call('delete', `/me/team/invites/${code}`, {
      token: other.accessToken,
    });
    expect(foreign.status).toBe(404);

    const revoked = await api.call('delete', `/me/team/invites/${code}`, {
      token: owner.accessToken,
    });
    expect(revoked.status).toBe(204);
    const late = await join(await api.customer(), code);
    expect(late.status).toBe(409);
    expect(late.body.error.details.reason).toBe('REVOKED');
    const again = await api.call('delete', `/me/team/invites/${code}`, {
      token: owner.accessToken,
    });
    expect(again.status).toBe(404);
  });
});

describe('seats', () => {
  it("sets a member's caps, removes one with null, and refuses a cap of zero", async () => {
    const { owner, member } = await teamWithMember();
    const path = `/me/team/seats/${member.accountId}/caps`;
    const set = await api.call('put', path, {
      token: owner.accessToken,
      body: { capBytes: 50 * GB, maxConnections: 2 },
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      member: { accountId: member.accountId, email: member.email },
      capBytes: 50 * GB,
      maxConnections: 2,
    });
    const lifted = await api.call('put', path, {
      token: owner.accessToken,
      body: { capBytes: null },
    });
    expect(lifted.body).toMatchObject({ capBytes: null, maxConnections: 2 });
    expect((await getSeat(member.accountId))?.capBytes).toBeNull();

    const zero = await api.call('put', path, { token: owner.accessToken, body: { capBytes: 0 } });
    expect(zero.status).toBe(400);
    expect((await getSeat(member.accountId))?.maxConnections).toBe(2);
  });

  it('removes a member: they are off the team and the seat is free again', async () => {
    const { owner, member } = await teamWithMember();
    const res = await api.call('delete', `/me/team/seats/${member.accountId}`, {
      token: owner.accessToken,
    });
    expect(res.status).toBe(204);
    expect(await getSeat(member.accountId)).toBeNull();
    const team = await api.call('get', '/me/team', { token: owner.accessToken });
    expect(team.body.owner).toMatchObject({ freeSeats: 4, members: [] });
    const theirs = await api.call('get', '/me/team', { token: member.accessToken });
    expect(theirs.status).toBe(403);

    const again = await api.call('delete', `/me/team/seats/${member.accountId}`, {
      token: owner.accessToken,
    });
    expect(again.status).toBe(404);
  });

  it("answers 404 for another team's member, and leaves that seat alone", async () => {
    const { member } = await teamWithMember();
    const stranger = await customerOn('team');
    const removed = await api.call('delete', `/me/team/seats/${member.accountId}`, {
      token: stranger.accessToken,
    });
    expect(removed.status).toBe(404);
    const capped = await api.call('put', `/me/team/seats/${member.accountId}/caps`, {
      token: stranger.accessToken,
      body: { capBytes: GB },
    });
    expect(capped.status).toBe(404);
    const seat = await getSeat(member.accountId);
    expect(seat).toMatchObject({ capBytes: null });
  });

  it('refuses a malformed member id (400)', async () => {
    const owner = await customerOn('team');
    const res = await api.call('delete', '/me/team/seats/not-an-id', { token: owner.accessToken });
    expect(res.status).toBe(400);
    expect(res.body.error.details.issues[0].path).toBe('params.memberId');
  });
});
