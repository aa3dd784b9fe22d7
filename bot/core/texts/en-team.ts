/** English for the team journey (bot/core/journeys/team.ts). */

export const teamTexts = {
  // --- the owner's view --------------------------------------------------------
  ownerTitle: (plan: string, seats: number, free: number) =>
    `Your team (${plan} plan): ${seats} seats, one of them yours; ${free} free.`,
  pool: (used: string, limit: string, resets: string) =>
    `Shared data: ${used} of ${limit} used this period (resets ${resets}).`,
  membersTitle: 'Members (data used this period):',
  memberLine: (m: { name: string; used: string; cap: string }) =>
    `• ${m.name}: ${m.used}${m.cap ? ` of a ${m.cap} cap` : ', no cap of their own'}`,
  noMembers: 'No members yet. Invite one: each gets their own proxy password.',
  inviteButton: '➕ Invite a member',
  memberButton: (name: string) => `👤 ${name}`,
  backToTeam: '⬅️ Team',

  // --- one seat -------------------------------------------------------------------
  seat: (m: { name: string; used: string; cap: string; since: string }) =>
    `${m.name}, on your team since ${m.since}.\nUsed this period: ${m.used}.\nData cap: ${m.cap || 'none (the team pool only)'}.`,
  capButton: '📏 Change data cap',
  removeButton: '➖ Remove from the team',
  chooseCap: (name: string) =>
    `How much data may ${name} use per period? It counts against the team's shared data too.`,
  capLabel: (gb: number) => `${gb} GB`,
  noCapLabel: 'No cap',
  capSet: (name: string, cap: string) =>
    cap
      ? `Done: ${name} may use up to ${cap} per period.`
      : `Done: ${name} has no cap of their own.`,
  confirmRemove: (name: string) =>
    `Remove ${name} from your team? Their proxy stops working within a minute; their account stays. You can invite them again later.`,
  confirmButton: '✅ Confirm',
  keepButton: 'Keep them',
  removed: (name: string) => `Done: ${name} is no longer on your team.`,
  notMember: 'That person is not on your team any more.',

  // --- invites ---------------------------------------------------------------------
  invite: (code: string, until: string) =>
    `Invite code: ${code}\n\nIt works once, until ${until}. Send your team member this:`,
  inviteMessage: (code: string) =>
    `Join my Atlantic team: open the Atlantic bot on Telegram or WhatsApp, sign up, then tap ⚙️ Account → 👥 Team → Join a team and type ${code}.`,

  // --- the member's view and joining ------------------------------------------------
  memberOf: (owner: string) => `You are on ${owner}'s team: your proxy runs on their plan.`,
  memberCap: (used: string, cap: string, resets: string) =>
    `Your data this period: ${used} of your ${cap} cap (resets ${resets}).`,
  memberNoCap: "You have no cap of your own: you share the team's data.",
  notOnTeam:
    'You are not on a team. Got an invite code from a team owner? Tap Join a team. Want a team of your own? The Team plan has seats for 5.',
  joinButton: '🎟 Join a team',
  plansButton: '🛒 See plans',
  askInvite: 'Type the invite code the team owner gave you, e.g. ABCD-EFGH. (/cancel to stop)',
  joined: (owner: string) =>
    `Welcome to ${owner}'s team ✅ Tap Connect to get your own proxy address and password.`,
  connectButton: '🔌 Connect',
};
