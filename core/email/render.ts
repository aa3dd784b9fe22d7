/**
 * Notifications from the outbox (core/notifications.ts) as email: for each
 * event a subject, a plain-text body and a small HTML body, from the facts
 * the event carries (the same facts bot/core/notices.ts renders for chat),
 * with the one-tap next step as a link where there is one. Everything that
 * comes from data is escaped in the HTML, and only http(s) links are used.
 * An event without its own text yet (added by a later issue) still renders,
 * readable, as its name and facts.
 */
import { formatMoney, isCurrency, type Currency } from '../../lib/money.js';
import type { NotificationEvent } from '../../models/notification.js';

export interface EmailRenderOptions {
  /** PUBLIC_URL without a trailing slash; the fallback link to the app. */
  publicUrl?: string | undefined;
  /** TELEGRAM_BOT_USERNAME (with or without `@`): next steps link to `https://t.me/<bot>` first. */
  telegramBotUsername?: string | undefined;
  /** The name in subjects and greetings (default `Atlantic`). */
  brand?: string | undefined;
}

export interface EmailNotice {
  event: NotificationEvent;
  data: Record<string, unknown>;
  /** A link that turns this kind of mail off (events the customer may mute). */
  unsubscribeUrl?: string | undefined;
  /** The invoice attached to the mail (payment_confirmed), so the body can mention it. */
  invoiceNumber?: string | undefined;
}

export interface EmailLink {
  label: string;
  url: string;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
  /** The one-tap next step, also inside `text` and `html`. */
  link: EmailLink | null;
}

type Data = Record<string, unknown>;

interface Draft {
  subject: string;
  /** Paragraphs, plain text (escaped for HTML on the way out). */
  paragraphs: string[];
  link?: EmailLink | null;
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');

function amount(data: Data, field = 'amountMinor'): string {
  const currency: Currency = isCurrency(data.currency) ? data.currency : 'NGN';
  const value = data[field];
  return formatMoney({ amountMinor: Number.isSafeInteger(value) ? Number(value) : 0, currency });
}

/** `2026-03-01` from an ISO date string, '' when absent. */
function day(value: unknown): string {
  return str(value).slice(0, 10);
}

/** The link to take the next step in the app: the Telegram bot when configured, else the website. */
function appLink(options: EmailRenderOptions, label: string): EmailLink | null {
  const bot = options.telegramBotUsername?.replace(/^@/, '').trim();
  if (bot) return { label: `${label} in Telegram`, url: `https://t.me/${encodeURIComponent(bot)}` };
  const url = options.publicUrl?.trim();
  return url && isWebUrl(url) ? { label, url } : null;
}

function isWebUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

const DATA_UNITS = 'Here 1 GB = 1,000,000,000 bytes.';

/** Bytes as people read them: GB (10^9 bytes) to two decimals, MB (10^6) below 0.1 GB. */
function dataText(value: unknown): string {
  const bytes = Number.isSafeInteger(value) ? Math.max(0, Number(value)) : 0;
  if (bytes >= 100_000_000) return `${(bytes / 1e9).toFixed(2).replace(/\.?0+$/, '')} GB`;
  return `${(bytes / 1e6).toFixed(1).replace(/\.0$/, '')} MB`;
}

/** `3 h 20 min` from seconds, '' for none. */
function hoursText(value: unknown): string {
  const minutes = Number.isSafeInteger(value) ? Math.floor(Number(value) / 60) : 0;
  if (minutes <= 0) return '';
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return [hours > 0 ? `${hours} h` : '', rest > 0 ? `${rest} min` : ''].filter(Boolean).join(' ');
}

function isoDate(value: unknown): Date | null {
  const date = new Date(str(value));
  return str(value) && Number.isFinite(date.getTime()) ? date : null;
}

/** `Friday 27 Nov` (UTC) from an ISO instant, '' when absent. */
function dayName(value: unknown): string {
  const date = isoDate(value);
  return date
    ? date.toLocaleDateString('en-GB', {
        weekday: 'long',
        day: 'numeric',
        month: 'short',
        timeZone: 'UTC',
      })
    : '';
}

/** `Friday 27 Nov, 14:00 UTC` from an ISO instant, '' when absent. */
function timeName(value: unknown): string {
  const date = isoDate(value);
  if (!date) return '';
  const time = date.toLocaleTimeString('en-GB', {
    hour: '2-digit',
    minute: '2-digit',
    timeZone: 'UTC',
  });
  return `${dayName(value)}, ${time} UTC`;
}

/** `16 Nov to 22 Nov 2026` for [weekStart, weekEnd), '' when absent. */
function weekSpan(start: unknown, end: unknown): string {
  const from = isoDate(start);
  const until = isoDate(end);
  if (!from || !until) return '';
  const last = new Date(until.getTime() - 24 * 3_600_000);
  const short = { day: 'numeric', month: 'short', timeZone: 'UTC' } as const;
  return `${from.toLocaleDateString('en-GB', short)} to ${last.toLocaleDateString('en-GB', { ...short, year: 'numeric' })}`;
}

function refundedTo(method: string): string {
  return method === 'wallet'
    ? 'to your wallet'
    : 'to your card (it can take a few working days to show)';
}

/** Admin alerts list their facts, one per line, so nothing is lost in a summary. */
function facts(data: Data): string[] {
  return Object.entries(data)
    .filter(([, value]) => value !== undefined && value !== null && value !== '')
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}

function draftFor(notice: EmailNotice, options: EmailRenderOptions, brand: string): Draft {
  const { data } = notice;
  const event = notice.event;
  switch (event) {
    case 'welcome':
      return {
        subject: `Welcome to ${brand}`,
        paragraphs: [
          `Your ${brand} account is ready. Pick a plan or start a trial to get your proxy.`,
        ],
        link: appLink(options, 'Open ' + brand),
      };
    case 'payment_confirmed': {
      const paid = amount(data);
      const planCode = str(data.planCode);
      const invoice = notice.invoiceNumber
        ? [`Your receipt ${notice.invoiceNumber} is attached.`]
        : [];
      const lines: Record<string, [string, string]> = {
        plan: [`Payment received: ${paid}`, `Your ${planCode} plan is active.`],
        trial_deposit: [
          `Deposit received: ${paid}`,
          'Your trial has started; the deposit comes back when it ends.',
        ],
        wallet_topup: [`Top-up received: ${paid}`, `${paid} is in your wallet.`],
        renewal: [`Renewal paid: ${paid}`, `Your ${planCode} plan continues.`],
      };
      const description = str(data.description);
      const [subject, body] = lines[str(data.purpose)] ?? [
        `Payment received: ${paid}`,
        `We received your payment of ${paid}${description ? ` (${description})` : ''}.`,
      ];
      return {
        subject,
        paragraphs: [body, ...invoice],
        link: appLink(options, 'Connect'),
      };
    }
    case 'payment_failed': {
      const due = amount(data);
      const reason = str(data.reason);
      const graceEndsAt = day(data.graceEndsAt);
      const payUrl = str(data.authorizationUrl);
      return {
        subject: `Your payment of ${due} did not go through`,
        paragraphs: [
          `Your payment of ${due} did not go through${reason ? ` (${reason})` : ''}.`,
          graceEndsAt ? `Pay before ${graceEndsAt} to keep your plan.` : 'You can try again.',
        ],
        link: isWebUrl(payUrl) ? { label: `Pay ${due}`, url: payUrl } : appLink(options, 'Pay'),
      };
    }
    case 'trial_started':
      return {
        subject: 'Your trial has started',
        paragraphs: ['Your trial has started. Get your proxy and connect.'],
        link: appLink(options, 'Connect'),
      };
    case 'trial_refused':
      return {
        subject: 'Your trial could not start',
        paragraphs: [
          `You have had a trial before, so this one cannot start. Your deposit of ${amount(data, 'depositMinor')} is on its way back.`,
        ],
        link: appLink(options, 'See plans'),
      };
    case 'trial_ending': {
      const endsAt = day(data.trialEndsAt);
      return {
        subject: 'Your trial is ending',
        paragraphs: [
          `Your trial ends ${endsAt ? `on ${endsAt}` : 'soon'}. Pick a plan to keep your proxy.`,
        ],
        link: appLink(options, 'See plans'),
      };
    }
    case 'deposit_refunded':
      return {
        subject: `Your deposit of ${amount(data)} was returned`,
        paragraphs: [
          `Your deposit of ${amount(data)} was returned ${refundedTo(str(data.method))}.`,
        ],
      };
    case 'refund_processed':
      return {
        subject: `Refund of ${amount(data)}`,
        paragraphs: [`A refund of ${amount(data)} was made ${refundedTo(str(data.method))}.`],
      };
    case 'renewal_due':
      return {
        subject: `Your ${str(data.planCode)} plan renews on ${day(data.periodEnd)}`,
        paragraphs: [
          `Your ${str(data.planCode)} plan renews on ${day(data.periodEnd)} for ${amount(data)}, charged to your saved card.`,
        ],
        link: appLink(options, 'Open billing'),
      };
    case 'usage_50':
    case 'usage_80':
    case 'usage_95':
    case 'usage_100': {
      const percent = Number(event.slice('usage_'.length));
      const resets = day(data.periodEnd);
      return percent >= 100
        ? {
            subject: "You have used all of this period's data",
            paragraphs: [
              `You have used all the data of this period${resets ? `; it resets on ${resets}` : ''}. Upgrade or buy extra data to continue now.`,
            ],
            link: appLink(options, 'See plans'),
          }
        : {
            subject: `You have used ${percent}% of your data`,
            paragraphs: [
              `You have used ${percent}% of this period's data${resets ? ` (resets on ${resets})` : ''}.`,
            ],
            link: appLink(options, 'See usage'),
          };
    }
    case 'wallet_low': {
      const failed = str(data.autoTopUpFailed);
      return {
        subject: `Your wallet is low: ${amount(data, 'balanceMinor')} left`,
        paragraphs: [
          `Your wallet is low: ${amount(data, 'balanceMinor')} left. Top up to keep your proxy running.`,
          ...(failed ? [`Automatic top-up did not work (${failed}).`] : []),
        ],
        link: appLink(options, 'Top up'),
      };
    }
    case 'wallet_empty':
      return {
        subject: 'Your wallet is empty',
        paragraphs: [
          'Your wallet is empty, so your pay-as-you-go proxy has stopped. Top up to connect again.',
        ],
        link: appLink(options, 'Top up'),
      };
    case 'cancelled': {
      const planCode = str(data.planCode);
      return data.atPeriodEnd === true
        ? {
            subject: `Your ${planCode} plan will end on ${day(data.endsAt)}`,
            paragraphs: [
              `Your ${planCode} plan will end on ${day(data.endsAt)}. You can change your mind until then in Billing.`,
            ],
            link: appLink(options, 'Open billing'),
          }
        : {
            subject: `Your ${planCode} plan has ended`,
            paragraphs: [`Your ${planCode} plan has ended.`],
            link: appLink(options, 'See plans'),
          };
    }
    case 'broadcast':
      return {
        subject: `A message from ${brand}`,
        paragraphs: str(data.text)
          .split(/\n{2,}/)
          .map((paragraph) => paragraph.trim())
          .filter((paragraph) => paragraph !== ''),
      };
    case 'payment_flagged':
      return adminDraft(`Payment of ${amount(data)} flagged for review`, data);
    case 'deposit_refund_failed':
      return adminDraft(`Deposit refund of ${amount(data)} failed`, data);
    case 'refund_failed':
      return adminDraft(`Refund of ${amount(data)} failed`, data);
    case 'dispute_opened':
      return adminDraft(`Card dispute opened (${amount(data)})`, data);
    case 'exit_pool_down': {
      const location = str(data.label) || str(data.location);
      return adminDraft(`Every exit of ${location} is failing`, data, [
        `Every exit of ${location} is failing. Customers there cannot connect.`,
      ]);
    }
    case 'ledger_drift':
      return adminDraft('Wallets do not match their ledgers', data, [
        'Some wallet balances do not match their ledgers. Details in the jobs log (wallet.reconcile).',
      ]);
    case 'expired':
      return {
        subject: `Your ${str(data.planCode)} plan has ended`,
        paragraphs: [
          `Your ${str(data.planCode)} plan has ended: the renewal was not paid in time, so your proxy has stopped. Pick a plan to start again.`,
        ],
        link: appLink(options, 'See plans'),
      };
    case 'plan_changed':
      return {
        subject: `Your plan is now ${str(data.toPlanCode)}`,
        paragraphs: [`Your plan is now ${str(data.toPlanCode)}.`],
        link: appLink(options, 'Open ' + brand),
      };
    case 'seat_added':
      return {
        subject: 'You are now a member of a team',
        paragraphs: ['You are now a member of a team: its plan is yours to use.'],
        link: appLink(options, 'Get your proxy'),
      };
    case 'seat_removed':
      return {
        subject: 'You are no longer a member of your team',
        paragraphs: [
          'You are no longer a member of your team, so its plan no longer covers you. Pick a plan of your own to keep your proxy.',
        ],
        link: appLink(options, 'See plans'),
      };
    case 'weekly_summary': {
      const week = str(data.week);
      const used = dataText(data.usedBytes);
      const hours = hoursText(data.connectedSeconds);
      const planCode = str(data.planCode);
      const renewsAt = day(data.renewsAt);
      const endsAt = day(data.endsAt);
      const paygCost = Number(data.paygCostMinor) > 0 ? amount(data, 'paygCostMinor') : '';
      const span = weekSpan(data.weekStart, data.weekEnd);
      return {
        subject: `Your week${week ? ` ${week}` : ''}: ${used} used`,
        paragraphs: [
          `Last week${span ? ` (${span})` : ''} you used ${used} of data${hours ? `, connected for ${hours}` : ''}.`,
          ...(planCode
            ? [
                `Plan: ${planCode}${renewsAt ? `, renews on ${renewsAt}` : endsAt ? `, ends on ${endsAt}` : ''}.`,
              ]
            : []),
          ...(paygCost ? [`Pay as you go cost ${paygCost} this week.`] : []),
          `${DATA_UNITS} You can turn these summaries off under Account, Notifications.`,
        ],
        link: appLink(options, 'See usage'),
      };
    }
    case 'usage_forecast': {
      const runsOut = dayName(data.runsOutAt);
      const resets = day(data.periodEnd);
      const limit = dataText(data.limitBytes);
      const rate = dataText(data.bytesPerHour);
      return {
        subject: runsOut
          ? `At this rate your data runs out on ${runsOut}`
          : 'At this rate your data runs out before it resets',
        paragraphs: [
          `You have used ${dataText(data.usedBytes)} of your ${limit} (${Number.isFinite(Number(data.percent)) ? Number(data.percent) : 0}%). At your rate of the last three days, ${rate} an hour, you will reach ${limit} ${runsOut ? `on ${runsOut}` : 'soon'}${resets ? `, before your data resets on ${resets}` : ''}.`,
          `Upgrade or buy extra data to avoid a stop. ${DATA_UNITS}`,
        ],
        link: appLink(options, 'See plans'),
      };
    }
    case 'wallet_forecast': {
      const balance = amount(data, 'balanceMinor');
      const when = timeName(data.runsOutAt);
      return {
        subject: when ? `Your wallet runs out around ${when}` : 'Your wallet runs out within a day',
        paragraphs: [
          `Your wallet has ${balance}. At your recent spend of ${amount(data, 'hourlySpendMinor')} an hour it runs out ${when ? `around ${when}` : 'within a day'}.`,
          'Top up to keep your proxy running.',
        ],
        link: appLink(options, 'Top up'),
      };
    }
    // New events: add their case above this line (the default keeps an unrendered event readable).
    default:
      return { subject: String(event).replace(/_/g, ' '), paragraphs: facts(data) };
  }
}

function adminDraft(title: string, data: Data, intro: string[] = []): Draft {
  return { subject: `[admin] ${title}`, paragraphs: [...intro, ...facts(data)] };
}

/** The mail for one outbox item. Pure: same notice and options, same mail. */
export function renderEmail(notice: EmailNotice, options: EmailRenderOptions = {}): RenderedEmail {
  const brand = options.brand ?? 'Atlantic';
  const draft = draftFor(notice, options, brand);
  const link = draft.link ?? null;
  const paragraphs = draft.paragraphs.length > 0 ? draft.paragraphs : [draft.subject];
  const subject = draft.subject.replace(/[\r\n]+/g, ' ').trim();

  const unsubscribe =
    notice.unsubscribeUrl && isWebUrl(notice.unsubscribeUrl) ? notice.unsubscribeUrl : null;
  const text = [
    ...paragraphs,
    ...(link ? [`${link.label}: ${link.url}`] : []),
    `— ${brand}`,
    ...(unsubscribe ? [`Stop these emails: ${unsubscribe}`] : []),
  ].join('\n\n');
  const html = [
    '<!doctype html>',
    '<html><body style="font-family: sans-serif; line-height: 1.5">',
    ...paragraphs.map((paragraph) => `<p>${escapeHtml(paragraph).replace(/\n/g, '<br>')}</p>`),
    ...(link
      ? [
          `<p><a href="${escapeHtml(link.url)}" style="display: inline-block; padding: 10px 16px; background: #0b5cff; color: #ffffff; text-decoration: none; border-radius: 6px">${escapeHtml(link.label)}</a></p>`,
        ]
      : []),
    `<p style="color: #666666">— ${escapeHtml(brand)}</p>`,
    ...(unsubscribe
      ? [
          `<p style="color: #999999; font-size: 12px"><a href="${escapeHtml(unsubscribe)}" style="color: #999999">Stop these emails</a></p>`,
        ]
      : []),
    '</body></html>',
  ].join('\n');
  return { subject, text, html, link };
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}
