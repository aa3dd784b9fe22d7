/**
 * The emulator's stand-in for Paystack's hosted checkout
 * (https://paystack.com/docs/payments/accept-payments/#redirect): a plain page
 * with three buttons, each a form POST, so it works with curl, a test's fetch
 * and a real browser alike. It is loudly marked SANDBOX: no card is asked
 * for and no money moves.
 */
import { formatMoney, isCurrency } from '../../money.js';

export interface CheckoutView {
  accessCode: string;
  reference: string;
  email: string;
  amountMinor: number;
  currency: string;
  status: string;
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function describeAmount(amountMinor: number, currency: string): string {
  return isCurrency(currency)
    ? formatMoney({ amountMinor, currency })
    : `${amountMinor} ${currency} (minor units)`;
}

export function renderCheckoutPage(view: CheckoutView): string {
  const action = (what: string): string =>
    `/checkout/${encodeURIComponent(view.accessCode)}/${what}`;
  const open = view.status !== 'success' && view.status !== 'failed';
  const buttons = open
    ? `<form method="post" action="${escapeHtml(action('pay'))}"><button type="submit" name="action" value="pay">Pay (sandbox)</button></form>
    <form method="post" action="${escapeHtml(action('decline'))}"><button type="submit" name="action" value="decline">Decline</button></form>
    <form method="post" action="${escapeHtml(action('cancel'))}"><button type="submit" name="action" value="cancel">Cancel</button></form>`
    : `<p>This transaction is already ${escapeHtml(view.status)}.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SANDBOX checkout - Paystack emulator</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem; }
  .sandbox { background: #b00020; color: #fff; padding: .75rem; font-weight: bold; text-align: center; }
  form { display: inline-block; margin: .25rem; }
  button { font-size: 1rem; padding: .5rem 1rem; }
</style>
</head>
<body>
<p class="sandbox">SANDBOX - Paystack emulator. No real payment is made.</p>
<h1>${escapeHtml(describeAmount(view.amountMinor, view.currency))}</h1>
<p>Paying as <strong>${escapeHtml(view.email)}</strong></p>
<p>Reference: <code>${escapeHtml(view.reference)}</code></p>
${buttons}
</body>
</html>
`;
}

/** Shown when a checkout has no callback URL to return to. */
export function renderCheckoutResult(reference: string, status: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SANDBOX checkout - ${escapeHtml(status)}</title></head>
<body><p><strong>SANDBOX - Paystack emulator.</strong></p>
<p>Transaction <code>${escapeHtml(reference)}</code> is now ${escapeHtml(status)}.</p></body></html>
`;
}
