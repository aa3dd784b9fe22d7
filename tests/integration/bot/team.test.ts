/**
 * The team journey with real accounts, payments and the database: a Team
 * plan owner invites a member with a code, the member joins from their own
 * chat, and the owner sees them, caps them and removes them.
 */
import { describe, expect, it } from '@jest/globals';
import { getSeat, listSeats } from '../../../core/team.js';
import { ChatState } from '../../../models/chat-state.js';
import { Payment } from '../../../models/payment.js';
import type { Outbound } from '../../../bot/core/types.js';
import { useTestDatabase } from '../../support/database.js';
import { textOf, useBotHarness, type ChatUser } from '../../support/bot.js';

useTestDatabase();
const h = useBotHarness();
const GB = 1_000_000_000;

/** A signed-up customer who bought `planCode` through the link the bot sent. */
async function customerOn(planCode: string, email?: string): Promise<ChatUser> {
  const user = await h.signedUp(email);
  await user.press('Plans');
  const answer = await user.press(`buy:${planCode}`);
  const link = answer.find((m): m is Extract<Outbound, { kind: 'link' }> => m.kind === 'link');
  if (!link) throw new Error(`no payment link: ${textOf(answer)}`);
  const payment = await Payment.findOne({ authorizationUrl: link.url }).lean().orFail();
  await h.payments.payAndSettle(payment.reference);
  return user;
}

async function accountOf(user: ChatUser): Promise<string> {
  const state = await ChatState.findOne({ externalId: user.identity.externalId }).lean();
  if (!state?.accountId) throw new Error('no account in chat state');
  return String(state.accountId);
}

describe('a team', () => {
  it('is joined with the owner’s invite code, listed with its use, capped, and left after the owner removes the member', async () => {
    const ownerEmail = `owner${Math.floor(Math.random() * 1e6)}@example.com`;
    const owner = await customerOn('team', ownerEmail);
    const ownerId = await accountOf(owner);
    await owner.command('billing');
    const empty = textOf(await owner.press('Team'));
    expect(empty).toContain('Your team (Team plan): 5 seats, one of them yours; 4 free.');
    expect(empty).toContain('No members yet.');

    const invite = await owner.press('Invite a member');
    const code = /Invite code: ([A-Z2-9]{4}-[A-Z2-9]{4})/.exec(textOf(invite))?.[1] ?? '';
    expect(code).not.toBe('');
    expect(textOf(invite)).toContain(`Join a team and type ${code}`);

    // The member: their own chat and account, no plan.
    const memberEmail = `member${Math.floor(Math.random() * 1e6)}@example.com`;
    const member = await h.signedUp(memberEmail);
    const memberId = await accountOf(member);
    await member.command('account');
    expect(textOf(await member.press('Team'))).toContain('You are not on a team.');
    expect(textOf(await member.press('Join a team'))).toContain('Type the invite code');
    expect(textOf(await member.send(code.toLowerCase()))).toContain(
      `Welcome to ${ownerEmail}'s team ✅`,
    );
    expect(await getSeat(memberId)).toMatchObject({ ownerAccountId: ownerId });

    // The owner sees them, with their use this period.
    const listed = textOf(await owner.command('billing').then(() => owner.press('Team')));
    expect(listed).toContain('3 free.');
    expect(listed).toContain(`• ${memberEmail}: 0 B, no cap of their own`);

    await owner.press(memberEmail);
    await owner.press('Change data cap');
    expect(textOf(await owner.press('20 GB'))).toContain(
      `Done: ${memberEmail} may use up to 20 GB per period.`,
    );
    expect((await getSeat(memberId))?.capBytes).toBe(20 * GB);
    const memberView = textOf(await member.command('account').then(() => member.press('Team')));
    expect(memberView).toContain(`You are on ${ownerEmail}'s team`);
    expect(memberView).toContain('of your 20 GB cap');

    // Removing asks first.
    await owner.press(memberEmail);
    expect(textOf(await owner.press('Remove from the team'))).toContain(
      `Remove ${memberEmail} from your team?`,
    );
    expect(await getSeat(memberId)).not.toBeNull();
    expect(textOf(await owner.press('Confirm'))).toContain(
      `Done: ${memberEmail} is no longer on your team.`,
    );
    expect(await getSeat(memberId)).toBeNull();
    expect(await listSeats(ownerId)).toEqual([]);
    expect(textOf(await owner.press('⬅️ Team'))).toContain('No members yet.');
  });

  it('refuses an invite code that was already used, and keeps the second person off the team', async () => {
    const owner = await customerOn('team');
    await owner.command('billing');
    await owner.press('Team');
    const invite = await owner.press('Invite a member');
    const code = /Invite code: ([A-Z2-9]{4}-[A-Z2-9]{4})/.exec(textOf(invite))?.[1] ?? '';

    const first = await h.signedUp();
    await first.command('account');
    await first.press('Team');
    await first.press('Join a team');
    expect(textOf(await first.send(code))).toContain('team ✅');

    const second = await h.signedUp();
    await second.command('account');
    await second.press('Team');
    await second.press('Join a team');
    expect(textOf(await second.send(code))).toContain(
      'That invite has already been used. Ask the team owner for a new one.',
    );
    expect(await getSeat(await accountOf(second))).toBeNull();
  });
});
