/**
 * Team: the owner of a plan with seats sees who is on the team and what each
 * member used, invites members (a one-time code they type in their own chat),
 * sets a member's data cap and removes a member after an explicit Confirm. A
 * member sees whose team they are on and their cap; anyone else can join a
 * team with an invite code.
 *
 *   team                      -> the owner's seats, a member's team, or Join
 *   team:invite               -> a new invite code and a message to pass on
 *   team:seat:<member>        -> one seat: used, cap; change cap, remove
 *   team:cap:<member>         -> cap choices -> team:setcap:<member>:<GB|none>
 *   team:remove:<member>      -> Confirm -> team:removeok:<member>
 *   team:join                 -> step team.invite: the code
 */
import { getAccountView } from '../../../core/accounts/index.js';
import { getPlan } from '../../../core/plans.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { joinTeamWithInvite, createSeatInvite } from '../../../core/team-invites.js';
import {
  getSeat,
  listSeatsWithUsage,
  removeSeat,
  seatsLeft,
  setSeatCaps,
  type SeatView,
} from '../../../core/team.js';
import { formatBytes } from '../../render/gauges.js';
import type { Journey, Turn } from '../conversation.js';
import type { Menu, MenuItem } from '../types.js';
import { day } from './billing.js';
import { when } from './usage.js';

const GB = 1_000_000_000;
/** Data caps an owner can give a seat, in GB (10^9 bytes) per quota period. */
const CAP_CHOICES_GB = [5, 20, 50, 100];

const item = (label: string, action: string): MenuItem => ({ label, action });

function backMenu(turn: Turn): Menu {
  return [[item(turn.t.team.backToTeam, 'team')], ...turn.t.backToMenu];
}

/** How a member (or owner) is named in the team: their email. */
async function nameOf(accountId: string): Promise<string> {
  const account = await getAccountView(accountId);
  return account.email ?? `member ${accountId.slice(-6)}`;
}

const capText = (capBytes: number | null) => (capBytes === null ? '' : formatBytes(capBytes));

async function overview(turn: Turn): Promise<void> {
  const t = turn.t.team;
  turn.endStep();
  const me = turn.account.id;
  const seat = await getSeat(me);
  if (seat) return memberView(turn, seat);
  const live = await getLiveSubscription(me);
  const plan = live && live.status !== 'pending_payment' ? await getPlan(live.planCode) : null;
  if (!plan || (plan.seats ?? 1) <= 1) {
    turn.text(t.notOnTeam, [
      [item(t.joinButton, 'team:join'), item(t.plansButton, 'plans')],
      ...turn.t.backToMenu,
    ]);
    return;
  }
  const now = turn.deps.clock.now();
  const [seats, free, pool] = await Promise.all([
    listSeatsWithUsage(me, now),
    seatsLeft(me),
    getQuotaUsage(me, now),
  ]);
  const names = await Promise.all(seats.map((s) => nameOf(s.memberAccountId)));
  const lines = [t.ownerTitle(plan.name, plan.seats ?? 1, free)];
  if (pool) {
    lines.push(
      t.pool(
        formatBytes(pool.usedBytes),
        formatBytes(pool.limitBytes + pool.carryOverBytes + pool.addedBytes),
        when(pool.periodEnd),
      ),
    );
  }
  lines.push('');
  if (seats.length === 0) {
    lines.push(t.noMembers);
  } else {
    lines.push(t.membersTitle);
    seats.forEach((s, i) =>
      lines.push(
        t.memberLine({
          name: names[i] ?? '',
          used: formatBytes(s.usedBytes),
          cap: capText(s.capBytes),
        }),
      ),
    );
  }
  const menu: Menu = seats.map((s, i) => [
    item(t.memberButton(names[i] ?? ''), `team:seat:${s.memberAccountId}`),
  ]);
  if (free > 0) menu.push([item(t.inviteButton, 'team:invite')]);
  menu.push(...turn.t.backToMenu);
  turn.text(lines.join('\n'), menu);
}

async function memberView(turn: Turn, seat: SeatView): Promise<void> {
  const t = turn.t.team;
  const lines = [t.memberOf(await nameOf(seat.ownerAccountId))];
  const counter =
    seat.capBytes === null ? null : await getQuotaUsage(turn.account.id, turn.deps.clock.now());
  if (seat.capBytes !== null && counter) {
    lines.push(
      t.memberCap(
        formatBytes(counter.usedBytes),
        formatBytes(seat.capBytes),
        when(counter.periodEnd),
      ),
    );
  } else if (seat.capBytes !== null) {
    lines.push(t.memberCap(formatBytes(0), formatBytes(seat.capBytes), '-'));
  } else {
    lines.push(t.memberNoCap);
  }
  turn.text(lines.join('\n'), [[item(t.connectButton, 'connect')], ...turn.t.backToMenu]);
}

/** The owner's seat of `member`, with its use, or null when it is gone. */
async function seatOf(turn: Turn, member: string) {
  const seats = await listSeatsWithUsage(turn.account.id, turn.deps.clock.now());
  return seats.find((s) => s.memberAccountId === member) ?? null;
}

async function showSeat(turn: Turn, member: string): Promise<void> {
  const t = turn.t.team;
  const seat = await seatOf(turn, member);
  if (!seat) {
    turn.text(t.notMember, backMenu(turn));
    return;
  }
  turn.text(
    t.seat({
      name: await nameOf(member),
      used: formatBytes(seat.usedBytes),
      cap: capText(seat.capBytes),
      since: day(seat.createdAt),
    }),
    [
      [item(t.capButton, `team:cap:${member}`), item(t.removeButton, `team:remove:${member}`)],
      ...backMenu(turn),
    ],
  );
}

async function chooseCap(turn: Turn, member: string): Promise<void> {
  const t = turn.t.team;
  turn.text(t.chooseCap(await nameOf(member)), [
    CAP_CHOICES_GB.map((gb) => item(t.capLabel(gb), `team:setcap:${member}:${gb}`)),
    [item(t.noCapLabel, `team:setcap:${member}:none`)],
    ...backMenu(turn),
  ]);
}

async function setCap(turn: Turn, member: string, choice: string): Promise<void> {
  const gb = CAP_CHOICES_GB.find((value) => String(value) === choice);
  if (gb === undefined && choice !== 'none') return chooseCap(turn, member);
  const seat = await setSeatCaps(
    turn.account.id,
    member,
    { capBytes: gb === undefined ? null : gb * GB },
    { clock: turn.deps.clock },
  );
  turn.text(turn.t.team.capSet(await nameOf(member), capText(seat.capBytes)), [
    [item(turn.t.team.memberButton(await nameOf(member)), `team:seat:${member}`)],
    ...backMenu(turn),
  ]);
}

async function askRemove(turn: Turn, member: string): Promise<void> {
  const t = turn.t.team;
  if (!(await seatOf(turn, member))) {
    turn.text(t.notMember, backMenu(turn));
    return;
  }
  turn.text(t.confirmRemove(await nameOf(member)), [
    [item(t.confirmButton, `team:removeok:${member}`), item(t.keepButton, 'team')],
  ]);
}

async function remove(turn: Turn, member: string): Promise<void> {
  const name = await nameOf(member);
  await removeSeat(turn.account.id, member, { clock: turn.deps.clock });
  turn.text(turn.t.team.removed(name), backMenu(turn));
}

async function invite(turn: Turn): Promise<void> {
  const t = turn.t.team;
  const created = await createSeatInvite(turn.account.id, {}, { clock: turn.deps.clock });
  turn.text(t.invite(created.code, when(created.expiresAt)));
  turn.text(t.inviteMessage(created.code), backMenu(turn));
}

async function join(turn: Turn, code: string): Promise<void> {
  const seat = await joinTeamWithInvite(turn.account.id, code, { clock: turn.deps.clock });
  turn.endStep();
  turn.text(turn.t.team.joined(await nameOf(seat.ownerAccountId)), [
    [item(turn.t.team.connectButton, 'connect')],
    ...turn.t.backToMenu,
  ]);
}

export const teamJourney: Journey = {
  actions: {
    async team(turn) {
      // A button of this journey keeps its step (conversation.ts); none of these continues one.
      turn.endStep();
      const [sub, member = '', choice = ''] = turn.args;
      switch (sub) {
        case 'invite':
          return invite(turn);
        case 'seat':
          return showSeat(turn, member);
        case 'cap':
          return chooseCap(turn, member);
        case 'setcap':
          return setCap(turn, member, choice);
        case 'remove':
          return askRemove(turn, member);
        case 'removeok':
          return remove(turn, member);
        case 'join':
          // `team:join:<code>` comes from an invite link (/start join_<code>).
          if (member) return join(turn, member);
          turn.ask('team.invite', turn.t.team.askInvite);
          return;
        default:
          return overview(turn);
      }
    },
  },
  steps: {
    'team.invite': join,
  },
};
