/**
 * The api role over real HTTP on port 0: health, readiness against the real
 * test database, metrics, and the JSON error contract every route follows.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createApiRole, type ApiRole } from '../../api/index.js';
import { createLogger } from '../../lib/logger.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { DomainError } from '../../lib/errors.js';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();

/** Log records the role writes, to check what an operator would read. */
const logLines: string[] = [];
const logger = createLogger({
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
});

let role: ApiRole;
let base: string;

beforeAll(async () => {
  role = createApiRole({
    port: 0,
    host: '127.0.0.1',
    logger,
    metrics: createMetricsRegistry(),
    pingDatabase: async () => {
      await database.db.command({ ping: 1 });
    },
  });
  await role.start();
  base = `http://127.0.0.1:${role.address().port}`;
});

afterAll(async () => {
  await role.stop();
});

describe('health and readiness', () => {
  it('answers /healthz without touching the database', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('is ready when the database answers a ping', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', checks: { database: 'up' } });
  });

  it('answers 503 from /readyz when the database is down or silent', async () => {
    const down = createApiRole({
      port: 0,
      host: '127.0.0.1',
      logger,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      pingDatabase: () => Promise.reject(new Error('connection refused')),
    });
    const silent = createApiRole({
      port: 0,
      host: '127.0.0.1',
      logger,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      pingDatabase: () => new Promise(() => {}),
      readinessTimeoutMs: 50,
    });
    await Promise.all([down.start(), silent.start()]);
    try {
      for (const r of [down, silent]) {
        const res = await fetch(`http://127.0.0.1:${r.address().port}/readyz`);
        expect(res.status).toBe(503);
        expect(await res.json()).toEqual({ status: 'unavailable', checks: { database: 'down' } });
      }
    } finally {
      await Promise.all([down.stop(), silent.stop()]);
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus text with process metrics and request durations', async () => {
    await fetch(`${base}/healthz`);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(
      /atlantic_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} [1-9]/,
    );
  });
});

describe('errors', () => {
  it('answers an unknown route with a JSON 404 carrying the request id', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[A-Za-z0-9_-]{8,}$/);
    expect(await res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'No route for GET /nope.', requestId },
    });
  });

  it("keeps a caller's plain request id and replaces a hostile one", async () => {
    const kept = await fetch(`${base}/nope`, { headers: { 'x-request-id': 'trace-123' } });
    expect(kept.headers.get('x-request-id')).toBe('trace-123');
    const replaced = await fetch(`${base}/nope`, {
      headers: { 'x-request-id': 'bad id <script>' },
    });
    expect(replaced.headers.get('x-request-id')).not.toContain('script');
  });

  it('rejects malformed JSON with a 400 that says so', async () => {
    const res = await fetch(`${base}/api/v1/anything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"broken": ',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'MALFORMED_JSON' } });
  });

  it('rejects an oversized body with a 413', async () => {
    const res = await fetch(`${base}/api/v1/anything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blob: 'x'.repeat(200_000) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
  });

  it('sets the helmet security headers and hides the framework', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toBeTruthy();
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});

describe('error translation for later routes', () => {
  it('maps domain errors to their status and hides unexpected ones behind a reference', async () => {
    const { errorResponse } = await import('../../api/errors.js');
    expect(errorResponse(new DomainError('RATE_LIMITED', 'Slow down.'), 'r1')).toEqual({
      status: 429,
      isUnexpected: false,
      body: { error: { code: 'RATE_LIMITED', message: 'Slow down.', requestId: 'r1' } },
    });
    const unexpected = errorResponse(new TypeError('x is undefined'), 'r2');
    expect(unexpected.status).toBe(500);
    expect(unexpected.isUnexpected).toBe(true);
    expect(unexpected.body.error.message).toBe('Something went wrong (ref r2).');
    expect(JSON.stringify(unexpected.body)).not.toContain('x is undefined');
  });

  it('logs an unexpected failure once with its stack and tells the client only the reference', async () => {
    const { createApp } = await import('../../api/app.js');
    const app = createApp({
      logger,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      pingDatabase: async () => {},
      mountRoutes: (routes) => {
        routes.get('/boom', () => {
          throw new Error('secret internal detail');
        });
      },
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const res = await fetch(`http://127.0.0.1:${port}/boom`);
      const body = (await res.json()) as { error: { requestId: string; message: string } };
      expect(res.status).toBe(500);
      expect(body.error.message).not.toContain('secret internal detail');
      const logged = logLines.filter((l) => l.includes('request.failed'));
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain('secret internal detail');
      expect(logged[0]).toContain(body.error.requestId);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
