/**
 * A real local HTTP server that records every webhook it receives, raw bytes
 * and headers included, so tests check signatures over exactly what was sent.
 */
import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  rawBody: Buffer;
  signature: string | undefined;
  contentType: string | undefined;
  event: string;
  data: Record<string, unknown>;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** The status to answer with (default 200). */
  respondWith(status: number): void;
  /** Resolves once `count` webhooks arrived in total (already or later). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  stop(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const events = new EventEmitter();
  let status = 200;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const rawBody = Buffer.concat(chunks);
      const parsed = JSON.parse(rawBody.toString('utf8')) as {
        event: string;
        data: Record<string, unknown>;
      };
      const header = request.headers['x-paystack-signature'];
      received.push({
        rawBody,
        signature: typeof header === 'string' ? header : undefined,
        contentType: request.headers['content-type'],
        event: parsed.event,
        data: parsed.data,
      });
      response.writeHead(status).end();
      events.emit('received');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/paystack`,
    received,
    respondWith(next) {
      status = next;
    },
    waitFor(count, timeoutMs = 5000) {
      if (received.length >= count) return Promise.resolve(received.slice(0, count));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('received', check);
          reject(new Error(`expected ${count} webhooks, got ${received.length}`));
        }, timeoutMs);
        function check(): void {
          if (received.length < count) return;
          clearTimeout(timer);
          events.off('received', check);
          resolve(received.slice(0, count));
        }
        events.on('received', check);
      });
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
