/**
 * "Why did my proxy fail?" also covers destinations the target guard refuses:
 * a customer who points the proxy at a private address (this machine, a home
 * network) finds the refusal and its reason in their history, as the bots and
 * the API show it, and nobody else's history changes.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { SocksClient } from 'socks';
import { TestClock } from '../../../lib/clock.js';
import { listRecentRefusals } from '../../../core/usage.js';
import type { ProxyRole } from '../../../proxy/index.js';
import { useTestDatabase } from '../../support/database.js';
import { startEchoServer, type TcpTarget, startTestProxyRole } from '../../support/proxy-wire.js';
import { newCustomer, seedCatalogue, waitUntil } from './access/harness.js';

let role: ProxyRole;
let echo: TcpTarget;

afterAll(async () => {
  await role.stop();
  await echo.close();
});
useTestDatabase();
// Near real time: refusal records have a TTL index swept by real time.
const clock = new TestClock(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 600_000);

beforeAll(async () => {
  await seedCatalogue(clock);
  echo = await startEchoServer();
  role = await startTestProxyRole({
    clock,
    allowPrivateTargets: false,
    accessOptions: { refreshMs: 100, flushMs: 100 },
  });
});

it('records a private destination in the customer’s refusal history, with the reason in plain words', async () => {
  const customer = await newCustomer('personal', clock);
  const bystander = await newCustomer('personal', clock);
  await role.access.refresh();
  await expect(
    SocksClient.createConnection({
      proxy: {
        host: '127.0.0.1',
        port: role.addresses().socks.port,
        type: 5,
        userId: `${customer.username}-country-ng`,
        password: customer.secret,
      },
      command: 'connect',
      destination: { host: '127.0.0.1', port: echo.port },
      timeout: 5_000,
    }),
  ).rejects.toThrow();

  await waitUntil(async () => (await listRecentRefusals(customer.accountId)).length > 0);
  const [refusal] = await listRecentRefusals(customer.accountId);
  expect(refusal).toMatchObject({ code: 'TARGET_FORBIDDEN', protocol: 'socks5' });
  expect(refusal?.message).toContain('only reaches public internet addresses');
  expect(await listRecentRefusals(bystander.accountId)).toEqual([]);
});
