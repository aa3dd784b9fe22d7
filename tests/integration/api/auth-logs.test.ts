/**
 * The secrets of the auth routes stay out of the logs: the access log of a
 * page opened from a mailed link shows the path but not the link's token, and
 * a login's password and tokens never appear in any log record.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { createApp } from '../../../api/app.js';
import { createApiV1 } from '../../../api/v1/index.js';
import { createLogger } from '../../../lib/logger.js';
import { createMetricsRegistry } from '../../../lib/metrics.js';
import { useApiHarness } from '../../support/api.js';
import { useTestDatabase } from '../../support/database.js';
import { GOOD_PASSWORD, linkIn, newAddress } from './auth-support.js';

useTestDatabase();
const api = useApiHarness();

const lines: string[] = [];
let server: Server | undefined;
let base = '';

// The same API as the harness serves, in an app whose log we read.
beforeAll(async () => {
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    }),
  });
  const v1 = createApiV1({ deps: { ...api.deps, logger } });
  const app = createApp({
    logger,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    pingDatabase: async () => {},
    mountRoutes: (a) => {
      a.use(v1.router);
    },
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server?.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

it('logs requests without passwords, tokens or link secrets', async () => {
  const email = newAddress('logs');
  const registered = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: GOOD_PASSWORD, acceptTerms: true }),
  });
  expect(registered.status).toBe(201);
  const body = (await registered.json()) as { accessToken: string; refreshToken: string };
  const mail = await api.smtp.waitForMail((m) => m.to.includes(email));
  const link = linkIn(mail.text, 'verify-email');
  const token = link.searchParams.get('token') ?? '';
  const page = await fetch(`${base}${link.pathname}${link.search}`);
  expect(page.status).toBe(200);
  const refreshed = await fetch(`${base}/api/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: body.refreshToken }),
  });
  expect(refreshed.status).toBe(200);

  const log = lines.join('');
  expect(log).toContain('/account/verify-email?token=[redacted]');
  for (const secret of [
    token,
    GOOD_PASSWORD,
    body.accessToken,
    body.refreshToken,
    body.refreshToken.split('.')[1] ?? '',
  ]) {
    expect(secret.length).toBeGreaterThan(10);
    expect(log).not.toContain(secret);
  }
});
