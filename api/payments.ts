/**
 * Paystack's two ways back to us:
 *   POST /webhooks/paystack  signed events: verified over the raw bytes, stored,
 *                            answered 200 at once, processed right after;
 *   GET  /payments/callback  the customer's browser after checkout: we verify the
 *                            payment ourselves and show where it stands.
 */
import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { PaymentsService, FulfilmentOutcome } from '../core/payments/index.js';
import { PAYSTACK_WEBHOOK_IPS } from '../lib/paystack/signature.js';
import { renderCallbackPage } from './payment-pages.js';

export interface PaymentRoutesOptions {
  payments: PaymentsService;
  logger: Logger;
  /** Webhook senders allowed; `paystack` stands for Paystack's published IPs; empty = any. */
  webhookAllowedIps: readonly string[];
  /** Where the payment page's buttons lead back to. */
  links: { telegramBotUsername?: string | undefined; whatsappNumber?: string | undefined };
  /** How long the callback page waits for Paystack's verify before saying "still processing". */
  callbackVerifyTimeoutMs?: number;
  /**
   * Stored events processed at once by this process; the rest wait their turn.
   * Default 256: side by side, their database calls share commands
   * (models/batching.ts), so more in flight costs little and hides verify latency.
   */
  processingConcurrency?: number;
}

/** Paystack event bodies are small; anything larger is not from Paystack. */
const WEBHOOK_BODY_LIMIT = '256kb';

export interface PaymentRoutes {
  router: Router;
  /** Resolves once every webhook event taken by this process has been processed (for stop()). */
  drain: () => Promise<void>;
}

const ACK_BODY = Buffer.from(JSON.stringify({ received: true }));
const ACK_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'content-length': String(ACK_BODY.length),
};

export function paymentRoutes(options: PaymentRoutesOptions): PaymentRoutes {
  const router = express.Router();
  const runLimited = createLimiter(options.processingConcurrency ?? 256);
  const allowed = new Set(
    options.webhookAllowedIps.flatMap((ip) => (ip === 'paystack' ? PAYSTACK_WEBHOOK_IPS : [ip])),
  );

  router.post(
    '/webhooks/paystack',
    express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT }),
    async (req, res) => {
      const ip = normaliseIp(req.ip);
      if (allowed.size > 0 && !allowed.has(ip)) {
        options.logger.warn({ ip }, 'webhook.sender_refused');
        res.status(403).json({ error: 'FORBIDDEN_SENDER' });
        return;
      }
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const signature = req.get('x-paystack-signature');
      const result = await options.payments.receiveWebhook(rawBody, signature, { claim: true });
      if (result.status !== 200) {
        options.logger.warn({ ip, reason: result.error }, 'webhook.refused');
        res.status(result.status).json({ error: result.error });
        return;
      }
      // The same bytes res.json({ received: true }) sends, written directly:
      // res.json's serialising, ETag hashing and freshness check were 8 % of the
      // CPU per event under load, for a body that never changes.
      res.writeHead(200, ACK_HEADERS).end(ACK_BODY);
      // Processed after the answer, so Paystack is never kept waiting; the jobs role
      // picks up anything this process does not finish.
      // A bounded number run at once, so a burst of events cannot starve the answers.
      const target = result.claimed ?? result.eventId;
      runLimited(() => options.payments.processWebhook(target)).catch((err: unknown) => {
        options.logger.error({ err, eventId: result.eventId }, 'webhook.process_failed');
      });
    },
  );

  router.get('/payments/callback', async (req, res) => {
    const reference = firstString(req.query.reference) ?? firstString(req.query.trxref);
    let outcome: FulfilmentOutcome | { state: 'missing' } | { state: 'timeout' };
    if (!reference || reference.length > 100) {
      outcome = { state: 'missing' };
    } else {
      outcome = await withTimeout(
        options.payments.fulfil(reference),
        options.callbackVerifyTimeoutMs ?? 8_000,
      );
    }
    res
      .status(outcome.state === 'missing' || outcome.state === 'unknown_reference' ? 404 : 200)
      .type('html')
      .send(renderCallbackPage(outcome, options.links));
  });

  return { router, drain: runLimited.idle };
}

interface Limiter {
  <T>(task: () => Promise<T>): Promise<T>;
  /** Resolves when no task is running or waiting. */
  idle: () => Promise<void>;
}

/** Runs at most `concurrency` tasks at once, the others in arrival order. */
function createLimiter(concurrency: number): Limiter {
  let running = 0;
  const waiting: (() => void)[] = [];
  let idleWaiters: (() => void)[] = [];
  const settle = (): void => {
    if (running > 0 || waiting.length > 0) return;
    for (const resolve of idleWaiters) resolve();
    idleWaiters = [];
  };
  const run = async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
      settle();
    }
  };
  return Object.assign(run, {
    idle: () =>
      running === 0 && waiting.length === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => idleWaiters.push(resolve)),
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | { state: 'timeout' }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ state: 'timeout' }>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'timeout' }), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function firstString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** `::ffff:52.31.139.75` (an IPv4 client on a dual-stack socket) is `52.31.139.75`. */
function normaliseIp(ip: string | undefined): string {
  return (ip ?? '').replace(/^::ffff:/, '');
}
