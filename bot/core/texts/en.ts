/**
 * English: every sentence the bots say (bot/core/texts/index.ts). Functions
 * take the figures and return finished text; menus are data (label + action).
 */
import type { AccountView } from '../../../core/accounts/index.js';
import type { Menu } from '../types.js';
import { accountTexts } from './en-account.js';
import { adminTexts } from './en-admin.js';
import { billingTexts } from './en-billing.js';
import { teamTexts } from './en-team.js';

const b = (label: string, action: string) => ({ label, action });

export const en = {
  // --- the frame -----------------------------------------------------------
  mainMenu(account: AccountView | null, options: { team?: boolean } = {}): Menu {
    if (!account || !account.emailVerified || account.termsAcceptedAt === null) {
      return [[b('Sign up', 'signup'), b('Help', 'help')]];
    }
    return [
      [b('🔌 Connect', 'connect'), b('📊 Usage', 'usage')],
      [b('🛒 Plans', 'plans'), b('💳 Billing', 'billing')],
      [b('❓ Why did my proxy fail?', 'why'), b('🔐 Security', 'security')],
      options.team
        ? [b('👥 Team', 'team'), b('⚙️ Account', 'account')]
        : [b('⚙️ Account', 'account')],
      [b('Help', 'help')],
    ];
  },
  backToMenu: [[b('⬅️ Menu', 'menu')]] as Menu,
  menuTitle: 'What would you like to do?',
  unknownCommand: (command: string) => `I don't know /${command}. Here is what I can do:`,
  noSuchChoice: (number: number, count: number) =>
    count === 0
      ? `There is no choice ${number} here. Pick from the menu:`
      : `Choose a number from 1 to ${count}, or 0 for the menu.`,
  notUnderstood: "I didn't get that. Pick from the menu, or type /help.",
  staleButton: 'That button is from an older message. Here is the menu:',
  cancelled: 'Cancelled. Nothing was changed.',
  nothingToCancel: 'There was nothing to cancel.',
  refused: (message: string) => message,
  slowDown: 'You are sending messages very fast; give me a few seconds.',
  commandDescriptions: {
    start: 'Start or sign up',
    menu: 'Main menu',
    plans: 'Plans and prices',
    connect: 'Proxy address and password',
    usage: 'Data used and left',
    why: 'Why did my proxy fail?',
    billing: 'Plan, wallet, invoices, cancel',
    account: 'Email, linked chats, notifications',
    team: 'Team seats and invites',
    help: 'What I can do',
    cancel: 'Stop what you are doing',
  } as Record<string, string>,
  somethingWentWrong: (reference: string) =>
    `Sorry, something went wrong on our side. Nothing was charged twice. Try again in a minute; if it keeps happening, contact support and quote reference ${reference}.`,

  // --- start and sign-up ---------------------------------------------------
  welcome:
    'Welcome to Atlantic: fast SOCKS5 and HTTP(S) proxies in several countries, paid by card or bank transfer through Paystack, all from this chat.',
  welcomeBack: (email: string) => `Welcome back! You are signed in as ${email}.`,
  askEmail:
    "To get started, what's your email address? (We send receipts and a 6-digit code there.)",
  codeSent: (email: string, minutes: number) =>
    `I sent a 6-digit code to ${email}. Type it here (it expires in ${minutes} minutes). Wrong address? Type /cancel and start again.`,
  wrongCode: (attemptsLeft: number) =>
    attemptsLeft > 0
      ? `That code is not right. ${attemptsLeft} attempt${attemptsLeft === 1 ? '' : 's'} left.`
      : 'That code is not right, and it is now used up. Type your email again for a new code.',
  codeExpired: 'That code has expired. Type your email again for a new code.',
  resendMenu: [[b('Send a new code', 'signup:resend'), b('Use another email', 'signup')]] as Menu,
  termsPrompt:
    'Email verified ✅\n\nLast step: our terms. You may use Atlantic for lawful traffic only: no spam, no attacks, no access to systems you are not allowed to use. We keep payment records as the law requires and usage totals (not what you browse). Do you agree?',
  termsMenu: [[b('I agree', 'terms:accept')]] as Menu,
  firstRunGuide:
    "You're all set. What to do first:\n1. Pick a plan (or try one for 3 days against a refundable deposit).\n2. Pay with the link I send you; the confirmation arrives here.\n3. Tap Connect to get your proxy address, username and password.",
  firstRunMenu: [
    [b('🛒 See plans', 'plans'), b('🎁 Start a trial', 'trial')],
    [b('⬅️ Menu', 'menu')],
  ] as Menu,

  // --- help ----------------------------------------------------------------
  help: 'Atlantic sells proxies you control from this chat.\n\n/connect: your proxy address and password\n/usage: data used and left\n/why: why a connection failed, and what to do\n/plans: plans and prices\n/billing: plan, renewal, wallet, invoices, cancel\n/account: email, linked WhatsApp, notifications, delete\n/cancel: stop what you are doing\n\nIn any menu you can also type the number of a choice.',

  // --- plans ---------------------------------------------------------------
  plansTitle: 'Our plans:',
  planBlock: (row: {
    name: string;
    price: string;
    data: string;
    locations: string;
    protocols: string;
    maxConnections: number;
    seats: number;
    description: string;
  }) =>
    [
      `${row.name}: ${row.price}`,
      `  Data: ${row.data}`,
      `  Protocols: ${row.protocols}`,
      `  Locations: ${row.locations}`,
      `  Connections at once: ${row.maxConnections}${row.seats > 1 ? `, ${row.seats} members` : ''}`,
    ].join('\n'),
  buyLabel: (name: string) => `Buy ${name}`,
  trialLabel: 'Start a trial',
  paygLabel: 'Pay as you go (top up)',
  alreadyOnPlan: (plan: string) =>
    `You already have ${plan}. To move to another plan, use Billing → Change plan.`,

  // --- paying --------------------------------------------------------------
  payLink: (what: string, amount: string) =>
    `${what}: ${amount}. Tap the button to pay on Paystack (card, bank transfer or USSD). I'll confirm here as soon as the payment arrives.`,
  payButton: (amount: string) => `Pay ${amount}`,
  reusedLink: 'You already had a payment link open for this; here it is again.',
  planPurchase: (plan: string) => `${plan} plan`,
  trialPurchase: (days: number) => `Trial deposit (refunded when the ${days}-day trial ends)`,
  topupPurchase: 'Wallet top-up',
  topupAsk: 'How much would you like to add to your wallet?',
  topupOtherAsk: (min: string, max: string) => `Type the amount in naira (from ${min} to ${max}):`,
  topupBadAmount: (min: string, max: string) =>
    `Please type a whole amount from ${min} to ${max}, e.g. 2500.`,
  topupOther: 'Other amount',

  // --- connect -------------------------------------------------------------
  noPlan: "You don't have a plan yet. Choose one to get proxy access:",
  noPlanMenu: [[b('🛒 See plans', 'plans'), b('🎁 Start a trial', 'trial')]] as Menu,
  accessOff: (message: string) => message,
  chooseLocation: 'Choose an exit location:',
  chooseLocationToKeep: (count: number) =>
    count === 1
      ? 'Your plan includes one location. Choose it (you keep it for this plan):'
      : `Your plan includes ${count} locations. Choose one to add (you keep it for this plan):`,
  chooseProtocol: (location: string) => `Location: ${location}. Now choose a protocol:`,
  lockedProtocol: (protocol: string) => `🔒 ${protocol}`,
  lockedExplained: (lines: string[]) =>
    `Locked on your plan:\n${lines.map((l) => `• ${l}`).join('\n')}`,
  credentials: (c: {
    protocol: string;
    host: string;
    port: number;
    username: string;
    password: string | null;
    url: string | null;
    location: string;
    sticky: boolean;
  }) =>
    [
      `Your ${c.protocol} proxy (${c.location}${c.sticky ? ', sticky session' : ''}):`,
      `Host: ${c.host}`,
      `Port: ${c.port}`,
      `Username: ${c.username}`,
      c.password
        ? `Password: ${c.password}`
        : 'Password: shown once when it was made. Lost it? Tap New password (open connections are cut).',
      c.url ? `\nReady to paste:\n${c.url}` : '',
      c.password ? '\nKeep the password private: anyone with it uses your data.' : '',
    ]
      .filter((line) => line !== '')
      .join('\n'),
  qrCaption: 'Scan to set up the proxy on a phone.',
  howToUse: (testCommand: string) =>
    `How to use it:\n• Browser: a proxy extension (e.g. SwitchyOmega / FoxyProxy) with the host, port, username and password above.\n• Phone: Wi-Fi settings → Proxy → Manual.\n• Test from a terminal:\n${testCommand}`,
  connectMenu: [
    [b('🔁 New IP', 'newip'), b('📌 Sticky session', 'connect:sticky')],
    [b('🔑 New password', 'security:rotate'), b('⏸ Disconnect', 'disconnect')],
    [b('⬅️ Menu', 'menu')],
  ] as Menu,
  disconnected:
    'Disconnected: your open connections are closed and new ones are refused until you tap Connect.',
  reconnected: 'Connected again: your proxy works.',
  newIp: 'Done: your next connections use a new exit IP.',

  // --- usage ---------------------------------------------------------------
  usageQuota: (u: { bar: string; used: string; left: string; limit: string; resets: string }) =>
    `Data this period: ${u.bar}\nUsed ${u.used} of ${u.limit}, ${u.left} left.\nResets ${u.resets}.`,
  usageNoQuota: 'Pay as you go: no data cap; each connected hour is paid from your wallet.',
  usageConnected: (hours: string) => `Connected this period: ${hours}.`,
  usagePayg: (summary: string) => `PAYG cost: ${summary}`,
  usageSessionsTitle: 'Recent sessions:',
  usageSession: (s: { when: string; bytes: string; duration: string; locations: string }) =>
    `• ${s.when}: ${s.bytes} in ${s.duration} (${s.locations})`,
  usageNoSessions: 'No sessions yet.',
  usageMenu: [
    [b('📈 7-day chart', 'usage:chart:7'), b('📈 30-day chart', 'usage:chart:30')],
    [b('⬅️ Menu', 'menu')],
  ] as Menu,
  chartCaption: (days: number, total: string) => `Your usage, last ${days} days: ${total}.`,

  // --- why did my proxy fail -----------------------------------------------
  whyNone:
    'No failed connections recently. If something does not work, check the host, port, username and password in Connect.',
  whyTitle: 'Your last failed connections:',
  whyLine: (r: { when: string; what: string; count: number }) =>
    `• ${r.when}: ${r.what}${r.count > 1 ? ` (${r.count} times)` : ''}`,
  whyNow: (message: string) => `Right now: ${message}`,
  whyFine: 'Right now your proxy is working.',

  // --- security ------------------------------------------------------------
  securityNone: (username: string) => `No failed logins on ${username} recently. 🔒`,
  securityTitle: (username: string) => `Failed logins on ${username}:`,
  securityLine: (f: { when: string; ip: string; reason: string; attempts: number }) =>
    `• ${f.when} from ${f.ip}: ${f.reason}${f.attempts > 1 ? ` (${f.attempts} tries)` : ''}`,
  securityAdvice:
    "If these weren't you, get a new password: the old one stops at once and open connections are cut.",
  securityMenu: [[b('🔑 New password', 'security:rotate')], [b('⬅️ Menu', 'menu')]] as Menu,
  rotated: (username: string, password: string) =>
    `New password for ${username}:\n${password}\n\nThe old one no longer works; reconnect your apps with this one.`,
  noCredentialsYet: 'You have no proxy credentials yet: tap Connect to get them.',

  // --- notifications (bot/core/notices.ts) ----------------------------------
  notice: {
    paymentConfirmed: (purpose: string, amount: string, planCode: string, description: string) => {
      switch (purpose) {
        case 'plan':
          return `✅ Payment received: ${amount}. Your ${planCode} plan is active. Tap Connect to get your proxy.`;
        case 'trial_deposit':
          return `✅ Deposit received: ${amount}. Your trial has started; the deposit comes back when it ends.`;
        case 'wallet_topup':
          return `✅ Top-up received: ${amount} is in your wallet.`;
        case 'renewal':
          return `✅ Renewal paid: ${amount}. Your ${planCode} plan continues.`;
        default:
          return `✅ Payment received: ${amount}${description ? ` (${description})` : ''}.`;
      }
    },
    invoiceCaption: (number: string) => `Your receipt ${number}`,
    paymentFailed: (amount: string, reason: string, graceEndsAt: string) =>
      `❌ Your payment of ${amount} did not go through${reason ? ` (${reason})` : ''}.${graceEndsAt ? ` Pay before ${graceEndsAt} to keep your plan.` : ' You can try again.'}`,
    paymentFlagged: (amount: string) =>
      `We received a payment of ${amount} that we need to check by hand. Nothing is lost; we will be in touch shortly.`,
    trialStarted: '🎁 Your trial has started. Tap Connect to get your proxy.',
    trialRefused: (deposit: string) =>
      `You have had a trial before, so this one cannot start. Your deposit of ${deposit} is on its way back.`,
    trialEnding: (endsAt: string) =>
      `Your trial ends ${endsAt ? `on ${endsAt}` : 'soon'}. Pick a plan to keep your proxy.`,
    depositRefunded: (amount: string, method: string) =>
      `💸 Your deposit of ${amount} was returned ${method === 'wallet' ? 'to your wallet' : 'to your card (it can take a few working days to show)'}.`,
    refundProcessed: (amount: string, method: string) =>
      `💸 A refund of ${amount} was made ${method === 'wallet' ? 'to your wallet' : 'to your card (it can take a few working days to show)'}.`,
    renewalDue: (planCode: string, periodEnd: string, amount: string, savedCard: boolean) =>
      savedCard
        ? `Your ${planCode} plan renews on ${periodEnd} for ${amount}, charged to your saved card.`
        : `Your ${planCode} plan renews on ${periodEnd} for ${amount}. You have no saved card: you will get a payment link that day.`,
    usage: (percent: number, resets: string) =>
      percent >= 100
        ? `You have used all the data of this period${resets ? `; it resets on ${resets}` : ''}. Upgrade or buy extra data to continue now.`
        : `You have used ${percent} % of this period's data${resets ? ` (resets on ${resets})` : ''}.`,
    walletLow: (balance: string) =>
      `Your wallet is low: ${balance} left. Top up to keep your proxy running.`,
    walletEmpty:
      'Your wallet is empty, so your pay-as-you-go proxy has stopped. Top up to connect again.',
    cancelled: (planCode: string, atPeriodEnd: boolean, endsAt: string) =>
      atPeriodEnd
        ? `Your ${planCode} plan will end on ${endsAt}. You can change your mind until then in Billing.`
        : `Your ${planCode} plan has ended.`,
    adminAlert: (event: string, facts: string) => `⚠️ ${event}: ${facts}`,
    expired: (planCode: string) =>
      `Your ${planCode} plan has ended: the renewal was not paid in time, so your proxy has stopped. Pick a plan to start again.`,
    planChanged: (planCode: string, credit: string) =>
      `Your plan is now ${planCode}.${credit ? ` ${credit} went to your wallet for the unused part of your old plan.` : ''}`,
    seatAdded:
      'You are now a member of a team: its plan is yours to use. Tap Connect to get your proxy.',
    seatRemoved:
      'You are no longer a member of your team, so its plan no longer covers you. Pick a plan of your own to keep your proxy.',
    exitPoolDown: (location: string, error: string) =>
      `⚠️ Every exit of ${location} is failing${error ? ` (last error: ${error})` : ''}. Customers there cannot connect. Check /upstreams.`,
    ledgerDrift: (wallets: number, driftMinor: number) =>
      `⚠️ ${wallets} wallet${wallets === 1 ? '' : 's'} do not match their ledgers (total drift ${driftMinor} minor units). Details in the jobs log (wallet.reconcile).`,
    /** `runsOutAt` is an ISO instant; the day is named in UTC. */
    usageForecast: (limitBytes: number, runsOutAt: string) =>
      `At your current rate you'll reach ${+(limitBytes / 1e9).toFixed(2)} GB on ${runsOutAt ? new Date(runsOutAt).toLocaleDateString('en-GB', { weekday: 'long', day: 'numeric', month: 'short', timeZone: 'UTC' }) : 'a day soon'}, before your data resets. Upgrade or buy extra data to avoid a stop.`,
    walletForecast: (balance: string, runsOutAt: string) =>
      `At your recent spend your wallet (${balance}) will run out ${runsOutAt ? `around ${new Date(runsOutAt).toLocaleString('en-GB', { weekday: 'long', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' })} UTC` : 'within a day'}. Top up to keep your proxy running.`,
    /** Last ISO week (core/reminders.ts sendWeeklySummaries); empty fields are left out. */
    weeklySummary: (week: {
      week: string;
      used: string;
      planCode: string;
      renewsAt: string;
      endsAt: string;
      paygCost: string;
    }) =>
      [
        `📅 Your week ${week.week}: ${week.used} of data used.`,
        week.planCode
          ? `Plan: ${week.planCode}${week.renewsAt ? `, renews on ${week.renewsAt}` : week.endsAt ? `, ends on ${week.endsAt}` : ''}.`
          : '',
        week.paygCost ? `Pay as you go cost ${week.paygCost} this week.` : '',
        'You can turn these summaries off under Account, Notifications.',
      ]
        .filter(Boolean)
        .join('\n'),
  },

  billing: billingTexts,
  account: accountTexts,
  team: teamTexts,
  admin: adminTexts,
};
