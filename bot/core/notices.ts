/**
 * Notifications from the outbox (core/notifications.ts) as chat messages:
 * one renderer per event, from the facts the event carries, each with the
 * one-tap next step. A confirmed payment comes with its invoice as a PDF.
 * Shared by the Telegram and WhatsApp deliverers: WhatsApp sends the plain
 * text (renderNotice), Telegram the same words as Telegram HTML with the
 * lead in bold (renderNoticeHtml).
 */
import { formatMoney, isCurrency, type Currency } from '../../lib/money.js';
import type { ClaimedDelivery } from '../../core/notifications.js';
import { getInvoiceByPaymentReference } from '../../core/invoices.js';
import { renderInvoicePdf } from '../../core/invoice-pdf.js';
import type { NotificationEvent } from '../../models/notification.js';
import { formatBytes } from '../render/gauges.js';
import type { Texts } from './texts/index.js';
import type { Menu, Outbound } from './types.js';

type Data = Record<string, unknown>;

const str = (value: unknown): string => (typeof value === 'string' ? value : '');
const num = (value: unknown): number => (typeof value === 'number' ? value : 0);

function money(data: Data, field = 'amountMinor'): string {
  const currency: Currency = isCurrency(data.currency) ? data.currency : 'NGN';
  return formatMoney({ amountMinor: num(data[field]), currency });
}

function day(value: unknown): string {
  const text = str(value);
  return text ? text.slice(0, 10) : '';
}

const b = (label: string, action: string) => ({ label, action });

/** The event's message(s) for one customer or admin chat. */
export async function renderNotice(t: Texts, delivery: ClaimedDelivery): Promise<Outbound[]> {
  const data = delivery.data;
  const text = (body: string, menu?: Menu): Outbound[] => [
    menu ? { kind: 'text', text: body, menu } : { kind: 'text', text: body },
  ];
  const event: NotificationEvent = delivery.event;
  switch (event) {
    case 'payment_confirmed': {
      const messages: Outbound[] = text(
        t.notice.paymentConfirmed(
          str(data.purpose),
          money(data),
          str(data.planCode),
          str(data.description),
        ),
        [[b('🔌 Connect', 'connect'), b('📊 Usage', 'usage')], [b('⬅️ Menu', 'menu')]],
      );
      const invoice = await getInvoiceByPaymentReference(str(data.reference));
      if (invoice) {
        messages.push({
          kind: 'document',
          bytes: await renderInvoicePdf(invoice),
          filename: `${invoice.number ?? 'invoice'}.pdf`,
          mimeType: 'application/pdf',
          caption: t.notice.invoiceCaption(invoice.number ?? ''),
        });
      }
      return messages;
    }
    case 'payment_failed': {
      const url = str(data.authorizationUrl);
      const body = t.notice.paymentFailed(money(data), str(data.reason), day(data.graceEndsAt));
      return url
        ? [{ kind: 'link', text: body, url, label: t.payButton(money(data)), menu: t.backToMenu }]
        : text(body, [[b('💳 Billing', 'billing')]]);
    }
    case 'payment_flagged':
      return text(t.notice.paymentFlagged(money(data)));
    case 'trial_started':
      return text(t.notice.trialStarted, [[b('🔌 Connect', 'connect')]]);
    case 'trial_refused':
      return text(t.notice.trialRefused(money(data, 'depositMinor')), [
        [b('🛒 See plans', 'plans')],
      ]);
    case 'trial_ending':
      return text(t.notice.trialEnding(day(data.trialEndsAt)), [[b('🛒 See plans', 'plans')]]);
    case 'deposit_refunded':
      return text(t.notice.depositRefunded(money(data), str(data.method)));
    case 'refund_processed':
      return text(t.notice.refundProcessed(money(data), str(data.method)));
    case 'renewal_due':
      return text(
        t.notice.renewalDue(
          str(data.planCode),
          day(data.periodEnd),
          money(data),
          data.chargesSavedCard !== false,
        ),
        [[b('💳 Billing', 'billing')]],
      );
    case 'usage_50':
    case 'usage_80':
    case 'usage_95':
    case 'usage_100':
      return text(t.notice.usage(Number(event.slice(6)), day(data.periodEnd)), [
        [b('📊 Usage', 'usage'), b('🛒 Plans', 'plans')],
      ]);
    case 'wallet_low':
      return text(t.notice.walletLow(money(data, 'balanceMinor')), [[b('Top up', 'topup')]]);
    case 'wallet_empty':
      return text(t.notice.walletEmpty, [[b('Top up', 'topup')]]);
    case 'cancelled':
      return text(
        t.notice.cancelled(str(data.planCode), Boolean(data.atPeriodEnd), day(data.endsAt)),
        [[b('🛒 Plans', 'plans')]],
      );
    case 'welcome':
      return text(t.welcome, t.mainMenu(null));
    case 'broadcast':
      return text(t.admin.broadcastNotice(str(data.text)));
    case 'exit_pool_down':
      return text(
        t.notice.exitPoolDown(str(data.label) || str(data.location), str(data.lastError)),
        [[b('Upstreams', 'admin:upstreams:health')]],
      );
    case 'ledger_drift':
      return text(t.notice.ledgerDrift(num(data.wallets), num(data.totalDriftMinor)));
    case 'deposit_refund_failed':
    case 'refund_failed':
    case 'dispute_opened':
      return text(t.notice.adminAlert(event, JSON.stringify(data)));
    case 'usage_forecast':
      return text(t.notice.usageForecast(num(data.limitBytes), str(data.runsOutAt)), [
        [b('📊 Usage', 'usage'), b('🛒 Plans', 'plans')],
      ]);
    case 'wallet_forecast':
      return text(t.notice.walletForecast(money(data, 'balanceMinor'), str(data.runsOutAt)), [
        [b('Top up', 'topup')],
      ]);
    case 'weekly_summary':
      return text(
        t.notice.weeklySummary({
          week: str(data.week),
          used: formatBytes(num(data.usedBytes)),
          planCode: str(data.planCode),
          renewsAt: day(data.renewsAt),
          endsAt: day(data.endsAt),
          paygCost: num(data.paygCostMinor) > 0 ? money(data, 'paygCostMinor') : '',
        }),
        [[b('📊 Usage', 'usage'), b('💳 Billing', 'billing')]],
      );
    case 'expired':
      return text(t.notice.expired(str(data.planCode)), [[b('🛒 See plans', 'plans')]]);
    case 'plan_changed':
      return text(
        t.notice.planChanged(
          str(data.toPlanCode),
          num(data.walletCreditMinor) > 0 ? money(data, 'walletCreditMinor') : '',
        ),
        [[b('🔌 Connect', 'connect'), b('📊 Usage', 'usage')]],
      );
    case 'seat_added':
      return text(t.notice.seatAdded, [[b('🔌 Connect', 'connect')]]);
    case 'seat_removed':
      return text(t.notice.seatRemoved, [[b('🛒 See plans', 'plans')]]);
    // New events: add their case above this line (the default keeps an unrendered event readable).
    default:
      return text(t.notice.adminAlert(String(event), JSON.stringify(data)));
  }
}

/**
 * Events whose text has no lead to set in bold: the welcome (a menu), a
 * broadcast (the admin's words as typed) and the raw admin alerts.
 */
const WITHOUT_LEAD: ReadonlySet<NotificationEvent> = new Set<NotificationEvent>([
  'welcome',
  'broadcast',
  'deposit_refund_failed',
  'refund_failed',
  'dispute_opened',
]);

/**
 * A notice's lead: its first sentence (up to `.`, `!` or `?` before a space)
 * or its first line, whichever ends first; the whole text if it is one.
 */
export function noticeLead(text: string): string {
  const match = /^[\s\S]*?(?:[.!?](?=\s)|(?=\n)|$)/.exec(text);
  return match?.[0] ?? text;
}

/** Text for Telegram's `parse_mode: 'HTML'`: the three characters it reads as markup, escaped. */
export function escapeTelegramHtml(text: string): string {
  return text.replace(/[&<>]/g, (char) =>
    char === '&' ? '&amp;' : char === '<' ? '&lt;' : '&gt;',
  );
}

/**
 * The event's messages as Telegram HTML (send them with `parse_mode: 'HTML'`):
 * the first text's lead (what happened, e.g. "Your wallet is low: ₦400.00
 * left.") in bold as its headline, and every text escaped, so a `<` in a
 * card issuer's reason or a broadcast shows as typed. The words are the
 * same as on WhatsApp; only the emphasis differs. Captions stay plain text.
 */
export async function renderNoticeHtml(t: Texts, delivery: ClaimedDelivery): Promise<Outbound[]> {
  let bolded = WITHOUT_LEAD.has(delivery.event);
  return (await renderNotice(t, delivery)).map((message) => {
    if (message.kind !== 'text' && message.kind !== 'link') return message;
    if (bolded) return { ...message, text: escapeTelegramHtml(message.text) };
    bolded = true;
    const lead = noticeLead(message.text);
    const rest = message.text.slice(lead.length);
    return {
      ...message,
      text: `<b>${escapeTelegramHtml(lead)}</b>${escapeTelegramHtml(rest)}`,
    };
  });
}
