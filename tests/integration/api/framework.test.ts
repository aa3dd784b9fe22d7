/**
 * The gates every /api/v1 route passes, over real HTTP against the real
 * database: bearer tokens (missing, forged, expired, for an ended session),
 * the error body, the OpenAPI description matching what is mounted, CORS.
 */
import { describe, expect, it } from '@jest/globals';
import jwt from 'jsonwebtoken';
import type express from 'express';
import { endAllLoginSessions } from '../../../core/accounts/login-sessions.js';
import { Account } from '../../../models/account.js';
import { useTestDatabase } from '../../support/database.js';
import { useApiHarness } from '../../support/api.js';
import { openApiPath } from '../../../api/v1/openapi.js';

useTestDatabase();
const api = useApiHarness({ corsOrigins: ['https://dashboard.example.com'] });

describe('OpenAPI description', () => {
  it('is served as OpenAPI 3.1 and describes every mounted route, and nothing else', async () => {
    const res = await api.call('get', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');

    // What Express really serves under /api/v1, read from its router.
    const mounted = new Set<string>();
    const walk = (
      stack: {
        route?: { path: string; methods: Record<string, boolean> };
        handle?: { stack?: unknown[] };
        name?: string;
      }[],
    ) => {
      for (const layer of stack) {
        if (layer.route) {
          for (const method of Object.keys(layer.route.methods)) {
            mounted.add(`${method} ${openApiPath(layer.route.path)}`);
          }
        } else if (layer.handle?.stack) {
          walk(layer.handle.stack as never);
        }
      }
    };
    walk((api.v1.apiRouter as unknown as express.Router & { stack: never[] }).stack);
    mounted.delete('get /openapi.json');
    // The pages email links open (api/v1/pages.ts) are served beside /api/v1, not part of it.
    for (const key of [...mounted])
      if (key.split(' ')[1]?.startsWith('/account/')) mounted.delete(key);

    const described = new Set<string>();
    for (const [path, operations] of Object.entries(res.body.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) described.add(`${method} ${path}`);
    }
    expect([...mounted].sort()).toEqual([...described].sort());
    expect(described.size).toBeGreaterThan(0);
  });

  it('names an operation id, a tag and an access rule for every operation', async () => {
    const res = await api.call('get', '/openapi.json');
    const ids = new Set<string>();
    for (const operations of Object.values(res.body.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(operations)) {
        expect(typeof op.operationId).toBe('string');
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        expect(op.tags).toHaveLength(1);
        expect(['public', 'customer', 'admin']).toContain(op['x-atlantic'].access);
      }
    }
  });
});

describe('bearer tokens', () => {
  // A customer route that exists whatever else is built: GET /me.
  const protectedPath = '/me';

  it('refuses a request without a token with 401 TOKEN_MISSING and a request id', async () => {
    const res = await api.call('get', protectedPath, { headers: { 'x-request-id': 'req-123' } });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({
      code: 'UNAUTHENTICATED',
      requestId: 'req-123',
      details: { reason: 'TOKEN_MISSING' },
    });
  });

  it('refuses a forged token (signed with another secret)', async () => {
    const customer = await api.customer();
    const forged = jwt.sign({ sid: customer.sessionId, typ: 'access' }, 'x'.repeat(40), {
      subject: customer.accountId,
      issuer: 'atlantic',
      audience: 'atlantic-api',
      expiresIn: 600,
    });
    const res = await api.call('get', protectedPath, { token: forged });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('TOKEN_INVALID');
  });

  it('refuses an alg=none token', async () => {
    const customer = await api.customer();
    const unsigned = jwt.sign({ sid: customer.sessionId, typ: 'access' }, '', {
      algorithm: 'none',
      subject: customer.accountId,
      issuer: 'atlantic',
      audience: 'atlantic-api',
    });
    const res = await api.call('get', protectedPath, { token: unsigned });
    expect(res.status).toBe(401);
  });

  it('refuses an expired token once the clock passes its 15 minutes', async () => {
    const customer = await api.customer();
    const ok = await api.call('get', protectedPath, { token: customer.accessToken });
    expect(ok.status).toBe(200);
    api.payments.clock.advanceBy({ minutes: 16 });
    const res = await api.call('get', protectedPath, { token: customer.accessToken });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('TOKEN_EXPIRED');
  });

  it('refuses a still-valid token of a session that was ended (logout is immediate)', async () => {
    const customer = await api.customer();
    await endAllLoginSessions(customer.accountId, 'logout_all', { clock: api.payments.clock });
    const res = await api.call('get', protectedPath, { token: customer.accessToken });
    expect(res.status).toBe(401);
    expect(res.body.error.details.reason).toBe('SESSION_ENDED');
  });

  it('refuses a deleted account', async () => {
    const customer = await api.customer();
    await Account.updateOne({ _id: customer.accountId }, { $set: { status: 'deleted' } });
    const res = await api.call('get', protectedPath, { token: customer.accessToken });
    expect(res.status).toBe(401);
  });
});

describe('errors and limits', () => {
  it('answers an unknown route with a JSON 404', async () => {
    const res = await api.call('get', '/no-such-thing');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('answers malformed JSON with 400 MALFORMED_JSON', async () => {
    const res = await api.call('post', '/auth/login', { rawBody: '{"email":' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('MALFORMED_JSON');
  });

  it('answers an oversized body with 413', async () => {
    const res = await api.call('post', '/auth/login', {
      rawBody: JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(200_000) }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('names the bad field of an invalid query', async () => {
    const res = await api.call('get', '/plans?currency=XYZ');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    expect(res.body.error.details.issues[0].path).toBe('query.currency');
  });

  it('sends the helmet security headers', async () => {
    const res = await api.call('get', '/plans');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});

describe('CORS', () => {
  it('allows the configured origin, preflight included', async () => {
    const pre = await api.raw('options', '/api/v1/me', {
      headers: {
        origin: 'https://dashboard.example.com',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://dashboard.example.com');
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization');
  });

  it('sends no CORS header to any other origin', async () => {
    const res = await api.raw('get', '/api/v1/plans', {
      headers: { origin: 'https://evil.example.com' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('catalogue', () => {
  it('lists the plans on sale side by side without a login', async () => {
    const res = await api.call('get', '/plans');
    expect(res.status).toBe(200);
    const codes = res.body.plans.map((p: { code: string }) => p.code);
    expect(codes).toEqual(expect.arrayContaining(['starter', 'payg']));
    const starter = res.body.plans.find((p: { code: string }) => p.code === 'starter');
    expect(starter.protocols).toEqual(['https']);
    expect(starter.data).toMatchObject({ bytes: 10_000_000_000, period: 'week' });
  });
});

describe('headers a route reads', () => {
  it('are described as header parameters (the admin routes’ Idempotency-Key)', async () => {
    const res = await api.call('get', '/openapi.json');
    const grant = res.body.paths['/admin/users/{id}/grant-data'].post;
    expect(grant.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'idempotency-key', in: 'header' })]),
    );
  });
});
