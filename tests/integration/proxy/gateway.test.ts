/**
 * The whole gateway as a customer meets it: the proxy role (listeners + the
 * real access controller on the test database) driven by curl and the `socks`
 * client against real local targets. What a plan allows works; what it does
 * not is refused with the reason, recorded for "why did my proxy fail?"; a
 * quota runs out at the byte; a disconnect cuts a live tunnel.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SocksClient } from 'socks';
import type { Socket } from 'node:net';
import { TestClock } from '../../../lib/clock.js';
import { getQuotaUsage } from '../../../core/quota.js';
import { listAuthFailures, listRecentRefusals } from '../../../core/usage.js';
import type { ProxyRole } from '../../../proxy/index.js';
import { useTestDatabase } from '../../support/database.js';
import {
  curl,
  hasCommand,
  selfSignedCertificate,
  startEchoServer,
  startHttpTarget,
  startHttpsTarget,
  startSourceServer,
  type HttpTarget,
  type TcpTarget,
  startTestProxyRole,
} from '../../support/proxy-wire.js';
import {
  customerWithQuota,
  newCustomer,
  seedCatalogue,
  waitUntil,
  type Customer,
} from './access/harness.js';

// Declared before useTestDatabase(): hooks run in declaration order, and the
// gateway must flush and return its leases before the database goes away.
afterAll(async () => {
  await role.stop();
  await Promise.all([http.close(), echo.close(), https?.close()]);
});
useTestDatabase();
// Near real time, not a fixed date: the refusal and failed-login records read
// here carry the business clock's time and have TTL indexes, which the test
// database sweeps every second by real time. A clock months behind made them
// expire on insert, and the reads passed only if they beat the next sweep.
const clock = new TestClock(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 600_000);
const MiB = 1_048_576;
const certificate = selfSignedCertificate();
const withCurl = hasCommand('curl') && certificate !== undefined;

let role: ProxyRole;
let https: HttpTarget | undefined;
let http: HttpTarget;
let echo: TcpTarget;

beforeAll(async () => {
  await seedCatalogue(clock);
  http = await startHttpTarget();
  echo = await startEchoServer();
  if (certificate) https = await startHttpsTarget(certificate);
  role = await startTestProxyRole({
    clock,
    logLevel: 'warn',
    // Starter may CONNECT only here: the local HTTPS target's port.
    httpsOnlyPorts: https ? [https.port] : [443],
  });
});

const proxyUrl = (customer: Customer): string =>
  `http://${encodeURIComponent(customer.username)}:${encodeURIComponent(customer.secret)}@127.0.0.1:${role.addresses().http.port}`;

function socksTo(customer: Customer, port: number, password = customer.secret): Promise<Socket> {
  return SocksClient.createConnection({
    proxy: {
      host: '127.0.0.1',
      port: role.addresses().socks.port,
      type: 5,
      // The catalogue's `gb` exits are unreachable upstreams; pin the direct `ng` one.
      userId: `${customer.username}-country-ng`,
      password,
    },
    command: 'connect',
    destination: { host: '127.0.0.1', port },
    timeout: 5_000,
  }).then((info) => info.socket);
}

/** A new customer, once the gateway's cache knows their credentials (it refreshes every 100 ms here). */
async function newProxyCustomer(planCode: string): Promise<Customer> {
  const created = await newCustomer(planCode, clock);
  await role.access.refresh();
  return created;
}

async function lastRefusal(customer: Customer): Promise<string | undefined> {
  await waitUntil(async () => (await listRecentRefusals(customer.accountId)).length > 0);
  return (await listRecentRefusals(customer.accountId))[0]?.code;
}

describe('Starter: HTTPS only', () => {
  const maybe = withCurl ? it : it.skip;

  maybe('tunnels HTTPS through CONNECT to an allowed port (curl)', async () => {
    const customer = await newProxyCustomer('starter');
    const result = await curl([
      '--proxy',
      proxyUrl(customer),
      '--insecure',
      `https://127.0.0.1:${https?.port ?? 0}/hello`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello from target: GET /hello 0');
  });

  maybe('refuses plain HTTP with the plan rule and the upgrade that lifts it', async () => {
    const customer = await newProxyCustomer('starter');
    const result = await curl([
      '--proxy',
      proxyUrl(customer),
      '--write-out',
      '\n%{http_code}',
      `http://127.0.0.1:${http.port}/`,
    ]);
    expect(result.stdout).toMatch(/403$/);
    expect(result.stdout).toContain('Upgrade to PAYG for all protocols');
    expect(http.requests).toHaveLength(0);
    expect(await lastRefusal(customer)).toBe('PROTOCOL_NOT_IN_PLAN');
  });

  it('refuses SOCKS5 and records why', async () => {
    const customer = await newProxyCustomer('starter');
    await expect(socksTo(customer, echo.port)).rejects.toThrow();
    expect(await lastRefusal(customer)).toBe('PROTOCOL_NOT_IN_PLAN');
  });
});

describe('Personal: SOCKS5, quota and control', () => {
  it('relays through SOCKS5 and stops at the last byte of the quota', async () => {
    const limitBytes = 3 * MiB + 4_321;
    const customer = await customerWithQuota(limitBytes, clock);
    await role.access.refresh();
    const source = await startSourceServer(8 * MiB);
    try {
      const socket = await socksTo(customer, source.port);
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      await new Promise((resolve) => socket.on('close', resolve));
      expect(received).toBe(limitBytes);

      await waitUntil(async () => {
        const counter = await getQuotaUsage(customer.accountId, clock.now());
        return counter?.usedBytes === limitBytes;
      });
      await expect(socksTo(customer, source.port)).rejects.toThrow();
      expect(await lastRefusal(customer)).toBe('QUOTA_EXHAUSTED');
    } finally {
      await source.close();
    }
  });

  it('cuts a live tunnel when the customer disconnects, and refuses new ones until connect', async () => {
    const customer = await newProxyCustomer('personal');
    const socket = await socksTo(customer, echo.port);
    socket.write('ping');
    await new Promise((resolve) => socket.once('data', resolve));

    const closed = new Promise((resolve) => socket.on('close', resolve));
    await role.access.disconnect(customer.accountId);
    await closed;
    await expect(socksTo(customer, echo.port)).rejects.toThrow();

    await role.access.connect(customer.accountId);
    await waitUntil(async () => {
      try {
        (await socksTo(customer, echo.port)).destroy();
        return true;
      } catch {
        return false;
      }
    });
  });

  it('refuses a wrong password at the login step, relays nothing and records who tried', async () => {
    const customer = await newProxyCustomer('personal');
    const acceptedBefore = echo.accepted;
    await expect(socksTo(customer, echo.port, 'not-the-secret')).rejects.toThrow(
      /authentication failed/i,
    );
    expect(echo.accepted).toBe(acceptedBefore);
    await waitUntil(async () => (await listAuthFailures(customer.accountId)).length > 0);
    const [failure] = await listAuthFailures(customer.accountId);
    expect(failure).toMatchObject({ sourceIp: '127.0.0.1' });
  });
});
