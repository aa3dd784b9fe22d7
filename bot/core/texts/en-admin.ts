/** English for the admin commands (bot/core/journeys/admin.ts) and broadcasts. */

export const adminTexts = {
  // --- the frame ----------------------------------------------------------------
  help: [
    'Admin commands (type them; every one is recorded in the audit log):',
    '/stats: customers, plans, revenue, tunnels, data today',
    '/user <email|account id|phone>: one customer (tg:<id> or wa:<number> to be exact)',
    '/grant <user> <N>GB [reason]: extra data this period',
    '/grant <user> <N>d [reason]: days added to the plan',
    '/suspend <user> [reason] · /unsuspend <user>',
    '/refund <payment ref> [amount] [card|wallet] [endplan] [reason]',
    '/payments [recent|failed|flagged] [count]',
    '/locations · /locations add <code> <country> <label> · /locations remove <code>',
    '/upstreams [health|<location>]',
    '/upstreams add <location> <id> <socks5|http|direct> [host:port] [user:password]',
    '/upstreams remove <location> <id> · /upstreams healthy <location> <id>',
    '/plans · /plans <code> price <amount> · /plans <code> quota <N>GB',
    '/settings · /settings <name> <value>',
    '/broadcast <all|payg|past_due|plan:<code>> <message>',
    '/admins · /admins add <user> · /admins remove <user>',
  ].join('\n'),
  usage: (syntax: string) => `Usage: ${syntax}`,
  confirmButton: '✅ Confirm',
  cancelButton: '✖️ Cancel',
  cancelled: 'Cancelled. Nothing was changed.',
  expired:
    'That confirmation is no longer open (used, or replaced by another command). Run the command again.',
  tapConfirm: 'Tap ✅ Confirm or ✖️ Cancel (or /cancel).',
  done: '✅ Done.',

  // --- /stats ---------------------------------------------------------------------
  stats: (s: {
    at: string;
    customers: number;
    signedUp: number;
    suspended: number;
    plans: string[];
    revenue: { label: string; inText: string; refundedText: string }[];
    tunnels: number;
    tunnelAccounts: number;
    bytesToday: string;
  }) =>
    [
      `📈 Atlantic at ${s.at}`,
      `Customers: ${s.customers} (${s.signedUp} signed up, ${s.suspended} suspended)`,
      'Live subscriptions:',
      ...(s.plans.length ? s.plans : ['  none']),
      'Money in (refunds out):',
      ...s.revenue.map((r) => `  ${r.label}: ${r.inText} (${r.refundedText})`),
      `Tunnels open now: ${s.tunnels} (${s.tunnelAccounts} customers)`,
      `Data relayed today (UTC): ${s.bytesToday}`,
    ].join('\n'),
  statsPlanLine: (plan: string, live: number, pastDue: number) =>
    `  ${plan}: ${live}${pastDue ? ` (${pastDue} past due)` : ''}`,
  revenueToday: 'today',
  revenue7: '7 days',
  revenue30: '30 days',
  nothing: '0',
  refreshButton: '🔄 Refresh',

  // --- /user -----------------------------------------------------------------------
  user: (u: {
    email: string;
    id: string;
    status: string;
    roles: string;
    chats: string;
    since: string;
    plan: string;
    usage: string;
    wallet: string;
    proxy: string;
    tunnels: number;
    flags: string[];
    payments: string[];
    told: string[];
  }) =>
    [
      `👤 ${u.email}`,
      `Account ${u.id}: ${u.status}${u.roles ? `, ${u.roles}` : ''}, since ${u.since}`,
      `Chats: ${u.chats}`,
      `Plan: ${u.plan}`,
      `Data: ${u.usage}`,
      `Wallet: ${u.wallet}`,
      `Proxy: ${u.proxy}, ${u.tunnels} tunnel${u.tunnels === 1 ? '' : 's'} open`,
      ...(u.flags.length ? ['Flags:', ...u.flags] : []),
      'Latest payments:',
      ...(u.payments.length ? u.payments : ['  none']),
      'Last told:',
      ...(u.told.length ? u.told : ['  nothing yet']),
    ].join('\n'),
  /** One notification in /user: "  26 Nov 14:05 UTC usage_80: telegram sent, email failed (550 …)". */
  toldLine: (at: string, event: string, channels: string) => `  ${at} ${event}: ${channels}`,
  noEmail: '(no email yet)',
  noChats: 'none',
  noPlan: 'none',
  noUsage: 'no data window open',
  noWallet: 'none',
  noProxy: 'no credentials yet',
  planLine: (p: { code: string; status: string; until: string }) =>
    `${p.code} (${p.status.replace('_', ' ')}${p.until ? `, until ${p.until}` : ''})`,
  seatOf: (owner: string) => `a seat on team ${owner}`,
  usageLine: (used: string, limit: string, resets: string) =>
    `${used} of ${limit} (until ${resets})`,
  flagLine: (kind: string, reason: string, at: string) => `  • ${kind}: ${reason} (${at})`,
  paymentLine: (p: {
    reference: string;
    amount: string;
    status: string;
    what: string;
    at: string;
    refunded: string;
    needsReview?: boolean;
    who?: string;
    flag?: string;
  }) =>
    `  • ${p.reference}: ${p.amount} ${p.status}${p.needsReview ? ' (needs review)' : ''}, ${p.what}, ${p.at}${p.refunded ? `, ${p.refunded} refunded` : ''}${p.who ? `, ${p.who}` : ''}${p.flag ? `\n    ⚠️ ${p.flag}` : ''}`,
  suspendButton: '⛔ Suspend',
  unsuspendButton: '✅ Unsuspend',

  // --- /grant ---------------------------------------------------------------------
  grantSyntax: '/grant <user> <N>GB [reason] or /grant <user> <N>d [reason]',
  confirmGrantData: (who: string, amount: string) =>
    `Give ${who} ${amount} of extra data for this period?`,
  confirmGrantDays: (who: string, days: number) =>
    `Add ${days} day${days === 1 ? '' : 's'} to ${who}'s plan?`,
  grantedData: (who: string, amount: string, left: string) =>
    `✅ ${who} got ${amount}. Data left this period: ${left}.`,
  grantedDays: (who: string, days: number, until: string, changed: boolean) =>
    changed
      ? `✅ ${who}'s plan now runs until ${until} (+${days} day${days === 1 ? '' : 's'}).`
      : `This was done already: ${who}'s plan runs until ${until}.`,

  // --- /suspend /unsuspend -------------------------------------------------------
  suspendSyntax: '/suspend <user> [reason]',
  unsuspendSyntax: '/unsuspend <user>',
  confirmSuspend: (who: string, reason: string) =>
    `Suspend ${who}? Their proxy stops at once (open connections are cut) and new ones are refused until you unsuspend them. Plan, wallet and data are kept.${reason ? `\nReason: ${reason}` : ''}`,
  confirmUnsuspend: (who: string) => `Unsuspend ${who}? Their proxy works again at once.`,
  suspended: (who: string, changed: boolean) =>
    changed
      ? `⛔ ${who} is suspended; their tunnels are being cut.`
      : `${who} was suspended already.`,
  unsuspended: (who: string, changed: boolean) =>
    changed ? `✅ ${who} is active again.` : `${who} was not suspended.`,

  // --- /refund ---------------------------------------------------------------------
  refundSyntax: '/refund <payment ref> [amount] [card|wallet] [endplan] [reason]',
  defaultRefundReason: 'Refunded by an admin',
  nothingToRefund: (reference: string, status: string) =>
    `Payment ${reference} has nothing left to refund (it is ${status}).`,
  confirmRefund: (r: {
    reference: string;
    amount: string;
    of: string;
    who: string;
    to: string;
    reason: string;
    endPlan: boolean;
  }) =>
    `Refund ${r.amount} of ${r.of} (payment ${r.reference}, ${r.who}) ${r.to}?\nReason: ${r.reason}${r.endPlan ? '\nThe plan this payment bought also ends now.' : ''}`,
  refundTo: (method: string) => (method === 'wallet' ? "to the customer's wallet" : 'to the card'),
  refunded: (amount: string, state: string) => `✅ Refund of ${amount}: ${state}.`,

  // --- /payments ----------------------------------------------------------------------
  paymentsTitle: (filter: string, count: number) =>
    count === 0 ? `No ${filter} payments.` : `Latest ${filter} payments:`,
  recentButton: 'Recent',
  failedButton: 'Failed',
  flaggedButton: 'Flagged',

  // --- /locations /upstreams ---------------------------------------------------------
  locationsSyntax:
    '/locations · /locations add <code> <country> <label> · /locations remove <code>',
  noLocations: 'No locations yet. Add one: /locations add ng ng Nigeria (Lagos)',
  locationLine: (l: { code: string; label: string; healthy: number; total: number }) =>
    `• ${l.code}: ${l.label}, ${l.healthy}/${l.total} upstreams healthy`,
  locationAdded: (code: string) =>
    `✅ Location ${code} added. Add its upstreams: /upstreams add ${code} <id> <socks5|http|direct> [host:port]`,
  confirmRemoveLocation: (code: string, label: string) =>
    `Remove location ${code} (${label})? Customers who use it get "unknown location" from then on.`,
  locationRemoved: (code: string) => `✅ Location ${code} removed.`,
  upstreamsSyntax:
    '/upstreams [health|<location>] · /upstreams add <location> <id> <socks5|http|direct> [host:port] [user:password] · /upstreams remove <location> <id> · /upstreams healthy <location> <id>',
  upstreamsTitle: (code: string, label: string) => `${code} (${label}):`,
  upstreamLine: (u: {
    id: string;
    kind: string;
    address: string;
    healthy: boolean;
    failures: number;
    error: string;
    retry: string;
  }) =>
    `  ${u.healthy ? '🟢' : '🔴'} ${u.id} ${u.kind}${u.address ? ` ${u.address}` : ''}${u.healthy ? '' : `: ${u.failures} failure${u.failures === 1 ? '' : 's'}${u.error ? `, ${u.error}` : ''}${u.retry ? `, retried ${u.retry}` : ''}`}`,
  noUpstreams: '  no upstreams',
  allHealthy: '🟢 Every upstream is healthy.',
  upstreamAdded: (code: string, id: string) => `✅ Upstream ${id} added to ${code}.`,
  confirmRemoveUpstream: (code: string, id: string) =>
    `Remove upstream ${id} from ${code}? Tunnels already open through it keep running.`,
  upstreamRemoved: (code: string, id: string) => `✅ Upstream ${id} removed from ${code}.`,
  upstreamHealthy: (code: string, id: string) =>
    `✅ ${code}/${id} marked healthy: gateways use it again within a second.`,
  healthButton: '🩺 Health',

  // --- /plans ------------------------------------------------------------------------
  plansSyntax: '/plans <code> price <amount> · /plans <code> quota <N>GB',
  planLineAdmin: (p: {
    code: string;
    name: string;
    price: string;
    quota: string;
    version: number;
    onSale: boolean;
  }) =>
    `• ${p.code} (${p.name}): ${p.price}; ${p.quota}; version ${p.version}${p.onSale ? '' : '; not on sale'}`,
  planEditHint:
    'Edit for new subscriptions (running ones keep theirs until they renew): /plans <code> price <amount> · /plans <code> quota <N>GB',
  customerViewButton: '🛒 Customer view',
  noPrice: 'no price',
  noQuota: 'no data cap',
  confirmPlanEdit: (code: string, what: string, from: string, to: string) =>
    `Change the ${what} of ${code} from ${from} to ${to}? New subscriptions get it; running ones keep theirs until they renew.`,
  priceWord: 'price',
  hourlyWord: 'hourly rate',
  quotaWord: 'data quota',
  planEdited: (code: string, version: number) => `✅ ${code} saved (now version ${version}).`,

  // --- /settings ---------------------------------------------------------------------
  settingsTitle: (version: number) => `Business settings (version ${version}):`,
  settingLine: (path: string, value: string) => `• ${path}: ${value}`,
  settingsHint: 'Change one: /settings <name> <value>, e.g. /settings graceDays 5',
  confirmSetting: (path: string, from: string, to: string) =>
    `Change ${path} from ${from} to ${to}?`,
  settingSaved: (path: string, value: string, version: number) =>
    `✅ ${path} is now ${value} (settings version ${version}).`,
  unset: '(not set)',

  // --- /broadcast -----------------------------------------------------------------------
  broadcastSyntax: '/broadcast <all|payg|past_due|plan:<code>> <message>',
  broadcastNobody: (segment: string) => `Nobody is in ${segment} right now; nothing to send.`,
  confirmBroadcast: (count: number, segment: string, text: string) =>
    `Send this to ${count} customer${count === 1 ? '' : 's'} (${segment})?\n\n${text}`,
  broadcastQueued: (count: number) =>
    `✅ Queued for ${count} customer${count === 1 ? '' : 's'}; it goes out over the next minutes.`,
  broadcastNotice: (text: string) => `📣 ${text}`,

  // --- /admins -------------------------------------------------------------------------
  adminsSyntax: '/admins · /admins add <user> · /admins remove <user>',
  adminsTitle: 'Admins:',
  adminLine: (a: { name: string; chats: string; configured: boolean; status: string }) =>
    `• ${a.name}${a.chats ? ` (${a.chats})` : ''}${a.configured ? ', from configuration' : ''}${a.status && a.status !== 'active' ? `, ${a.status}` : ''}`,
  notWrittenYet: 'has not written to the bot yet',
  confirmAddAdmin: (who: string) =>
    `Make ${who} an admin? They can then run every admin command, refunds included.`,
  confirmRemoveAdmin: (who: string) => `Remove ${who} from the admins?`,
  adminAdded: (who: string, changed: boolean) =>
    changed ? `✅ ${who} is an admin now.` : `${who} was an admin already.`,
  adminRemoved: (who: string, changed: boolean) =>
    changed ? `✅ ${who} is no longer an admin.` : `${who} was not an admin.`,
};
