/**
 * Webhook delivery for the Paystack emulator: each event is POSTed as JSON
 * `{ event, data }` with `x-paystack-signature` = hex HMAC-SHA512 of the exact
 * bytes sent (https://paystack.com/docs/payments/webhooks/). Real Paystack
 * delivers at least once and in no promised order, so tests can ask for
 * duplicates, a delay, a reversed or shuffled order, parallel delivery, and
 * can hold deliveries to release a batch from several calls at once.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { signPaystackBody, PAYSTACK_SIGNATURE_HEADER } from '../signature.js';

export type DeliveryOrder = 'as-is' | 'reverse' | 'shuffle';

export interface DeliveryOptions {
  /** Extra copies of each event, sent byte-for-byte identical (as a Paystack retry is). Default 0. */
  duplicates?: number;
  /** Wait this long before the first delivery (real time), e.g. to let a callback win a race. Default 0. */
  delayMs?: number;
  /**
   * Order of the events (copies included) this call produces: as produced,
   * reversed (e.g. `refund.processed` before `refund.processing`), or shuffled.
   * Default 'as-is'. To reorder events of several calls, see `holdDeliveries`.
   */
  order?: DeliveryOrder;
  /** Send all at once instead of one after another (to race duplicate handling). Default false. */
  parallel?: boolean;
  /** Further attempts while the receiver answers anything but 2xx or cannot be reached. Default 0. */
  retries?: number;
  /** Deliver to this URL instead of the emulator's webhook URL. */
  url?: string;
}

export type SignatureMode = 'valid' | 'wrong' | 'missing';

export interface WebhookEvent {
  event: string;
  data: Record<string, unknown>;
  /** How to sign it: Paystack's way (default), with a wrong key, or not at all. */
  signature?: SignatureMode;
}

export interface DeliveryResult {
  /** 1, 2, … in the order attempts were made. */
  seq: number;
  event: string;
  url: string;
  /** 1 for the first attempt of a copy, 2 for its first retry, … */
  attempt: number;
  /** The receiver's HTTP status; null when no answer came. */
  status: number | null;
  ok: boolean;
  error?: string;
  /** The exact bytes sent (the signature covers these). */
  rawBody: string;
  signature: string | null;
  deliveredAt: Date;
}

interface QueuedEvent extends WebhookEvent {
  url: string | undefined;
  retries: number;
}

const DELIVERY_TIMEOUT_MS = 10_000;

export class WebhookSender {
  readonly deliveries: DeliveryResult[] = [];
  private held: QueuedEvent[] | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private seq = 0;

  constructor(
    private readonly options: {
      secretKey: string;
      clock: Clock;
      logger: Logger | undefined;
      webhookUrl: () => string | undefined;
    },
  ) {}

  /**
   * Delivers `events` as asked and resolves with every attempt made, after
   * the last one finished. While deliveries are held it queues them and
   * resolves at once with `[]`.
   */
  async send(events: WebhookEvent[], delivery: DeliveryOptions = {}): Promise<DeliveryResult[]> {
    const copies = Math.max(0, Math.floor(delivery.duplicates ?? 0));
    const expanded: QueuedEvent[] = events.flatMap((event) =>
      Array.from({ length: copies + 1 }, () => ({
        ...event,
        url: delivery.url,
        retries: Math.max(0, Math.floor(delivery.retries ?? 0)),
      })),
    );
    const ordered = reorder(expanded, delivery.order ?? 'as-is');
    if (this.held !== undefined) {
      this.held.push(...ordered);
      return [];
    }
    const run = async (): Promise<DeliveryResult[]> => {
      if (delivery.delayMs !== undefined && delivery.delayMs > 0) await wait(delivery.delayMs);
      return this.deliverAll(ordered, delivery.parallel ?? false);
    };
    return this.track(run());
  }

  /** Starts a send without awaiting it; `idle()` waits for it (and the others). */
  sendInBackground(events: WebhookEvent[], delivery: DeliveryOptions = {}): void {
    this.send(events, delivery).catch((error: unknown) => {
      this.options.logger?.error({ err: error }, 'emulator.webhook_failed');
    });
  }

  /** From now on, events are queued instead of delivered, until `releaseDeliveries`. */
  hold(): void {
    this.held ??= [];
  }

  /** Delivers every queued event in the order asked and stops holding. */
  async release(
    options: { order?: DeliveryOrder; parallel?: boolean } = {},
  ): Promise<DeliveryResult[]> {
    const queued = this.held ?? [];
    this.held = undefined;
    return this.track(
      this.deliverAll(reorder(queued, options.order ?? 'as-is'), options.parallel ?? false),
    );
  }

  /** Resolves when no delivery is in flight (background ones included). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) {
      await Promise.allSettled([...this.inflight]);
    }
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = (): void => void this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  private async deliverAll(events: QueuedEvent[], parallel: boolean): Promise<DeliveryResult[]> {
    if (parallel) return (await Promise.all(events.map((event) => this.deliver(event)))).flat();
    const results: DeliveryResult[] = [];
    for (const event of events) results.push(...(await this.deliver(event)));
    return results;
  }

  private async deliver(queued: QueuedEvent): Promise<DeliveryResult[]> {
    const url = queued.url ?? this.options.webhookUrl();
    const rawBody = JSON.stringify({ event: queued.event, data: queued.data });
    const signature = this.sign(rawBody, queued.signature ?? 'valid');
    const results: DeliveryResult[] = [];
    for (let attempt = 1; attempt <= queued.retries + 1; attempt += 1) {
      const result = await this.attempt(queued.event, url, rawBody, signature, attempt);
      results.push(result);
      if (result.ok || url === undefined) break;
    }
    return results;
  }

  private sign(rawBody: string, mode: SignatureMode): string | null {
    if (mode === 'missing') return null;
    const key = mode === 'wrong' ? `${this.options.secretKey}-wrong` : this.options.secretKey;
    return signPaystackBody(rawBody, key);
  }

  private async attempt(
    event: string,
    url: string | undefined,
    rawBody: string,
    signature: string | null,
    attempt: number,
  ): Promise<DeliveryResult> {
    const base = { event, url: url ?? '', attempt, rawBody, signature };
    let result: DeliveryResult;
    if (url === undefined) {
      result = this.record({ ...base, status: null, ok: false, error: 'no webhook URL set' });
      return result;
    }
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Paystack-Emulator',
          ...(signature === null ? {} : { [PAYSTACK_SIGNATURE_HEADER]: signature }),
        },
        body: rawBody,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      // Drain the body so the connection can be reused or closed cleanly.
      await response.arrayBuffer();
      result = this.record({
        ...base,
        status: response.status,
        ok: response.status >= 200 && response.status < 300,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      result = this.record({ ...base, status: null, ok: false, error: message });
    }
    this.options.logger?.debug(
      { event, status: result.status, attempt, seq: result.seq },
      'emulator.webhook_delivered',
    );
    return result;
  }

  private record(fields: Omit<DeliveryResult, 'seq' | 'deliveredAt'>): DeliveryResult {
    this.seq += 1;
    const result: DeliveryResult = {
      seq: this.seq,
      ...fields,
      deliveredAt: this.options.clock.now(),
    };
    this.deliveries.push(result);
    return result;
  }
}

function reorder<T>(items: T[], order: DeliveryOrder): T[] {
  if (order === 'reverse') return [...items].reverse();
  if (order === 'shuffle') {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i -= 1) {
      const j = Math.floor(Math.random() * (i + 1));
      const a = copy[i];
      const b = copy[j];
      if (a !== undefined && b !== undefined) {
        copy[i] = b;
        copy[j] = a;
      }
    }
    return copy;
  }
  return items;
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
