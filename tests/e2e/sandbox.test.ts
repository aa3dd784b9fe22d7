/**
 * A newcomer with no Paystack account runs `npm start`, opens the SANDBOX shop,
 * buys a plan on the local emulator's checkout page and lands on the real
 * callback page, paid. Production can never run the sandbox.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../config/index.js';
import { startAtlantic, type AtlanticProcess, type LogLine } from '../support/process.js';

const started: AtlanticProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
});

const isMsg = (prefix: string) => (line: LogLine) => line.msg?.startsWith(prefix) ?? false;

describe('the Paystack sandbox', () => {
  it('lets a newcomer click through a purchase without Paystack', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-sandbox-'));
    const atlantic = startAtlantic({ DATA_DIR: dataDir, API_PORT: '0', ROLES: 'api' });
    started.push(atlantic);
    const banner = await atlantic.waitForLog(isMsg('PAYSTACK SANDBOX'));
    const listening = await atlantic.waitForLog(isMsg('api.listening'));
    await atlantic.waitForLog(isMsg('atlantic.started'));
    const api = `http://127.0.0.1:${String(listening.port)}`;
    expect(String(banner.paystack)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const shop = await fetch(`${api}/sandbox`);
    expect(await shop.text()).toContain('No real money moves');

    const checkout = await fetch(`${api}/sandbox/checkout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=newcomer%40example.com&item=plan%3Astarter',
      redirect: 'manual',
    });
    expect(checkout.status).toBe(303);
    const checkoutPage = String(checkout.headers.get('location'));
    expect(checkoutPage.startsWith(String(banner.paystack))).toBe(true);

    const page = await (await fetch(checkoutPage)).text();
    expect(page).toContain('SANDBOX');
    const payAction = /<form method="post" action="([^"]+)"><button[^>]*value="pay"/.exec(
      page,
    )?.[1];
    expect(payAction).toBeDefined();
    const paid = await fetch(new URL(payAction?.replace(/&amp;/g, '&') ?? '', checkoutPage), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'action=pay',
      redirect: 'manual',
    });
    const callback = String(paid.headers.get('location'));
    expect(callback).toMatch(/\/payments\/callback\?trxref=.+&reference=/);

    const landing = await fetch(callback.replace(/^https?:\/\/[^/]+/, api));
    expect(await landing.text()).toContain('Payment received');

    const selected = await atlantic.waitForLog(isMsg('database.selected'));
    const client = new MongoClient(String(selected.uri));
    try {
      const db = client.db('atlantic');
      const account = await db.collection('accounts').findOne({ email: 'newcomer@example.com' });
      expect(
        await db.collection('subscriptions').findOne({ accountId: account?._id }),
      ).toMatchObject({
        planCode: 'starter',
        status: 'active',
      });
      expect(await db.collection('invoices').countDocuments({ accountId: account?._id })).toBe(1);
    } finally {
      await client.close();
    }
    expect(await atlantic.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('is impossible in production, whatever else is configured', () => {
    const cwd = os.tmpdir();
    const { config } = loadConfig(
      {
        NODE_ENV: 'production',
        MONGODB_URI: 'mongodb://db:27017/atlantic',
        JWT_SECRET: 'x'.repeat(40),
        PAYSTACK_SECRET_KEY: 'sk_test_abcdef123456',
      },
      { cwd },
    );
    expect(config.paystack.sandbox).toBe(false);
    expect(() =>
      loadConfig(
        {
          NODE_ENV: 'production',
          MONGODB_URI: 'mongodb://db:27017/atlantic',
          JWT_SECRET: 'x'.repeat(40),
          PAYSTACK_SECRET_KEY: 'sk_test_local_0123456789abcdef',
        },
        { cwd },
      ),
    ).toThrow(/PAYSTACK_SECRET_KEY/);
  });
});
