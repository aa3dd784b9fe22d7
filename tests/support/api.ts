/**
 * The REST API (/api/v1) over real HTTP on port 0, with real everything
 * around it: the payments harness (Paystack emulator, its webhooks, a
 * TestClock near real time), a real mailer sending to a local SMTP capture
 * server, and the test database. `customer()` makes a logged-in account the
 * quick way (a login session started by core, as the login route does); the
 * auth tests go through the routes instead.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import { createApiRole, type ApiRole } from '../../api/index.js';
import { createApiV1, type ApiV1 } from '../../api/v1/index.js';
import type { ApiDeps } from '../../api/v1/route.js';
import { createTokenSigner } from '../../api/v1/tokens.js';
import { startLoginSession } from '../../core/accounts/login-sessions.js';
import { unsubscribeLinks } from '../../core/email/unsubscribe.js';
import type { ConfiguredAdmins } from '../../core/admin/index.js';
import { createLogger } from '../../lib/logger.js';
import type { Mailer } from '../../lib/mailer.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { addExit, addLocation } from '../../core/locations.js';
import type { ProxyRole } from '../../proxy/index.js';
import { Account } from '../../models/account.js';
import { PROXY } from './bot.js';
import { usePaymentsHarness, type PaymentsHarness } from './payments.js';
import { curl, startHttpTarget, startTestProxyRole, type HttpTarget } from './proxy-wire.js';
import { startSmtpCapture, testMailer, type SmtpCapture } from './smtp-capture.js';

export const JWT_SECRET = 'test-jwt-secret-0123456789abcdefghijklmnop';

export interface ApiAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
  /** The raw bytes (for files). */
  bytes: Buffer;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** A raw body sent as is (for malformed-JSON tests). */
  rawBody?: string;
}

export interface ApiCustomer {
  accountId: string;
  email: string;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
}

export interface ApiHarness {
  readonly payments: PaymentsHarness;
  readonly smtp: SmtpCapture;
  readonly mailer: Mailer;
  readonly deps: ApiDeps;
  readonly v1: ApiV1;
  /** http://127.0.0.1:<port> */
  readonly base: string;
  /** `path` is relative to /api/v1 unless it starts with `/` and not `/api` ... use `raw` for others. */
  call<T = any>(method: string, path: string, options?: CallOptions): Promise<ApiAnswer<T>>;
  /** Any path on the app (pages outside /api/v1). */
  raw(method: string, path: string, init?: RequestInit): Promise<Response>;
  /** A logged-in customer with a verified email (or not: `verified: false`). */
  customer(options?: {
    email?: string;
    verified?: boolean;
    roles?: ('customer' | 'admin')[];
  }): Promise<ApiCustomer>;
  /** A fresh access token for a customer's session (e.g. after the clock moved). */
  accessToken(customer: Pick<ApiCustomer, 'accountId' | 'sessionId'>): string;
}

let customers = 0;

/**
 * `admins`: admins named "in configuration" (chat identities).
 * `corsOrigins`: origins allowed by CORS (default none).
 */
export function useApiHarness(
  options: { admins?: ConfiguredAdmins; corsOrigins?: string[] } = {},
): ApiHarness {
  const start = new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString();
  const payments = usePaymentsHarness({ start });
  const logger = createLogger({ level: 'silent' });
  let smtp: SmtpCapture | undefined;
  let mailer: Mailer | undefined;
  let deps: ApiDeps | undefined;
  let v1: ApiV1 | undefined;
  let role: ApiRole | undefined;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    mailer = testMailer(smtp);
    deps = {
      clock: payments.clock,
      tokens: createTokenSigner(JWT_SECRET, payments.clock),
      mailer,
      payments: payments.payments,
      settings: payments.settings,
      logger,
      publicUrl: 'http://atlantic.test',
      configuredAdmins: options.admins ?? { telegramIds: [], whatsappNumbers: [] },
      proxy: PROXY,
      unsubscribe: unsubscribeLinks(JWT_SECRET),
      links: { telegramBotUsername: 'AtlanticProxyBot', whatsappNumber: '2348000000000' },
    };
    const api = createApiV1({ deps, corsOrigins: options.corsOrigins ?? [] });
    v1 = api;
    role = createApiRole({
      port: 0,
      host: '127.0.0.1',
      logger,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      pingDatabase: async () => {},
      mountRoutes: (app) => {
        app.use(api.router);
      },
    });
    await role.start();
  });

  afterAll(async () => {
    await role?.stop();
    await smtp?.stop();
  });

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: use the harness inside tests`);
    return value;
  };
  const base = (): string => `http://127.0.0.1:${need(role, 'api').address().port}`;

  const harness: ApiHarness = {
    payments,
    get smtp() {
      return need(smtp, 'smtp');
    },
    get mailer() {
      return need(mailer, 'mailer');
    },
    get deps() {
      return need(deps, 'deps');
    },
    get v1() {
      return need(v1, 'v1');
    },
    get base() {
      return base();
    },
    async call(method, path, callOptions = {}) {
      const headers: Record<string, string> = { ...callOptions.headers };
      if (callOptions.token) headers.authorization = `Bearer ${callOptions.token}`;
      let body: string | undefined;
      if (callOptions.rawBody !== undefined) {
        body = callOptions.rawBody;
        headers['content-type'] ??= 'application/json';
      } else if (callOptions.body !== undefined) {
        body = JSON.stringify(callOptions.body);
        headers['content-type'] = 'application/json';
      }
      const url = path.startsWith('/api/') ? `${base()}${path}` : `${base()}/api/v1${path}`;
      const res = await fetch(url, { method: method.toUpperCase(), headers, body });
      const bytes = Buffer.from(await res.arrayBuffer());
      const type = res.headers.get('content-type') ?? '';
      const parsed: unknown = type.includes('application/json')
        ? JSON.parse(bytes.toString('utf8'))
        : bytes.toString('utf8');
      return { status: res.status, body: parsed as never, headers: res.headers, bytes };
    },
    raw(method, path, init = {}) {
      return fetch(`${base()}${path}`, { ...init, method: method.toUpperCase() });
    },
    async customer(customerOptions = {}) {
      customers += 1;
      const email =
        customerOptions.email ?? `api${customers}-${randomBytes(4).toString('hex')}@example.com`;
      const now = payments.clock.now();
      const account = await Account.create({
        email,
        ...(customerOptions.verified === false ? {} : { emailVerifiedAt: now }),
        termsAcceptedAt: now,
        termsVersion: 'test',
        ...(customerOptions.roles ? { roles: customerOptions.roles } : {}),
      });
      const session = await startLoginSession(
        account._id,
        { ip: '127.0.0.1', userAgent: 'test' },
        { clock: payments.clock },
      );
      const { accessToken } = need(deps, 'deps').tokens.issue({
        accountId: session.accountId,
        sessionId: session.sessionId,
      });
      return {
        accountId: session.accountId,
        email,
        sessionId: session.sessionId,
        accessToken,
        refreshToken: session.refreshToken,
      };
    },
    accessToken(customer) {
      return need(deps, 'deps').tokens.issue(customer).accessToken;
    },
  };
  return harness;
}

const GATEWAY_LOCATIONS = {
  ng: { city: 'Lagos', label: 'Nigeria (Lagos)' },
  gb: { city: 'London', label: 'United Kingdom' },
} as const;

/** The real gateway next to the API harness, and a way to send a request through it. */
export interface ApiGateway {
  /**
   * Adds the locations and starts the target and the gateway: call it from a
   * beforeAll declared after the database and API hooks.
   */
  start(api: ApiHarness): Promise<void>;
  /**
   * One request to a local HTTP target through a ready URL the API answered
   * (pointed at this gateway; the API names the public host): what curl got.
   */
  through(proxyUrl: string): Promise<{ ok: boolean; body: string }>;
}

/**
 * Locations with a direct exit, an HTTP target and the real proxy role with
 * the API's policy. Call it before useTestDatabase (afterAll hooks run in
 * declaration order, and the gateway books its usage before the database
 * goes), then `start` it from a beforeAll after the API harness.
 */
export function useApiGateway(countries: readonly (keyof typeof GATEWAY_LOCATIONS)[]): ApiGateway {
  let proxy: ProxyRole | undefined;
  let target: HttpTarget | undefined;
  let harness: ApiHarness | undefined;
  afterAll(async () => {
    await proxy?.stop();
    await target?.close();
  });
  const start = async (api: ApiHarness): Promise<void> => {
    harness = api;
    for (const countryCode of countries) {
      await addLocation({ countryCode, ...GATEWAY_LOCATIONS[countryCode] });
      await addExit(countryCode, { exitId: 'direct', kind: 'direct' });
    }
    target = await startHttpTarget();
    proxy = await startTestProxyRole({
      clock: api.payments.clock,
      ...api.deps.proxy.policy,
      // Leases kept while idle (the default): returning them at once races the first tunnel.
      accessOptions: { refreshMs: 100, flushMs: 100 },
    });
  };
  const role = (): ProxyRole => {
    if (!proxy) throw new Error('the gateway starts in beforeAll');
    return proxy;
  };
  return {
    start,
    async through(proxyUrl) {
      if (!harness) throw new Error('start the gateway first');
      const { proxy: publicProxy } = harness.deps;
      const { socks, http } = role().addresses();
      const local = proxyUrl
        .replace(`@${publicProxy.host}:${publicProxy.socksPort}`, `@127.0.0.1:${socks.port}`)
        .replace(`@${publicProxy.host}:${publicProxy.httpPort}`, `@127.0.0.1:${http.port}`);
      await role().access.refresh();
      const result = await curl(['--proxy', local, `http://127.0.0.1:${target?.port}/hello`]);
      return {
        ok: result.code === 0 && result.stdout.includes('hello from target'),
        body: result.stdout,
      };
    },
  };
}
