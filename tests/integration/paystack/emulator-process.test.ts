/**
 * The emulator as its own process (`main.ts`), driven over HTTP the way a
 * benchmark in another process drives it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { newReference } from '../../../lib/ids.js';
import { createPaystackClient } from '../../../lib/paystack/client.js';
import { isValidPaystackSignature } from '../../../lib/paystack/signature.js';
import { startWebhookReceiver } from './webhook-receiver.js';
import type { WebhookReceiver } from './webhook-receiver.js';

const root = path.resolve(import.meta.dirname, '../../..');
const secretKey = 'sk_test_process_suite';
let receiver: WebhookReceiver;
let child: ReturnType<typeof spawn>;
let baseUrl: string;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(root, 'lib/paystack/emulator/main.ts'),
      '--secret-key',
      secretKey,
      '--port',
      '0',
      '--webhook-url',
      receiver.url,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (child.stdout === null) throw new Error('no stdout');
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, 'line')) as [string];
  baseUrl = (JSON.parse(line) as { baseUrl: string }).baseUrl;
});
afterAll(async () => {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  await receiver.stop();
});

async function control(pathname: string, body: unknown, key = secretKey) {
  const response = await fetch(`${baseUrl}/_emulator/${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('Paystack emulator process', () => {
  it('prints its base URL and serves the client', async () => {
    expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const paystack = createPaystackClient({ secretKey, baseUrl });
    const reference = newReference('p');
    await paystack.initializeTransaction({
      reference,
      amountMinor: 10_000,
      currency: 'NGN',
      email: 'p@example.com',
      callbackUrl: 'http://localhost/cb',
    });
    expect((await control(`pay/${reference}`, { deliver: { duplicates: 1 } })).status).toBe(200);
    expect((await paystack.verifyTransaction(reference)).status).toBe('success');
    const webhooks = await receiver.waitFor(2);
    for (const webhook of webhooks) {
      expect(isValidPaystackSignature(webhook.rawBody, webhook.signature, secretKey)).toBe(true);
    }
  });

  it('takes fault injection and events over HTTP', async () => {
    const paystack = createPaystackClient({ secretKey, baseUrl });
    expect(
      (await control('fail-next-requests', { endpoint: 'customer', fault: { status: 503 } }))
        .status,
    ).toBe(200);
    await expect(paystack.createCustomer({ email: 'x@example.com' })).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
    });
    const sent = await control('events', {
      event: 'invoice.create',
      data: { id: 1 },
      signature: 'wrong',
    });
    expect(sent.json).toMatchObject({
      ok: true,
      deliveries: [{ event: 'invoice.create', status: 200 }],
    });
  });

  it('refuses control requests without the secret key, and bad ones with a reason', async () => {
    expect((await control('pay/x', {}, 'sk_test_wrong')).status).toBe(401);
    const bad = await control('next-charge-authorization', { outcome: 'maybe' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toEqual(expect.stringContaining('outcome'));
  });
});
