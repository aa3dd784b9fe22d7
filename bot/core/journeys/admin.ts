/**
 * Admin commands in chat, the same on Telegram and WhatsApp: typed commands
 * (not in the customers' command menu; conversation.ts `commands`), answered
 * from core/admin, which checks admin rights and writes the audit log.
 *
 *   /<command> <args>   -> core/admin's admin check: a non-admin gets the
 *                          answer any unknown command gets (the refused
 *                          attempt is in the audit log); /plans stays the
 *                          customers' plans page for them
 *   -> reads (/stats, /user, /payments, /locations, /upstreams, /plans,
 *      /settings, /admins) answer at once
 *   -> changes (grant, suspend, refund, removals, plan and settings edits,
 *      broadcast, admins) show what will happen, then wait at step
 *      `admin.confirm` with the operation in the chat state under a random
 *      token: `admin:ok:<token>` carries it out with the token as its
 *      request id (so a double tap is one grant, one refund, one broadcast),
 *      `admin:no` or /cancel drops it.
 *
 * Buttons: admin:ok:<token>, admin:no, admin:stats, admin:help,
 * admin:payments:<filter>, admin:upstreams:health, admin:suspend:<account>,
 * admin:unsuspend:<account> (each at most 64 bytes, Telegram's limit).
 */
import { randomBytes } from 'node:crypto';
import {
  addAdmin,
  addLocationAsAdmin,
  addUpstream,
  countBroadcast,
  describePayment,
  editPlan,
  extendPlan,
  findUser,
  getSettingsForAdmin,
  getStats,
  grantData,
  isAdmin,
  isConfiguredIdentity,
  listAdmins,
  listLocationsForAdmin,
  listPayments,
  listPlansForAdmin,
  lookupAccount,
  markUpstreamHealthy,
  parseSegment,
  paymentFilters,
  refundPayment,
  removeAdmin,
  removeLocationAsAdmin,
  removeUpstream,
  requireAdmin,
  sendBroadcast,
  settingChangeFromText,
  settingPaths,
  settingValue,
  suspendAccount,
  unsuspendAccount,
  updateSettingsAsAdmin,
  type AccountSummary,
  type AdminContext,
  type AdminLocationView,
  type AdminPaymentLine,
  type BroadcastSegment,
  type MoneyWindow,
  type PaymentFilter,
  type PaymentLine,
  type PlanEdit,
} from '../../../core/admin/index.js';
import type { ExitInput } from '../../../core/locations.js';
import { getPlan, gbText } from '../../../core/plans.js';
import type { SettingsChanges } from '../../../core/settings.js';
import { DomainError, isDomainError } from '../../../lib/errors.js';
import { formatMoney, parseMajorUnits, type Currency } from '../../../lib/money.js';
import { exitKinds, type ExitKind } from '../../../models/location.js';
import type { RefundMethod } from '../../../models/refund.js';
import { formatBytes } from '../../render/gauges.js';
import type { CommandHandler, Journey, Turn } from '../conversation.js';
import type { Menu, MenuItem } from '../types.js';
import { day } from './billing.js';
import { when } from './usage.js';

const CONFIRM_STEP = 'admin.confirm';

/** An operation waiting for its Confirm, as kept in the chat state (plain JSON). */
type Pending =
  | { kind: 'grant_data'; accountId: string; who: string; bytes: number; reason: string }
  | { kind: 'grant_days'; accountId: string; who: string; days: number; reason: string }
  | { kind: 'suspend'; accountId: string; who: string; reason: string }
  | { kind: 'unsuspend'; accountId: string; who: string }
  | {
      kind: 'refund';
      reference: string;
      amountMinor: number;
      currency: Currency;
      method: RefundMethod;
      reason: string;
      endPlan: boolean;
    }
  | { kind: 'location_remove'; code: string }
  | { kind: 'upstream_remove'; code: string; exitId: string }
  | { kind: 'plan_edit'; code: string; edit: PlanEdit; version: number }
  | { kind: 'settings'; path: string; changes: SettingsChanges }
  | { kind: 'broadcast'; segment: BroadcastSegment; text: string }
  | { kind: 'admin_add'; accountId: string; who: string }
  | { kind: 'admin_remove'; accountId: string; who: string };

const item = (label: string, action: string): MenuItem => ({ label, action });

function ctxOf(turn: Turn): AdminContext {
  return {
    actor: { accountId: turn.account.id, channel: turn.identity.channel },
    clock: turn.deps.clock,
    configuredAdmins: turn.deps.admins,
  };
}

const money = (amountMinor: number, currency: Currency) => formatMoney({ amountMinor, currency });

function moneyOf(amounts: MoneyWindow['inMinor'], zero: string): string {
  const parts = Object.entries(amounts)
    .filter(([, amount]) => amount !== undefined && amount !== 0)
    .map(([currency, amount]) => money(amount ?? 0, currency as Currency));
  return parts.length ? parts.join(' + ') : zero;
}

const whoOf = (account: { email: string | null; id: string }) =>
  account.email ?? `account ${account.id}`;

function usage(turn: Turn, syntax: string): void {
  turn.text(turn.t.admin.usage(syntax), turn.t.backToMenu);
}

/** Splits off the first word: `"bob@x.com 5GB gift"` -> `["bob@x.com", "5GB gift"]`. */
function firstWord(text: string): [string, string] {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(text.trim());
  return [match?.[1] ?? '', (match?.[2] ?? '').trim()];
}

/** `5GB`, `1.5 GB`, `500MB` in bytes (GB = 10^9 bytes), without floats; null if it is not one. */
function parseDataAmount(text: string): number | null {
  const match = /^(\d{1,6})(?:\.(\d{1,6}))?\s*(gb|mb)$/i.exec(text.trim());
  if (!match) return null;
  const unitDigits = match[3]?.toLowerCase() === 'gb' ? 9 : 6;
  const fraction = (match[2] ?? '').padEnd(unitDigits, '0').slice(0, unitDigits);
  return Number(match[1]) * 10 ** unitDigits + Number(fraction);
}

// --- confirmations ------------------------------------------------------------------

function confirmMenu(turn: Turn, token: string): Menu {
  return [
    [
      item(turn.t.admin.confirmButton, `admin:ok:${token}`),
      item(turn.t.admin.cancelButton, 'admin:no'),
    ],
  ];
}

function askConfirm(turn: Turn, text: string, op: Pending): void {
  const token = randomBytes(6).toString('hex');
  turn.ask(CONFIRM_STEP, text, { token, op }, confirmMenu(turn, token));
}

async function confirmed(turn: Turn, token: string): Promise<void> {
  const { state } = turn;
  const data = state.data as { token?: unknown; op?: unknown };
  if (state.step !== CONFIRM_STEP || !token || data.token !== token || !data.op) {
    turn.text(turn.t.admin.expired, turn.t.backToMenu);
    return;
  }
  turn.endStep();
  await carryOut(turn, data.op as Pending, token);
}

async function carryOut(turn: Turn, op: Pending, requestId: string): Promise<void> {
  const ctx = ctxOf(turn);
  const t = turn.t.admin;
  const menu = turn.t.backToMenu;
  switch (op.kind) {
    case 'grant_data': {
      const outcome = await grantData(ctx, {
        user: op.accountId,
        bytes: op.bytes,
        requestId,
        ...(op.reason ? { reason: op.reason } : {}),
      });
      turn.text(
        t.grantedData(op.who, formatBytes(op.bytes), formatBytes(outcome.period.remainingBytes)),
        menu,
      );
      return;
    }
    case 'grant_days': {
      const outcome = await extendPlan(ctx, {
        user: op.accountId,
        days: op.days,
        requestId,
        ...(op.reason ? { reason: op.reason } : {}),
      });
      turn.text(t.grantedDays(op.who, op.days, when(outcome.to), outcome.changed), menu);
      return;
    }
    case 'suspend': {
      const outcome = await suspendAccount(ctx, {
        user: op.accountId,
        ...(op.reason ? { reason: op.reason } : {}),
      });
      turn.text(t.suspended(op.who, outcome.changed), menu);
      return;
    }
    case 'unsuspend': {
      const outcome = await unsuspendAccount(ctx, { user: op.accountId });
      turn.text(t.unsuspended(op.who, outcome.changed), menu);
      return;
    }
    case 'refund': {
      const outcome = await refundPayment(ctx, turn.deps.payments, {
        paymentReference: op.reference,
        amountMinor: op.amountMinor,
        method: op.method,
        reason: op.reason,
        requestId,
        endPlan: op.endPlan,
      });
      turn.text(
        t.refunded(
          money(outcome.amountMinor, outcome.currency),
          outcome.state.replace(/[-_]/g, ' '),
        ),
        menu,
      );
      return;
    }
    case 'location_remove':
      await removeLocationAsAdmin(ctx, op.code);
      turn.text(t.locationRemoved(op.code), menu);
      return;
    case 'upstream_remove':
      await removeUpstream(ctx, op.code, op.exitId);
      turn.text(t.upstreamRemoved(op.code, op.exitId), menu);
      return;
    case 'plan_edit': {
      const plan = await editPlan(ctx, {
        code: op.code,
        edit: op.edit,
        expectedVersion: op.version,
      });
      turn.text(t.planEdited(plan.code, plan.version), menu);
      return;
    }
    case 'settings': {
      const settings = await updateSettingsAsAdmin(ctx, turn.deps.settings, op.changes);
      turn.text(
        t.settingSaved(op.path, showSetting(turn, settings, op.path), settings.version),
        menu,
      );
      return;
    }
    case 'broadcast': {
      const outcome = await sendBroadcast(ctx, {
        segment: op.segment,
        text: op.text,
        requestId,
      });
      turn.text(t.broadcastQueued(outcome.recipients), menu);
      return;
    }
    case 'admin_add': {
      const outcome = await addAdmin(ctx, { user: op.accountId });
      turn.text(t.adminAdded(op.who, outcome.changed), menu);
      return;
    }
    case 'admin_remove': {
      const outcome = await removeAdmin(ctx, { user: op.accountId });
      turn.text(t.adminRemoved(op.who, outcome.changed), menu);
      return;
    }
  }
}

// --- /stats ---------------------------------------------------------------------------

async function showStats(turn: Turn): Promise<void> {
  const t = turn.t.admin;
  const s = await getStats(ctxOf(turn));
  const window = (label: string, w: MoneyWindow) => ({
    label,
    inText: moneyOf(w.inMinor, t.nothing),
    refundedText: moneyOf(w.refundedMinor, t.nothing),
  });
  turn.text(
    t.stats({
      at: when(s.at),
      customers: s.customers.total,
      signedUp: s.customers.signedUp,
      suspended: s.customers.suspended,
      plans: s.subscriptions.map((p) => t.statsPlanLine(p.planCode, p.live, p.pastDue)),
      revenue: [
        window(t.revenueToday, s.revenue.today),
        window(t.revenue7, s.revenue.days7),
        window(t.revenue30, s.revenue.days30),
      ],
      tunnels: s.tunnels.open,
      tunnelAccounts: s.tunnels.accounts,
      bytesToday: formatBytes(s.bytesToday),
    }),
    [[item(t.refreshButton, 'admin:stats')], ...turn.t.backToMenu],
  );
}

// --- /user -----------------------------------------------------------------------------

function paymentText(turn: Turn, p: PaymentLine | AdminPaymentLine, withWho: boolean): string {
  const admin = 'email' in p ? p : null;
  return turn.t.admin.paymentLine({
    reference: p.reference,
    amount: money(p.amountMinor, p.currency),
    status: p.status,
    needsReview: p.needsReview,
    what: p.planCode ? `${p.purpose.replace('_', ' ')} ${p.planCode}` : p.purpose.replace('_', ' '),
    at: when(p.at),
    refunded: p.refundedMinor > 0 ? money(p.refundedMinor, p.currency) : '',
    ...(withWho && admin ? { who: admin.email } : {}),
    ...(admin?.flagReason ? { flag: admin.flagReason } : {}),
  });
}

async function showUser(turn: Turn, query: string): Promise<void> {
  const t = turn.t.admin;
  if (query === '') return usage(turn, '/user <email|account id|phone>');
  const report = await findUser(ctxOf(turn), query);
  const { account, subscription: sub } = report;
  let plan: string = t.noPlan;
  if (report.teamOwnerId) {
    plan = t.seatOf(report.teamOwnerId);
  } else if (sub) {
    const until =
      sub.status === 'past_due'
        ? sub.graceEndsAt
        : sub.status === 'trialing'
          ? sub.trialEndsAt
          : sub.status === 'active'
            ? sub.periodEnd
            : null;
    plan = t.planLine({ code: sub.planCode, status: sub.status, until: until ? when(until) : '' });
  }
  const menu: Menu = [];
  if (account.status === 'active')
    menu.push([item(t.suspendButton, `admin:suspend:${account.id}`)]);
  if (account.status === 'suspended') {
    menu.push([item(t.unsuspendButton, `admin:unsuspend:${account.id}`)]);
  }
  menu.push(...turn.t.backToMenu);
  turn.text(
    t.user({
      email: account.email ?? t.noEmail,
      id: account.id,
      status: account.status,
      roles: account.roles.filter((role) => role !== 'customer').join(', '),
      chats: account.identities.length
        ? account.identities.map((i) => `${i.channel} ${i.externalId}`).join(', ')
        : t.noChats,
      since: day(account.createdAt),
      plan,
      usage: report.usage
        ? t.usageLine(
            formatBytes(report.usage.usedBytes),
            formatBytes(report.usage.limitBytes),
            when(report.usage.periodEnd),
          )
        : t.noUsage,
      wallet: report.wallet
        ? money(report.wallet.balanceMinor, report.wallet.currency)
        : t.noWallet,
      proxy: report.proxyUsername ?? t.noProxy,
      tunnels: report.openTunnels,
      flags: report.flags.map((f) => t.flagLine(f.kind, f.reason, day(f.at))),
      payments: report.payments.map((p) => paymentText(turn, p, false)),
      told: report.notifications.map((n) =>
        t.toldLine(
          when(n.at),
          n.event,
          n.deliveries
            .map(
              (d) =>
                `${d.channel} ${d.status}${d.status === 'failed' && d.lastError ? ` (${d.lastError.slice(0, 60)})` : ''}`,
            )
            .join(', ') || '-',
        ),
      ),
    }),
    menu,
  );
}

// --- /grant /suspend /unsuspend ---------------------------------------------------------

async function grantCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const [user, rest] = firstWord(args);
  const match = /^(\d+(?:\.\d+)?\s*(?:gb|mb)|\d+\s*d(?:ays?)?)(?:\s+([\s\S]*))?$/i.exec(rest);
  if (!user || !match?.[1]) return usage(turn, t.grantSyntax);
  const amount = match[1];
  const reason = (match[2] ?? '').trim();
  const bytes = parseDataAmount(amount);
  const days = /^(\d+)\s*d/i.exec(amount)?.[1];
  const account = await lookupAccount(ctxOf(turn), user);
  const who = whoOf(account);
  if (bytes !== null) {
    askConfirm(turn, t.confirmGrantData(who, formatBytes(bytes)), {
      kind: 'grant_data',
      accountId: account.id,
      who,
      bytes,
      reason,
    });
    return;
  }
  if (days === undefined) return usage(turn, t.grantSyntax);
  askConfirm(turn, t.confirmGrantDays(who, Number(days)), {
    kind: 'grant_days',
    accountId: account.id,
    who,
    days: Number(days),
    reason,
  });
}

async function promptSuspend(turn: Turn, user: string, reason: string): Promise<void> {
  const t = turn.t.admin;
  if (!user) return usage(turn, t.suspendSyntax);
  const account = await lookupAccount(ctxOf(turn), user);
  const who = whoOf(account);
  if (account.status === 'suspended') {
    turn.text(t.suspended(who, false), turn.t.backToMenu);
    return;
  }
  askConfirm(turn, t.confirmSuspend(who, reason), {
    kind: 'suspend',
    accountId: account.id,
    who,
    reason,
  });
}

async function promptUnsuspend(turn: Turn, user: string): Promise<void> {
  const t = turn.t.admin;
  if (!user) return usage(turn, t.unsuspendSyntax);
  const account = await lookupAccount(ctxOf(turn), user);
  const who = whoOf(account);
  if (account.status !== 'suspended') {
    turn.text(t.unsuspended(who, false), turn.t.backToMenu);
    return;
  }
  askConfirm(turn, t.confirmUnsuspend(who), { kind: 'unsuspend', accountId: account.id, who });
}

// --- /refund /payments -----------------------------------------------------------------

async function refundCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const [reference, rest] = firstWord(args);
  if (!reference) return usage(turn, t.refundSyntax);
  const payment = await describePayment(ctxOf(turn), reference);
  if (payment.refundableMinor <= 0) {
    turn.text(t.nothingToRefund(payment.reference, payment.status), turn.t.backToMenu);
    return;
  }
  const words = rest.split(/\s+/).filter((word) => word !== '');
  let amountMinor: number | null = null;
  let method: RefundMethod = 'card';
  let endPlan = false;
  while (words.length > 0) {
    const word = words[0] ?? '';
    if (amountMinor === null && /^[^\sA-Za-z]?\d[\d,]*(?:\.\d+)?$/.test(word)) {
      amountMinor = parseMajorUnits(word, payment.currency);
    } else if (/^(card|wallet)$/i.test(word)) {
      method = word.toLowerCase() as RefundMethod;
    } else if (/^end-?plan$/i.test(word)) {
      endPlan = true;
    } else {
      break;
    }
    words.shift();
  }
  const amount = amountMinor ?? payment.refundableMinor;
  if (amount <= 0 || amount > payment.refundableMinor) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `Refund from ${money(1, payment.currency)} to ${money(payment.refundableMinor, payment.currency)} (what is left on this payment).`,
    );
  }
  const reason = words.join(' ').trim() || t.defaultRefundReason;
  askConfirm(
    turn,
    t.confirmRefund({
      reference: payment.reference,
      amount: money(amount, payment.currency),
      of: money(payment.amountMinor, payment.currency),
      who: payment.email,
      to: t.refundTo(method),
      reason,
      endPlan,
    }),
    {
      kind: 'refund',
      reference: payment.reference,
      amountMinor: amount,
      currency: payment.currency,
      method,
      reason,
      endPlan,
    },
  );
}

async function showPayments(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const words = args.split(/\s+/).filter((word) => word !== '');
  const filter = (words
    .find((w) => (paymentFilters as readonly string[]).includes(w.toLowerCase()))
    ?.toLowerCase() ?? 'recent') as PaymentFilter;
  const count = Number(words.find((w) => /^\d{1,2}$/.test(w)) ?? 10);
  const payments = await listPayments(ctxOf(turn), { filter, limit: count });
  turn.text(
    [
      t.paymentsTitle(filter, payments.length),
      ...payments.map((p) => paymentText(turn, p, true)),
    ].join('\n'),
    [
      [
        item(t.recentButton, 'admin:payments:recent'),
        item(t.failedButton, 'admin:payments:failed'),
        item(t.flaggedButton, 'admin:payments:flagged'),
      ],
      ...turn.t.backToMenu,
    ],
  );
}

// --- /locations /upstreams --------------------------------------------------------------

async function locationsCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const ctx = ctxOf(turn);
  const [sub, rest] = firstWord(args);
  switch (sub.toLowerCase()) {
    case '': {
      const locations = await listLocationsForAdmin(ctx);
      const lines = locations.map((l) =>
        t.locationLine({
          code: l.code,
          label: l.label,
          healthy: l.exits.filter((e) => e.healthy).length,
          total: l.exits.length,
        }),
      );
      turn.text(lines.length ? lines.join('\n') : t.noLocations, [
        [item(t.healthButton, 'admin:upstreams:health')],
        ...turn.t.backToMenu,
      ]);
      return;
    }
    case 'add': {
      const match = /^([a-z][a-z0-9]{1,15})\s+([a-z]{2})\s+([\s\S]+)$/i.exec(rest);
      if (!match?.[1] || !match[2] || !match[3]) return usage(turn, t.locationsSyntax);
      const added = await addLocationAsAdmin(ctx, {
        code: match[1],
        countryCode: match[2],
        label: match[3].trim(),
      });
      turn.text(t.locationAdded(added.code), turn.t.backToMenu);
      return;
    }
    case 'remove': {
      const [code] = firstWord(rest);
      if (!code) return usage(turn, t.locationsSyntax);
      const location = (await listLocationsForAdmin(ctx)).find(
        (l) => l.code === code.toLowerCase(),
      );
      if (!location) throw new DomainError('NOT_FOUND', `There is no location "${code}".`);
      askConfirm(turn, t.confirmRemoveLocation(location.code, location.label), {
        kind: 'location_remove',
        code: location.code,
      });
      return;
    }
    default:
      return usage(turn, t.locationsSyntax);
  }
}

function upstreamLines(turn: Turn, location: AdminLocationView, unhealthyOnly: boolean): string[] {
  const t = turn.t.admin;
  const exits = location.exits.filter((e) => !unhealthyOnly || !e.healthy);
  if (unhealthyOnly && exits.length === 0) return [];
  return [
    t.upstreamsTitle(location.code, location.label),
    ...(exits.length === 0
      ? [t.noUpstreams]
      : exits.map((e) =>
          t.upstreamLine({
            id: e.exitId,
            kind: e.kind,
            address: e.host ? `${e.username ? `${e.username}@` : ''}${e.host}:${e.port ?? ''}` : '',
            healthy: e.healthy,
            failures: e.failures,
            error: e.lastError ?? '',
            retry: e.retryAfter ? when(e.retryAfter) : '',
          }),
        )),
  ];
}

/** `host:port` or `[v6]:port`. */
function parseHostPort(text: string): { host: string; port: number } | null {
  const match = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(text);
  return match?.[1] && match[2] ? { host: match[1], port: Number(match[2]) } : null;
}

async function upstreamsCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const ctx = ctxOf(turn);
  const words = args.split(/\s+/).filter((word) => word !== '');
  const sub = (words[0] ?? '').toLowerCase();
  if (sub === 'add') {
    const [, code, exitId, kind, address, credentials] = words;
    if (
      !code ||
      !exitId ||
      !kind ||
      !(exitKinds as readonly string[]).includes(kind.toLowerCase())
    ) {
      return usage(turn, t.upstreamsSyntax);
    }
    const exit: ExitInput = { exitId, kind: kind.toLowerCase() as ExitKind };
    if (exit.kind !== 'direct') {
      const hostPort = address ? parseHostPort(address) : null;
      if (!hostPort) return usage(turn, t.upstreamsSyntax);
      Object.assign(exit, hostPort);
      if (credentials) {
        const colon = credentials.indexOf(':');
        exit.username = colon === -1 ? credentials : credentials.slice(0, colon);
        if (colon !== -1) exit.password = credentials.slice(colon + 1);
      }
    }
    await addUpstream(ctx, code, exit);
    turn.text(t.upstreamAdded(code.toLowerCase(), exitId), turn.t.backToMenu);
    return;
  }
  if (sub === 'remove' || sub === 'healthy') {
    const [, code, exitId] = words;
    if (!code || !exitId) return usage(turn, t.upstreamsSyntax);
    if (sub === 'healthy') {
      await markUpstreamHealthy(ctx, code, exitId);
      turn.text(t.upstreamHealthy(code.toLowerCase(), exitId), turn.t.backToMenu);
      return;
    }
    const location = (await listLocationsForAdmin(ctx)).find((l) => l.code === code.toLowerCase());
    if (!location?.exits.some((e) => e.exitId === exitId)) {
      throw new DomainError('NOT_FOUND', `There is no upstream "${exitId}" in ${code}.`);
    }
    askConfirm(turn, t.confirmRemoveUpstream(location.code, exitId), {
      kind: 'upstream_remove',
      code: location.code,
      exitId,
    });
    return;
  }
  const locations = await listLocationsForAdmin(ctx);
  const health = sub === 'health';
  const shown = health || sub === '' ? locations : locations.filter((l) => l.code === sub);
  if (!health && sub !== '' && shown.length === 0) {
    throw new DomainError('NOT_FOUND', `There is no location "${sub}".`);
  }
  const lines = shown.flatMap((l) => upstreamLines(turn, l, health));
  turn.text(lines.length ? lines.join('\n') : health ? t.allHealthy : t.noLocations, [
    [item(t.healthButton, 'admin:upstreams:health')],
    ...turn.t.backToMenu,
  ]);
}

// --- /plans ------------------------------------------------------------------------------

async function plansCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const ctx = ctxOf(turn);
  const words = args.split(/\s+/).filter((word) => word !== '');
  if (words.length === 0) {
    const [plans, settings] = await Promise.all([listPlansForAdmin(ctx), turn.deps.settings.get()]);
    const lines = plans.map((plan) => {
      const rate = plan.payg?.rates[0];
      const price = plan.prices[0];
      const priceText =
        plan.kind === 'trial'
          ? `${money(settings.trialDepositMinor, settings.currency)} deposit`
          : rate
            ? `${money(rate.hourlyRateMinor, rate.currency)}/hour`
            : price
              ? `${money(price.amountMinor, price.currency)}/${plan.billingPeriod?.unit ?? 'period'}`
              : t.noPrice;
      return t.planLineAdmin({
        code: plan.code,
        name: plan.name,
        price: priceText,
        quota: plan.quota ? `${gbText(plan.quota.bytes)}/${plan.quota.period}` : t.noQuota,
        version: plan.version,
        onSale: plan.isOnSale,
      });
    });
    turn.text([...lines, '', t.planEditHint].join('\n'), [
      [item(t.customerViewButton, 'plans')],
      ...turn.t.backToMenu,
    ]);
    return;
  }
  const [code = '', field = '', value = '', currencyWord] = words;
  const plan = await getPlan(code);
  if (field.toLowerCase() === 'price' && value) {
    const settings = await turn.deps.settings.get();
    const currency = (currencyWord?.toUpperCase() ??
      plan.prices[0]?.currency ??
      plan.payg?.rates[0]?.currency ??
      settings.currency) as Currency;
    const amountMinor = parseMajorUnits(value, currency);
    const old =
      plan.kind === 'payg'
        ? plan.payg?.rates.find((r) => r.currency === currency)?.hourlyRateMinor
        : plan.prices.find((p) => p.currency === currency)?.amountMinor;
    askConfirm(
      turn,
      t.confirmPlanEdit(
        plan.code,
        plan.kind === 'payg' ? t.hourlyWord : t.priceWord,
        old === undefined ? t.noPrice : money(old, currency),
        money(amountMinor, currency),
      ),
      {
        kind: 'plan_edit',
        code: plan.code,
        edit: { field: 'price', amountMinor, currency },
        version: plan.version,
      },
    );
    return;
  }
  const bytes = field.toLowerCase() === 'quota' ? parseDataAmount(value) : null;
  if (bytes === null) return usage(turn, t.plansSyntax);
  askConfirm(
    turn,
    t.confirmPlanEdit(
      plan.code,
      t.quotaWord,
      plan.quota ? gbText(plan.quota.bytes) : t.noQuota,
      gbText(bytes),
    ),
    { kind: 'plan_edit', code: plan.code, edit: { field: 'quota', bytes }, version: plan.version },
  );
}

// --- /settings -----------------------------------------------------------------------------

type SettingsView = Awaited<ReturnType<Turn['deps']['settings']['get']>>;

function showValue(turn: Turn, value: unknown, path: string, currency: Currency): string {
  if (value === undefined || value === null || value === '') return turn.t.admin.unset;
  if (typeof value === 'number' && path.endsWith('Minor')) return money(value, currency);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (Array.isArray(value)) return value.join(', ');
  return typeof value === 'string' || typeof value === 'number'
    ? String(value)
    : JSON.stringify(value);
}

function showSetting(turn: Turn, settings: SettingsView, path: string): string {
  return showValue(turn, settingValue(settings, path), path, settings.currency);
}

/** The value a change sets at `path` (`vat.rateBps` -> changes.vat.rateBps). */
function changedValue(changes: SettingsChanges, path: string): unknown {
  const [head = '', part] = path.split('.');
  const top = (changes as Record<string, unknown>)[head];
  if (part === undefined) return top;
  return top && typeof top === 'object' ? (top as Record<string, unknown>)[part] : undefined;
}

async function settingsCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const ctx = ctxOf(turn);
  const [path, value] = firstWord(args);
  if (!path) {
    const settings = await getSettingsForAdmin(ctx, turn.deps.settings);
    turn.text(
      [
        t.settingsTitle(settings.version),
        ...settingPaths(settings).map((p) => t.settingLine(p, showSetting(turn, settings, p))),
        '',
        t.settingsHint,
      ].join('\n'),
      turn.t.backToMenu,
    );
    return;
  }
  const settings = await turn.deps.settings.get();
  const known = settingPaths(settings).find((p) => p.toLowerCase() === path.toLowerCase());
  if (!known || !value) {
    if (known) return usage(turn, `/settings ${known} <value>`);
    throw new DomainError(
      'VALIDATION_FAILED',
      `There is no setting "${path}". Type /settings for the list.`,
    );
  }
  const changes = settingChangeFromText(settings, known, value);
  const currency = (changedValue(changes, 'currency') as Currency | undefined) ?? settings.currency;
  askConfirm(
    turn,
    t.confirmSetting(
      known,
      showSetting(turn, settings, known),
      showValue(turn, changedValue(changes, known), known, currency),
    ),
    { kind: 'settings', path: known, changes },
  );
}

// --- /broadcast ------------------------------------------------------------------------------

async function broadcastCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const [segmentText, text] = firstWord(args);
  if (!segmentText || !text) return usage(turn, t.broadcastSyntax);
  const segment = await parseSegment(segmentText);
  const { recipients } = await countBroadcast(ctxOf(turn), segment);
  if (recipients === 0) {
    turn.text(t.broadcastNobody(segment), turn.t.backToMenu);
    return;
  }
  askConfirm(turn, t.confirmBroadcast(recipients, segment, text), {
    kind: 'broadcast',
    segment,
    text,
  });
}

// --- /admins ------------------------------------------------------------------------------

async function adminsCommand(turn: Turn, args: string): Promise<void> {
  const t = turn.t.admin;
  const ctx = ctxOf(turn);
  const [sub, user] = firstWord(args);
  if (sub === '') {
    const admins = await listAdmins(ctx);
    const lines = admins.map((a) =>
      t.adminLine({
        name: a.email ?? (a.accountId ? `account ${a.accountId}` : t.notWrittenYet),
        chats: a.identities.map((i) => `${i.channel} ${i.externalId}`).join(', '),
        configured: a.configured,
        status: a.status ?? '',
      }),
    );
    turn.text([t.adminsTitle, ...lines].join('\n'), turn.t.backToMenu);
    return;
  }
  if (!user || !['add', 'remove'].includes(sub.toLowerCase())) return usage(turn, t.adminsSyntax);
  const account: AccountSummary = await lookupAccount(ctx, user);
  const who = whoOf(account);
  if (sub.toLowerCase() === 'add') {
    askConfirm(turn, t.confirmAddAdmin(who), { kind: 'admin_add', accountId: account.id, who });
    return;
  }
  if (account.identities.some((identity) => isConfiguredIdentity(turn.deps.admins, identity))) {
    // core/admin refuses it too; said here before asking for a Confirm that could not work.
    throw new DomainError(
      'CONFLICT',
      'This admin is named in the configuration (ADMIN_TELEGRAM_IDS / ADMIN_WHATSAPP_NUMBERS): remove them there, not from chat.',
    );
  }
  askConfirm(turn, t.confirmRemoveAdmin(who), { kind: 'admin_remove', accountId: account.id, who });
}

// --- wiring ------------------------------------------------------------------------------------

/**
 * The check every admin command starts with. A non-admin gets exactly what an
 * unknown command gets, so nothing tells them admin commands exist;
 * core/admin has recorded the attempt.
 */
async function passes(turn: Turn, command: string): Promise<boolean> {
  try {
    await requireAdmin(ctxOf(turn), `/${command}`);
    return true;
  } catch (error) {
    if (!isDomainError(error, 'FORBIDDEN')) throw error;
    turn.text(turn.t.unknownCommand(command), turn.t.mainMenu(turn.account));
    return false;
  }
}

function adminCommand(
  command: string,
  run: (turn: Turn, args: string) => Promise<void>,
): CommandHandler {
  return async (turn, args) => {
    if (!(await passes(turn, command))) return true;
    turn.endStep();
    await run(turn, args.trim());
    return true;
  };
}

function help(turn: Turn): Promise<void> {
  turn.text(turn.t.admin.help, turn.t.backToMenu);
  return Promise.resolve();
}

export const adminJourney: Journey = {
  commands: {
    admin: adminCommand('admin', help),
    stats: adminCommand('stats', showStats),
    user: adminCommand('user', showUser),
    grant: adminCommand('grant', grantCommand),
    suspend: adminCommand('suspend', (turn, args) => {
      const [user, reason] = firstWord(args);
      return promptSuspend(turn, user, reason);
    }),
    unsuspend: adminCommand('unsuspend', (turn, args) => promptUnsuspend(turn, firstWord(args)[0])),
    refund: adminCommand('refund', refundCommand),
    payments: adminCommand('payments', showPayments),
    locations: adminCommand('locations', locationsCommand),
    upstreams: adminCommand('upstreams', upstreamsCommand),
    settings: adminCommand('settings', settingsCommand),
    broadcast: adminCommand('broadcast', broadcastCommand),
    admins: adminCommand('admins', adminsCommand),
    // /plans is also the customers' plans page: admins get the catalogue editor, everyone else that page.
    async plans(turn, args) {
      if (!(await isAdmin(ctxOf(turn)))) return false;
      turn.endStep();
      await plansCommand(turn, args.trim());
      return true;
    },
  },
  actions: {
    async admin(turn) {
      const [sub = '', arg = ''] = turn.args;
      try {
        await requireAdmin(ctxOf(turn), `admin:${sub}`);
      } catch (error) {
        if (!isDomainError(error, 'FORBIDDEN')) throw error;
        // A button nobody showed them: the answer to any stale button.
        turn.text(turn.t.staleButton, turn.t.mainMenu(turn.account));
        return;
      }
      switch (sub) {
        case 'ok':
          return confirmed(turn, arg);
        case 'no':
          turn.endStep();
          turn.text(turn.t.admin.cancelled, turn.t.backToMenu);
          return;
      }
      turn.endStep();
      switch (sub) {
        case 'stats':
          return showStats(turn);
        case 'payments':
          return showPayments(turn, arg);
        case 'upstreams':
          return upstreamsCommand(turn, arg);
        case 'suspend':
          return promptSuspend(turn, arg, '');
        case 'unsuspend':
          return promptUnsuspend(turn, arg);
        default:
          return help(turn);
      }
    },
  },
  steps: {
    [CONFIRM_STEP](turn) {
      // Typed text while a Confirm is open: the choice stands, shown again.
      const token = (turn.state.data as { token?: unknown }).token;
      turn.text(
        turn.t.admin.tapConfirm,
        typeof token === 'string' ? confirmMenu(turn, token) : turn.t.backToMenu,
      );
      return Promise.resolve();
    },
  },
};
