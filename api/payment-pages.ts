/**
 * The small server-rendered page a customer lands on after Paystack's checkout.
 * Plain HTML with inline styles (helmet's default CSP allows inline styles, not
 * scripts); while a payment is still processing it reloads itself.
 */
import type { FulfilmentOutcome } from '../core/payments/index.js';

type PageOutcome = FulfilmentOutcome | { state: 'missing' } | { state: 'timeout' };

interface Links {
  telegramBotUsername?: string | undefined;
  whatsappNumber?: string | undefined;
}

const pages: Record<PageOutcome['state'], { title: string; body: string; refresh: boolean }> = {
  fulfilled: {
    title: 'Payment received',
    body: 'Thank you! Your payment is confirmed. Head back to the chat: your confirmation and receipt are waiting there.',
    refresh: false,
  },
  pending: {
    title: 'Payment still processing',
    body: 'We have not had the final word from Paystack yet. This page checks again by itself; you will also get a message in the chat as soon as it is confirmed.',
    refresh: true,
  },
  retry_later: {
    title: 'Payment still processing',
    body: 'We could not reach Paystack just now. If you paid, nothing is lost: we keep checking and will message you in the chat once it is confirmed.',
    refresh: true,
  },
  timeout: {
    title: 'Payment still processing',
    body: 'Paystack is taking a while to answer. If you paid, nothing is lost: we keep checking and will message you in the chat once it is confirmed.',
    refresh: true,
  },
  failed: {
    title: 'Payment failed',
    body: 'Paystack reports that the payment did not go through, and you have not been charged. You can try again from the chat.',
    refresh: false,
  },
  flagged: {
    title: 'Payment under review',
    body: 'Your payment arrived but does not match the checkout, so a person will look at it. You will hear from us in the chat.',
    refresh: false,
  },
  unknown_reference: {
    title: 'Payment not found',
    body: 'We do not know this payment reference. If you were charged, contact us from the chat with the reference from your Paystack receipt.',
    refresh: false,
  },
  missing: {
    title: 'Payment not found',
    body: 'This link has no payment reference. Start again from the chat.',
    refresh: false,
  },
};

export function renderCallbackPage(outcome: PageOutcome, links: Links): string {
  const page = pages[outcome.state];
  const reference = 'reference' in outcome ? outcome.reference : undefined;
  const buttons = [
    links.telegramBotUsername
      ? `<a class="button" href="https://t.me/${encodeURIComponent(links.telegramBotUsername)}">Back to Telegram</a>`
      : '',
    links.whatsappNumber
      ? `<a class="button" href="https://wa.me/${encodeURIComponent(links.whatsappNumber)}">Back to WhatsApp</a>`
      : '',
  ].join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${page.refresh ? '<meta http-equiv="refresh" content="5">' : ''}
<title>${escapeHtml(page.title)} · Atlantic</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b2733}
h1{font-size:1.5rem}.ref{color:#5b6b7a;font-size:.9rem}
.button{display:inline-block;margin:.5rem .5rem 0 0;padding:.6rem 1rem;border-radius:.4rem;background:#0b5cad;color:#fff;text-decoration:none}
</style>
</head>
<body>
<h1 data-state="${outcome.state}">${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.body)}</p>
${reference ? `<p class="ref">Reference: <code>${escapeHtml(reference)}</code></p>` : ''}
<p>${buttons}</p>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
