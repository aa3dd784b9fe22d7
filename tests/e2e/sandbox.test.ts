/**
 * A newcomer with no Paystack account runs `npm start`, opens the SANDBOX shop,
 * buys a plan on the local emulator's checkout page, lands on the real
 * callback page, paid, gets proxy credentials and uses them through the
 * gateway. Production can never run the sandbox.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../config/index.js';
import { startAtlantic, type AtlanticProcess, type LogLine } from '../support/process.js';

const started: AtlanticProcess[] = [];
const sites: Server[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
  for (const site of sites.splice(0)) site.close();
});

const isMsg = (prefix: string) => (line: LogLine) => line.msg?.startsWith(prefix) ?? false;

/** An HTTP CONNECT tunnel through the gateway (what a browser does for HTTPS), then a GET inside it. */
async function throughConnect(
  proxyPort: number,
  login: string,
  targetPort: number,
): Promise<string> {
  const socket = net.connect(proxyPort, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n` +
      `Proxy-Authorization: Basic ${Buffer.from(login).toString('base64')}\r\n\r\n`,
  );
  const [established] = (await once(socket, 'data')) as [Buffer];
  expect(established.toString()).toMatch(/^HTTP\/1\.1 200/);
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

describe('the Paystack sandbox', () => {
  it('lets a newcomer buy a plan without Paystack and use the proxy it pays for', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-sandbox-'));
    // The site the newcomer visits through the proxy; Starter may CONNECT to its port only.
    const site = createServer((_req, res) => res.end('hello through Atlantic'));
    site.listen(0, '127.0.0.1');
    await once(site, 'listening');
    const sitePort = (site.address() as AddressInfo).port;
    sites.push(site);
    const atlantic = startAtlantic({
      DATA_DIR: dataDir,
      API_PORT: '0',
      SOCKS_PORT: '0',
      HTTP_PROXY_PORT: '0',
      ROLES: 'api,proxy',
      HTTPS_ONLY_PORTS: String(sitePort),
      // The site is on loopback, which the gateway refuses unless told otherwise.
      ALLOW_PRIVATE_TARGETS: 'true',
    });
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

    const credentials = await (
      await fetch(`${api}/sandbox/credentials`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'email=newcomer%40example.com',
      })
    ).text();
    const [, username, secret] =
      /Username: <code>([^<]+)<\/code><br>Secret: <code>([^<]+)<\/code>/.exec(credentials) ?? [];
    expect(username).toBeDefined();
    const gateway = await atlantic.waitForLog(isMsg('proxy.listening'));
    const answer = await throughConnect(
      Number(gateway.httpPort),
      `${username ?? ''}:${secret ?? ''}`,
      sitePort,
    );
    expect(answer).toContain('hello through Atlantic');
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
