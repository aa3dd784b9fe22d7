/**
 * The SANDBOX shop: only mounted when no real Paystack is configured outside
 * production (config.paystack.sandbox). It lets a newcomer click through a
 * purchase against the local Paystack emulator before any chat channel is set
 * up: pick what to buy, enter an email, pay on the emulator's checkout page, and
 * land on the real callback page. Then it hands out proxy credentials for the
 * account's plan (what the bots will do), so the gateway can be tried too.
 */
import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { PaymentsService } from '../core/payments/index.js';
import { getPlan, listPlans, planPrice } from '../core/plans.js';
import { listLocations } from '../core/locations.js';
import {
  getProxyCredentials,
  issueProxyCredentials,
  rotateProxySecret,
} from '../core/proxy-credentials.js';
import { chooseLocations, getLiveSubscription } from '../core/subscriptions.js';
import type { Clock } from '../lib/clock.js';
import { formatMoney } from '../lib/money.js';
import { isDomainError } from '../lib/errors.js';
import { Account } from '../models/account.js';

export interface SandboxOptions {
  payments: PaymentsService;
  logger: Logger;
  clock: Clock;
  /** The gateway's ports, for the examples on the credentials page. */
  proxyPorts: () => { socksPort: number; httpPort: number };
}

export function sandboxRoutes(options: SandboxOptions): Router {
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
<p><button type="submit">Go to checkout</button></p></form>
<h2>Proxy credentials</h2>
<p>After paying for a plan (or a trial), get the proxy login for that email.
Each request makes a new secret; the previous one stops working.</p>
<form method="post" action="/sandbox/credentials">
<label for="cred-email">Email</label><input id="cred-email" name="email" type="email" required value="newcomer@example.com">
<p><button type="submit">Show my proxy credentials</button></p></form></body></html>`);
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
  router.post('/sandbox/credentials', async (req, res) => {
    const body = req.body as { email?: unknown };
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const account = email === '' ? null : await Account.findOne({ email });
    const subscription = account ? await getLiveSubscription(String(account._id)) : null;
    if (!account || !subscription || subscription.status === 'pending_payment') {
      res
        .status(404)
        .type('html')
        .send(
          '<p>No paid plan for that email yet: buy one first.</p><p><a href="/sandbox">Back</a></p>',
        );
      return;
    }
    const accountId = String(account._id);
    const plan = await getPlan(subscription.planCode);
    // Plans that let the customer choose need a choice before the gateway lets them in.
    const [first] = await listLocations();
    if (plan.locations.kind === 'choose' && subscription.chosenLocations.length === 0 && first) {
      await chooseLocations(subscription._id, { locations: [first.code], clock: options.clock });
    }
    const issued = (await getProxyCredentials(accountId))
      ? await rotateProxySecret(accountId, { clock: options.clock })
      : await issueProxyCredentials(accountId, {});
    const login = `${issued.username}:${issued.secret}`;
    const ports = options.proxyPorts();
    const examples = [
      plan.protocols.includes('https')
        ? `curl -x http://${login}@localhost:${ports.httpPort} https://example.com/`
        : null,
      plan.protocols.includes('socks5')
        ? `curl --socks5-hostname localhost:${ports.socksPort} -U ${login} https://example.com/`
        : null,
    ].filter((line): line is string => line !== null);
    res.type('html').send(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Atlantic SANDBOX: proxy credentials</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
.banner{background:#b3261e;color:#fff;padding:.5rem 1rem;border-radius:.4rem}code,pre{background:#f3f3f3;padding:.2rem .4rem}</style></head>
<body><p class="banner">SANDBOX</p>
<h1>Your proxy credentials</h1>
<p>Plan: ${escape(plan.name)} (${escape(plan.protocols.join(', '))})</p>
<p>Username: <code>${escape(issued.username)}</code><br>Secret: <code>${escape(issued.secret)}</code> (shown once)</p>
<p>Try it (the gateway refuses private addresses):</p>
${examples.map((line) => `<pre>${escape(line)}</pre>`).join('\n')}
<p>Options go in the username: <code>${escape(issued.username)}-country-&lt;location&gt;</code>, <code>${escape(issued.username)}-session-&lt;id&gt;</code> for a sticky exit.</p>
<p><a href="/sandbox">Back to the shop</a></p></body></html>`);
  });
  return router;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
