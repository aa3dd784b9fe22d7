/**
 * The shop: plans compared side by side, and everything bought through a
 * Paystack link (a plan, a trial deposit, a wallet top-up) or charged to the
 * saved card (extra data). The confirmation comes later, from the
 * notification outbox, once Paystack's payment is fulfilled.
 */
import { formatMoney } from '../../../lib/money.js';
import { MAX_TOPUP_MINOR, MIN_TOPUP_MINOR } from '../../../core/payments/checkout.js';
import { comparePlans, listPlans, type PlanComparisonRow } from '../../../core/plans.js';
import { getLiveSubscription, startPayg } from '../../../core/subscriptions.js';
import type { Checkout } from '../../../core/payments/checkout.js';
import type { Journey, Turn } from '../conversation.js';
import type { Menu } from '../types.js';

const TOPUP_CHOICES_MINOR = [100_000, 500_000, 1_000_000];

function sendLink(turn: Turn, what: string, checkout: Checkout): void {
  const amount = formatMoney({ amountMinor: checkout.amountMinor, currency: checkout.currency });
  turn.endStep();
  turn.say({
    kind: 'link',
    text: `${checkout.reused ? `${turn.t.reusedLink}\n\n` : ''}${turn.t.payLink(what, amount)}`,
    url: checkout.authorizationUrl,
    label: turn.t.payButton(amount),
    menu: turn.t.backToMenu,
  });
}

async function topUp(turn: Turn, amountMinor: number): Promise<void> {
  const checkout = await turn.deps.payments.checkout({
    accountId: turn.account.id,
    purpose: 'wallet_topup',
    amountMinor,
  });
  sendLink(turn, turn.t.topupPurchase, checkout);
}

const naira = (amountMinor: number) => formatMoney({ amountMinor, currency: 'NGN' });

/** The catalogue changes rarely (an admin's edit): read it at most every 5 s per process. */
const PLANS_CACHE_MS = 5_000;
let plansCache: { at: number; rows: PlanComparisonRow[] } | undefined;
async function planRows(): Promise<PlanComparisonRow[]> {
  const now = Date.now();
  if (!plansCache || now - plansCache.at > PLANS_CACHE_MS) {
    plansCache = { at: now, rows: comparePlans(await listPlans({ onSaleOnly: true })) };
  }
  return plansCache.rows;
}

export const shopJourney: Journey = {
  actions: {
    async plans(turn) {
      const rows = await planRows();
      const blocks = rows.map((row) =>
        turn.t.planBlock({
          name: row.name,
          price: row.labels.price,
          data: row.labels.data,
          locations: row.labels.locations,
          protocols: row.labels.protocols,
          maxConnections: row.maxConnections,
          seats: row.seats,
          description: row.description,
        }),
      );
      const menu: Menu = [];
      for (const row of rows) {
        if (row.kind === 'recurring')
          menu.push([{ label: turn.t.buyLabel(row.name), action: `buy:${row.code}` }]);
      }
      const extras = [];
      if (rows.some((row) => row.kind === 'trial'))
        extras.push({ label: turn.t.trialLabel, action: 'trial' });
      if (rows.some((row) => row.kind === 'payg'))
        extras.push({ label: turn.t.paygLabel, action: 'payg' });
      if (extras.length > 0) menu.push(extras);
      menu.push(...turn.t.backToMenu);
      turn.text(`${turn.t.plansTitle}\n\n${blocks.join('\n\n')}`, menu);
    },
    async buy(turn) {
      const planCode = turn.args[0] ?? '';
      const checkout = await turn.deps.payments.checkout({
        accountId: turn.account.id,
        purpose: 'plan',
        planCode,
      });
      const plan = (await planRows()).find((row) => row.code === planCode);
      sendLink(turn, turn.t.planPurchase(plan?.name ?? planCode), checkout);
    },
    async trial(turn) {
      const checkout = await turn.deps.payments.checkout({
        accountId: turn.account.id,
        purpose: 'trial_deposit',
      });
      const trial = (await planRows()).find((row) => row.kind === 'trial');
      sendLink(turn, turn.t.trialPurchase(trial?.trialDays ?? 3), checkout);
    },
    async payg(turn) {
      // Pay as you go needs no purchase: it starts now, and the wallet pays each hour.
      const live = await getLiveSubscription(turn.account.id);
      if (!live) await startPayg({ accountId: turn.account.id, clock: turn.deps.clock });
      await turn.go('topup');
    },
    async topup(turn) {
      const choice = turn.args[0];
      if (choice === 'other') {
        turn.ask(
          'topup.amount',
          turn.t.topupOtherAsk(naira(MIN_TOPUP_MINOR), naira(MAX_TOPUP_MINOR)),
        );
        return;
      }
      if (choice !== undefined && /^\d+$/.test(choice)) {
        await topUp(turn, Number(choice));
        return;
      }
      turn.text(turn.t.topupAsk, [
        TOPUP_CHOICES_MINOR.map((amount) => ({ label: naira(amount), action: `topup:${amount}` })),
        [{ label: turn.t.topupOther, action: 'topup:other' }],
        ...turn.t.backToMenu,
      ]);
    },
  },
  steps: {
    async 'topup.amount'(turn, text) {
      const cleaned = text.replace(/[₦,\s]/g, '');
      const amount = /^\d+(\.\d{1,2})?$/.test(cleaned) ? Math.round(Number(cleaned) * 100) : NaN;
      if (!(amount >= MIN_TOPUP_MINOR && amount <= MAX_TOPUP_MINOR)) {
        turn.text(turn.t.topupBadAmount(naira(MIN_TOPUP_MINOR), naira(MAX_TOPUP_MINOR)));
        return;
      }
      await topUp(turn, amount);
    },
  },
};
