/**
 * /api/v1/me/team: team seats. The owner of a plan with seats (Team) sees
 * who is on the team and what each member used, invites members with a
 * one-time code, sets a member's caps and removes members; a member sees
 * whose team they are on; anyone joins a team with an invite code.
 *
 * The same core functions as the bot's team journey (bot/core/journeys/team.ts):
 * core/team.ts for seats (limits, caps, races), core/team-invites.ts for codes.
 * Owner routes declare `planFeature: 'seats'`, so a plan without seats (and a
 * member, who has no plan of its own) is refused FORBIDDEN PLAN_FEATURE_REQUIRED.
 */
import { z } from 'zod';
import { planFeatureRefusal } from '../mount.js';
import type { DomainError } from '../../../lib/errors.js';
import { getAccountView } from '../../../core/accounts/view.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { currentQuotaWindow, getLiveSubscription } from '../../../core/subscriptions.js';
import {
  createSeatInvite,
  joinTeamWithInvite,
  listOpenSeatInvites,
  revokeSeatInvite,
  type InviteLinkOptions,
  type SeatInviteView,
} from '../../../core/team-invites.js';
import {
  getSeat,
  listSeatsWithUsage,
  removeSeat,
  seatsLeft,
  setSeatCaps,
  type SeatView,
} from '../../../core/team.js';
import { emptyRoute, jsonRoute, type AnyRoute, type ApiDeps } from '../route.js';
import { objectId } from '../schemas.js';

const capBytes = z
  .number()
  .int()
  .positive()
  .nullable()
  .describe('Bytes per quota period (GB = 10^9 bytes); null = the team pool only.');
const maxConnections = z
  .number()
  .int()
  .positive()
  .nullable()
  .describe("Connections open at once; null = the team's limit only.");

const person = z.object({ accountId: z.string(), email: z.string().nullable() });

const seatView = z.object({
  member: person,
  capBytes: z.number().int().nullable(),
  maxConnections: z.number().int().nullable(),
  since: z.date(),
});

const inviteView = z.object({
  code: z
    .string()
    .describe('`ABCD-EFGH`: the member types it in Join a team (or POST /me/team/join).'),
  expiresAt: z.date(),
  capBytes: z.number().int().nullable(),
  maxConnections: z.number().int().nullable(),
  links: z
    .object({ telegram: z.string().optional(), whatsapp: z.string().optional() })
    .describe('Open the bots with the code filled in, where configured.'),
});

const teamView = z.object({
  role: z.enum(['owner', 'member']),
  owner: z
    .object({
      plan: z.object({ code: z.string(), name: z.string() }),
      seats: z.number().int().describe('Seats of the plan, the owner’s included.'),
      freeSeats: z.number().int(),
      pool: z
        .object({
          usedBytes: z.number().int(),
          limitBytes: z
            .number()
            .int()
            .describe('The period’s allowance, carry-over and extra data included.'),
          periodStart: z.date(),
          periodEnd: z.date(),
        })
        .nullable()
        .describe('The shared data of the current quota period.'),
      members: z.array(seatView.extend({ usedBytes: z.number().int() })),
      invites: z.array(inviteView).describe('Invites not used yet.'),
    })
    .nullable(),
  member: z
    .object({
      owner: person,
      capBytes: z.number().int().nullable(),
      maxConnections: z.number().int().nullable(),
      usedBytes: z
        .number()
        .int()
        .nullable()
        .describe('Used against the cap this period; null without a cap.'),
      since: z.date(),
    })
    .nullable(),
});

function inviteLinks(deps: ApiDeps): InviteLinkOptions {
  return {
    ...(deps.links?.telegramBotUsername
      ? { telegramBotUsername: deps.links.telegramBotUsername }
      : {}),
    ...(deps.links?.whatsappNumber ? { whatsappNumber: deps.links.whatsappNumber } : {}),
  };
}

function toInvite(invite: SeatInviteView) {
  return {
    code: invite.code,
    expiresAt: invite.expiresAt,
    capBytes: invite.capBytes,
    maxConnections: invite.maxConnections,
    links: invite.links,
  };
}

async function personOf(accountId: string) {
  const account = await getAccountView(accountId).catch(() => null);
  return { accountId, email: account?.email ?? null };
}

async function toSeat(seat: SeatView) {
  return {
    member: await personOf(seat.memberAccountId),
    capBytes: seat.capBytes,
    maxConnections: seat.maxConnections,
    since: seat.createdAt,
  };
}

/**
 * The refusal the plan-feature gate gives (api/v1/mount.ts), for GET /me/team,
 * which members may call too and so cannot declare the feature.
 */
function seatsRefusal(): DomainError {
  return planFeatureRefusal(
    'seats',
    'You are not on a team. Team seats come with the Team plan: upgrade to Team to invite members, or join a team with an invite code (POST /api/v1/me/team/join).',
  );
}

/**
 * The shared data before the team's first byte: the gateway opens the period's
 * counter on first use (core/quota.ts planWindowRequest: the plan's allowance
 * for the subscription's current window), so until then nothing is used of it.
 */
function unusedPool(
  live: Parameters<typeof currentQuotaWindow>[0],
  allowanceBytes: number | undefined,
  now: Date,
) {
  const window = currentQuotaWindow(live, now);
  if (!window || allowanceBytes === undefined) return null;
  return {
    usedBytes: 0,
    limitBytes: allowanceBytes,
    periodStart: window.start,
    periodEnd: window.end,
  };
}

const memberParams = z.object({ memberId: objectId });

export const teamRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getTeam',
    method: 'get',
    path: '/me/team',
    tag: 'Team',
    summary: 'The team: an owner’s seats, usage per member and invites, or a member’s team',
    description:
      'Answers for the owner of a plan with seats and for a member of a team; anyone else is refused 403 PLAN_FEATURE_REQUIRED.',
    access: 'customer',
    response: teamView,
    async handler({ caller, deps }) {
      const me = caller.accountId;
      const now = deps.clock.now();
      const seat = await getSeat(me);
      if (seat) {
        const counter = seat.capBytes === null ? null : await getQuotaUsage(me, now);
        return {
          role: 'member' as const,
          owner: null,
          member: {
            owner: await personOf(seat.ownerAccountId),
            capBytes: seat.capBytes,
            maxConnections: seat.maxConnections,
            usedBytes: seat.capBytes === null ? null : (counter?.usedBytes ?? 0),
            since: seat.createdAt,
          },
        };
      }
      const live = await getLiveSubscription(me);
      const plan =
        live && live.status !== 'pending_payment'
          ? await getPlan(live.planCode).catch(() => null)
          : null;
      if (!live || !plan || (plan.seats ?? 1) <= 1) throw seatsRefusal();
      const [seats, free, pool, invites] = await Promise.all([
        listSeatsWithUsage(me, now),
        seatsLeft(me),
        getQuotaUsage(me, now),
        listOpenSeatInvites(me, { clock: deps.clock, links: inviteLinks(deps) }),
      ]);
      return {
        role: 'owner' as const,
        member: null,
        owner: {
          plan: { code: plan.code, name: plan.name },
          seats: plan.seats ?? 1,
          freeSeats: free,
          pool: pool
            ? {
                usedBytes: pool.usedBytes,
                limitBytes: pool.limitBytes + pool.carryOverBytes + pool.addedBytes,
                periodStart: pool.periodStart,
                periodEnd: pool.periodEnd,
              }
            : unusedPool(live, plan.quota?.bytes, now),
          members: await Promise.all(
            seats.map(async (s) => ({ ...(await toSeat(s)), usedBytes: s.usedBytes })),
          ),
          invites: invites.map(toInvite),
        },
      };
    },
  }),

  jsonRoute({
    operationId: 'createTeamInvite',
    method: 'post',
    path: '/me/team/invites',
    tag: 'Team',
    summary: 'Invite a member: a one-time code (48 hours) to pass on',
    description:
      'Optional caps apply to whoever joins with the code. 409 SEATS_FULL when every seat is taken.',
    access: 'customer',
    planFeature: 'seats',
    status: 201,
    body: z
      .object({ capBytes: capBytes.optional(), maxConnections: maxConnections.optional() })
      .strict(),
    response: inviteView,
    async handler({ caller, body, deps }) {
      const invite = await createSeatInvite(
        caller.accountId,
        {
          ...(body.capBytes ? { capBytes: body.capBytes } : {}),
          ...(body.maxConnections ? { maxConnections: body.maxConnections } : {}),
        },
        { clock: deps.clock, links: inviteLinks(deps) },
      );
      return toInvite(invite);
    },
  }),

  emptyRoute({
    operationId: 'revokeTeamInvite',
    method: 'delete',
    path: '/me/team/invites/:code',
    tag: 'Team',
    summary: 'Withdraw an invite that has not been used',
    access: 'customer',
    planFeature: 'seats',
    status: 204,
    params: z.object({ code: z.string().max(20) }),
    async handler({ caller, params, deps }) {
      await revokeSeatInvite(caller.accountId, params.code, { clock: deps.clock });
    },
  }),

  emptyRoute({
    operationId: 'removeTeamMember',
    method: 'delete',
    path: '/me/team/seats/:memberId',
    tag: 'Team',
    summary: 'Remove a member: their proxy stops within a minute, their account stays',
    access: 'customer',
    planFeature: 'seats',
    status: 204,
    params: memberParams,
    async handler({ caller, params, deps }) {
      await removeSeat(caller.accountId, params.memberId, { clock: deps.clock });
    },
  }),

  jsonRoute({
    operationId: 'setTeamMemberCaps',
    method: 'put',
    path: '/me/team/seats/:memberId/caps',
    tag: 'Team',
    summary: "Set a member's data cap and connection limit",
    description:
      'A field left out stays as it is; null removes that cap. A new data cap applies to the current period at once.',
    access: 'customer',
    planFeature: 'seats',
    params: memberParams,
    body: z
      .object({ capBytes: capBytes.optional(), maxConnections: maxConnections.optional() })
      .strict(),
    response: seatView,
    async handler({ caller, params, body, deps }) {
      const seat = await setSeatCaps(
        caller.accountId,
        params.memberId,
        {
          ...(body.capBytes !== undefined ? { capBytes: body.capBytes } : {}),
          ...(body.maxConnections !== undefined ? { maxConnections: body.maxConnections } : {}),
        },
        { clock: deps.clock },
      );
      return toSeat(seat);
    },
  }),

  jsonRoute({
    operationId: 'joinTeam',
    method: 'post',
    path: '/me/team/join',
    tag: 'Team',
    summary: 'Join a team with an invite code',
    description:
      'No plan needed: the team owner’s plan pays. 404 UNKNOWN_CODE; 409 USED, EXPIRED, REVOKED, SEATS_FULL, MEMBER_HAS_A_PLAN (an account with a plan of its own joins once that plan has ended), ALREADY_A_SEAT.',
    access: 'customer',
    status: 201,
    body: z.object({ code: z.string().max(20) }),
    response: z.object({
      owner: person,
      capBytes: z.number().int().nullable(),
      maxConnections: z.number().int().nullable(),
      since: z.date(),
    }),
    async handler({ caller, body, deps }) {
      const seat = await joinTeamWithInvite(caller.accountId, body.code, { clock: deps.clock });
      return {
        owner: await personOf(seat.ownerAccountId),
        capBytes: seat.capBytes,
        maxConnections: seat.maxConnections,
        since: seat.createdAt,
      };
    },
  }),
];
