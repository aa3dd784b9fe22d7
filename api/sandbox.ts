/**
 * The SANDBOX shop: only mounted when no real Paystack is configured outside
 * production (config.paystack.sandbox). It lets a newcomer click through a
 * purchase against the local Paystack emulator before any chat channel is set
 * up: pick what to buy, enter an email, pay on the emulator's checkout page, and
 * land on the real callback page.
 */
import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { PaymentsService } from '../core/payments/index.js';
import { listPlans, planPrice } from '../core/plans.js';
import { formatMoney } from '../lib/money.js';
import { isDomainError } from '../lib/errors.js';
import { Account } from '../models/account.js';

export function sandboxRoutes(options: { payments: PaymentsService; logger: Logger }): Router {
  const router = express.Router();
  router.use('/sandbox', express.urlencoded({ extended: false, limit: '4kb' }));

  router.get('/sandbox', async (_req, res) => {
    const plans = (await listPlans({ onSaleOnly: true })).filter(
      (plan) => plan.code !== 'trial' && plan.code !== 'payg',
    );
    const options_ = [
      ...plans.map(
        (plan) =>
          `<option value="plan:${plan.code}">${escape(plan.name)} plan, ${escape(formatMoney({ amountMinor: planPrice(plan, 'NGN'), currency: 'NGN' }))}</option>`,
      ),
      '<option value="trial_deposit">Trial (refundable deposit)</option>',
      '<option value="wallet_topup">PAYG wallet top-up, ₦5,000.00</option>',
    ].join('');
    res.type('html').send(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Atlantic SANDBOX shop</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
.banner{background:#b3261e;color:#fff;padding:.5rem 1rem;border-radius:.4rem}
label{display:block;margin:.8rem 0 .3rem}input,select,button{font-size:1rem;padding:.4rem}</style></head>
<body><p class="banner">SANDBOX: payments go to a local Paystack emulator. No real money moves.</p>
<h1>Try a purchase</h1>
<form method="post" action="/sandbox/checkout">
<label for="email">Email</label><input id="email" name="email" type="email" required value="newcomer@example.com">
<label for="item">What to buy</label><select id="item" name="item">${options_}</select>
<p><button type="submit">Go to checkout</button></p></form></body></html>`);
  });

  router.post('/sandbox/checkout', async (req, res) => {
    const body = req.body as { email?: unknown; item?: unknown };
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const item = typeof body.item === 'string' ? body.item : '';
    try {
      const account = (await Account.findOne({ email })) ?? (await Account.create({ email }));
      const accountId = String(account._id);
      const checkout = item.startsWith('plan:')
        ? await options.payments.checkout({ accountId, purpose: 'plan', planCode: item.slice(5) })
        : item === 'trial_deposit'
          ? await options.payments.checkout({ accountId, purpose: 'trial_deposit' })
          : await options.payments.checkout({
              accountId,
              purpose: 'wallet_topup',
              amountMinor: 500_000,
            });
      res.redirect(303, checkout.authorizationUrl);
    } catch (err) {
      if (!isDomainError(err) && (err as { name?: string }).name !== 'ValidationError') throw err;
      options.logger.info({ err }, 'sandbox.checkout_refused');
      res
        .status(400)
        .type('html')
        .send(
          `<p>${escape(err instanceof Error ? err.message : 'Refused')}</p><p><a href="/sandbox">Back</a></p>`,
        );
    }
  });
  return router;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
