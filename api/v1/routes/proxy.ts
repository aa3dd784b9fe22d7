/**
 * /api/v1/me/proxy, /me/locations, /me/connect, /me/disconnect, /me/new-ip:
 * the bot's Connect, Security and "why did my proxy fail?" screens
 * (bot/core/journeys/connect.ts, usage.ts) for programs, calling the same
 * core functions. A protocol or location the plan does not include is refused
 * by core/entitlements.ts checkConnection, the gateway's own check, so the
 * API, the bots and the gateway give the same reason code and message.
 *
 * The proxy password is stored hashed (core/proxy-credentials.ts): it is in
 * an answer only when it is made (the first connect, a rotation), as in chat.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  checkConnection,
  type Entitlements,
  type Refusal,
  type Upgrade,
} from '../../../core/entitlements.js';
import { listLocations } from '../../../core/locations.js';
import {
  getProxyCredentials,
  issueProxyCredentials,
  requestNewExit,
  rotateProxySecret,
  setProxyAccess,
  type ProxyCredentialView,
} from '../../../core/proxy-credentials.js';
import { getPlan } from '../../../core/plans.js';
import { chooseLocations, getCurrentSubscription } from '../../../core/subscriptions.js';
import { listAuthFailures, listRecentRefusals } from '../../../core/usage.js';
import { DomainError } from '../../../lib/errors.js';
import { protocols, type Protocol } from '../../../models/plan.js';
import {
  proxyAuthFailureReasons,
  type ProxyAuthFailureReason,
} from '../../../models/proxy-auth-failure.js';
import { jsonRoute, type AnyRoute, type ApiDeps } from '../route.js';
import {
  publicLocation,
  refusal as refusalSchema,
  toPublicLocation,
  upgrade as upgradeSchema,
} from '../schemas.js';
import { entitlementsFor } from './usage.js';

const protocol = z.enum(protocols);
const locationCode = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z][a-z0-9]{1,15}$/, 'must be a location code, e.g. ng');

/**
 * A plan refusal as an error: 403 FORBIDDEN (400 for a location that does not
 * exist) with `details.reason` the entitlement code and `details.upgrade` the
 * action that lifts it, the message as the bots and the gateway word it.
 */
export function refusalError(refusal: Refusal): DomainError {
  return new DomainError(
    refusal.code === 'UNKNOWN_LOCATION' ? 'VALIDATION_FAILED' : 'FORBIDDEN',
    refusal.message,
    { details: { reason: refusal.code, upgrade: refusal.upgrade } },
  );
}

/** Throws the account's access refusal when access is off. */
function requireAccess(e: Entitlements): void {
  if (!e.access.on) throw refusalError(e.access);
}

/**
 * The gateway's check for a connection to `location` over `protocol`, on a
 * port the plan allows (the port is not what is asked here) and with nothing
 * open yet.
 */
function checkChoice(
  e: Entitlements,
  choice: { protocol: Protocol; location: string | null },
): Refusal | null {
  const port = e.ports.allow === 'any' ? 443 : (e.ports.allow[0] ?? 443);
  const decision = checkConnection(e, { ...choice, port, openConnections: 0 });
  return decision.ok ? null : decision;
}

function noCredentials(): DomainError {
  return new DomainError(
    'NOT_FOUND',
    'You have no proxy credentials yet: POST /api/v1/me/connect makes them.',
    { details: { reason: 'NO_CREDENTIALS' } },
  );
}

const proxyUrls = z.object({
  socks5: z.string().nullable(),
  http: z.string().nullable(),
});

const credentialsView = z.object({
  host: z.string(),
  socksPort: z.number().int(),
  httpPort: z.number().int(),
  username: z.string().describe('The proxy username, without options.'),
  password: z
    .string()
    .nullable()
    .describe(
      'Only in the answer that made it (first connect, rotation): it is stored hashed and never shown again. Lost it? Rotate.',
    ),
  accessPaused: z.boolean().describe('true after a disconnect, until the next connect.'),
  urls: proxyUrls.describe('Ready to paste; null when the password is not in this answer.'),
  templates: proxyUrls
    .extend({ socks5: z.string(), http: z.string() })
    .describe('The same URLs with PASSWORD in place of the password.'),
  usernameOptions: z.object({
    country: z.string().describe('Append to the username to pick a location.'),
    session: z.string().describe('Append to keep one exit (sticky session, plans that have it).'),
    example: z.string(),
  }),
});

function urlsFor(
  proxy: ApiDeps['proxy'],
  username: string,
  password: string,
): { socks5: string; http: string } {
  const user = encodeURIComponent(username);
  const pass = password === 'PASSWORD' ? password : encodeURIComponent(password);
  return {
    socks5: `socks5://${user}:${pass}@${proxy.host}:${proxy.socksPort}`,
    http: `http://${user}:${pass}@${proxy.host}:${proxy.httpPort}`,
  };
}

function viewCredentials(
  deps: ApiDeps,
  credential: Pick<ProxyCredentialView, 'username' | 'accessPaused'>,
  password: string | null,
): z.input<typeof credentialsView> {
  const { proxy } = deps;
  const { username } = credential;
  return {
    host: proxy.host,
    socksPort: proxy.socksPort,
    httpPort: proxy.httpPort,
    username,
    password,
    accessPaused: credential.accessPaused,
    urls: password ? urlsFor(proxy, username, password) : { socks5: null, http: null },
    templates: urlsFor(proxy, username, 'PASSWORD'),
    usernameOptions: {
      country: '-country-<code>',
      session: '-session-<id>',
      example: `${username}-country-ng-session-ab12`,
    },
  };
}

const locationsView = z.object({
  locations: z.array(
    publicLocation.extend({
      allowed: z.boolean().describe('Your plan lets you use it now.'),
    }),
  ),
  toChoose: z
    .number()
    .int()
    .describe('How many more locations you may choose with POST /me/locations.'),
  access: z.object({ on: z.boolean(), refusal: refusalSchema.nullable() }),
});

async function viewLocations(e: Entitlements): Promise<z.input<typeof locationsView>> {
  const all = await listLocations();
  return {
    locations: all.map((location) => ({
      ...toPublicLocation(location),
      allowed: e.locations.allowed.includes(location.code),
    })),
    toChoose: e.locations.toChoose,
    access: e.access.on
      ? { on: true, refusal: null }
      : {
          on: false,
          refusal: { code: e.access.code, message: e.access.message, upgrade: e.access.upgrade },
        },
  };
}

/** What the API says to do about a gateway refusal that names no plan upgrade. */
const GATEWAY_ADVICE: Readonly<Record<string, string>> = {
  DISCONNECTED: 'Connect again: POST /api/v1/me/connect.',
  CREDENTIALS_ROTATED: 'Reconnect your apps with the new password.',
  CREDENTIALS_REVOKED: 'Get a new password: POST /api/v1/me/proxy/credentials/rotate.',
  CONNECTION_RATE_LIMITED: 'Open fewer new connections per second.',
  LOCATION_UNAVAILABLE: 'Try another location or try again later.',
  CONNECTION_LIMIT: 'Close a connection before opening another.',
  PORT_BLOCKED: 'This port is blocked on every plan.',
};

/** The upgrade that lifts a recorded refusal now, if one still applies. */
function upgradeFor(
  record: { code: string; protocol?: Protocol | undefined },
  e: Entitlements,
): Upgrade | null {
  if (!e.access.on && e.access.code === record.code) return e.access.upgrade;
  if (record.code === 'PROTOCOL_NOT_IN_PLAN' && record.protocol) {
    return e.protocols.refused.find((r) => r.protocol === record.protocol)?.upgrade ?? null;
  }
  return null;
}

const FAILURE_REASON: Readonly<Record<ProxyAuthFailureReason, string>> = {
  BAD_SECRET: 'wrong password',
  UNKNOWN_USER: 'unknown username',
  MALFORMED_USERNAME: 'a malformed username',
  REVOKED: 'a password that was replaced',
  TOO_MANY_ATTEMPTS: 'too many attempts, blocked for a while',
};

export const proxyRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getMyProxyCredentials',
    method: 'get',
    path: '/me/proxy/credentials',
    tag: 'Proxy',
    summary: 'Proxy host, ports and username',
    description:
      'The gateway host, SOCKS5 and HTTP ports, the proxy username, the username options and ready-to-paste URL templates. The password is shown only when made (POST /me/connect the first time, or a rotation). 404 NO_CREDENTIALS before the first connect.',
    access: 'customer',
    response: credentialsView,
    async handler({ caller, deps }) {
      const credential = await getProxyCredentials(caller.accountId);
      if (!credential) throw noCredentials();
      return viewCredentials(deps, credential, null);
    },
  }),
  jsonRoute({
    operationId: 'rotateMyProxyPassword',
    method: 'post',
    path: '/me/proxy/credentials/rotate',
    tag: 'Proxy',
    summary: 'A new proxy password',
    description:
      'Makes a new proxy password and shows it once. The old one stops working on every gateway within about a second and connections opened with it are cut.',
    access: 'customer',
    rateLimit: {
      name: 'proxy-rotate',
      perAccount: { rules: [{ max: 10, windowMs: 3_600_000 }] },
    },
    response: credentialsView,
    async handler({ caller, deps, log }) {
      const existing = await getProxyCredentials(caller.accountId);
      if (!existing) throw noCredentials();
      const rotated = await rotateProxySecret(caller.accountId, { clock: deps.clock });
      log.info({ accountId: caller.accountId }, 'proxy.secret_rotated');
      return viewCredentials(deps, existing, rotated.secret);
    },
  }),
  jsonRoute({
    operationId: 'listMyLocations',
    method: 'get',
    path: '/me/locations',
    tag: 'Proxy',
    summary: 'Exit locations, and which your plan allows',
    access: 'customer',
    response: locationsView,
    async handler({ caller, deps }) {
      return viewLocations(await entitlementsFor(caller.accountId, deps));
    },
  }),
  jsonRoute({
    operationId: 'chooseMyLocations',
    method: 'post',
    path: '/me/locations',
    tag: 'Proxy',
    summary: 'Choose locations (plans with a set number of locations)',
    description:
      'On plans that include a set number of locations (Trial, Starter), adds the given locations to the ones chosen; chosen locations are kept for the plan, as in chat. Plans with every location refuse it (400).',
    access: 'customer',
    body: z.object({ codes: z.array(locationCode).min(1).max(10) }),
    response: locationsView,
    async handler({ caller, deps, body }) {
      const e = await entitlementsFor(caller.accountId, deps);
      requireAccess(e);
      for (const code of body.codes) {
        const refused = checkChoice(e, {
          protocol: e.protocols.allowed[0] ?? 'https',
          location: code,
        });
        if (refused?.code === 'UNKNOWN_LOCATION') throw refusalError(refused);
      }
      const added = body.codes.filter((code) => !e.locations.allowed.includes(code));
      if (added.length === 0) return viewLocations(e);
      const subscription = await getCurrentSubscription(caller.accountId);
      if (!subscription) {
        // A team seat: the team's plan includes every location.
        throw new DomainError(
          'VALIDATION_FAILED',
          `The ${e.planName ?? ''} plan includes every location.`,
        );
      }
      const plan = await getPlan(subscription.planCode);
      if (plan.locations.kind === 'choose' && e.locations.toChoose === 0) {
        throw new DomainError(
          'CONFLICT',
          `Your ${plan.name} plan's locations are chosen (${e.locations.allowed.join(', ')}) and kept for the plan. Upgrade to Personal for all locations.`,
          {
            details: {
              reason: 'LOCATIONS_ALREADY_CHOSEN',
              upgrade: {
                action: 'upgrade',
                planCode: 'personal',
                text: 'Upgrade to Personal for all locations',
              },
            },
          },
        );
      }
      // As the bot's "keep": the chosen ones stay; core refuses plans with every location and too many.
      await chooseLocations(subscription._id, {
        locations: [...e.locations.allowed, ...added],
        clock: deps.clock,
      });
      return viewLocations(await entitlementsFor(caller.accountId, deps));
    },
  }),
  jsonRoute({
    operationId: 'connectMyProxy',
    method: 'post',
    path: '/me/connect',
    tag: 'Proxy',
    summary: 'Connect: credentials for a location and protocol',
    description:
      "As the bot's Connect: refuses a protocol or location the plan does not include with the reason code and message the gateway gives (403, details.reason, details.upgrade); otherwise makes the credentials if there are none (the password is in this answer only then), resumes access after a disconnect, and answers the username with its options (-country-<code>, -session-<id> when sticky) and a ready URL.",
    access: 'customer',
    body: z.object({
      location: locationCode,
      protocol: protocol.describe('socks5, https (CONNECT through the HTTP proxy) or http.'),
      sticky: z.boolean().default(false).describe('Keep one exit (plans with sticky sessions).'),
    }),
    response: credentialsView.extend({
      connection: z.object({
        location: z.string(),
        locationLabel: z.string(),
        protocol,
        sticky: z.boolean(),
        sessionId: z.string().nullable(),
        host: z.string(),
        port: z.number().int(),
        username: z.string().describe('The username with its options: use this one.'),
        url: z.string().nullable().describe('Ready to paste; null when the password is not here.'),
        template: z.string().describe('The URL with PASSWORD in place of the password.'),
      }),
      firstTime: z.boolean().describe('The credentials were made now (the password is here).'),
      reconnected: z.boolean().describe('Access was paused by a disconnect and is on again.'),
    }),
    async handler({ caller, deps, body }) {
      const { accountId } = caller;
      const e = await entitlementsFor(accountId, deps);
      const refused = checkChoice(e, { protocol: body.protocol, location: body.location });
      if (refused) throw refusalError(refused);
      if (body.sticky && !e.features.stickySessions) {
        throw new DomainError('FORBIDDEN', 'Sticky sessions are not part of your plan.', {
          details: {
            reason: 'PLAN_FEATURE_REQUIRED',
            feature: 'stickySessions',
            upgrade: {
              action: 'upgrade',
              planCode: 'personal',
              text: 'Upgrade to Personal for sticky sessions',
            },
          },
        });
      }
      let credential = await getProxyCredentials(accountId);
      let password: string | null = null;
      let firstTime = false;
      if (!credential) {
        try {
          password = (await issueProxyCredentials(accountId, {})).secret;
          firstTime = true;
        } catch (error) {
          // Two first connects at once: the other one made them (and showed its password).
          if (!(error instanceof DomainError && error.code === 'CONFLICT')) throw error;
        }
        credential = await getProxyCredentials(accountId);
        if (!credential) throw noCredentials();
      }
      let reconnected = false;
      if (credential.accessPaused) {
        credential = await setProxyAccess(accountId, 'connected', { clock: deps.clock });
        reconnected = true;
      }
      const sessionId = body.sticky ? randomBytes(4).toString('hex') : null;
      const username = `${credential.username}-country-${body.location}${sessionId ? `-session-${sessionId}` : ''}`;
      const { proxy } = deps;
      const port = body.protocol === 'socks5' ? proxy.socksPort : proxy.httpPort;
      const pick = (urls: { socks5: string; http: string }): string =>
        body.protocol === 'socks5' ? urls.socks5 : urls.http;
      const label =
        (await listLocations()).find((l) => l.code === body.location)?.label ??
        body.location.toUpperCase();
      return {
        ...viewCredentials(deps, credential, password),
        connection: {
          location: body.location,
          locationLabel: label,
          protocol: body.protocol,
          sticky: body.sticky,
          sessionId,
          host: proxy.host,
          port,
          username,
          url: password ? pick(urlsFor(proxy, username, password)) : null,
          template: pick(urlsFor(proxy, username, 'PASSWORD')),
        },
        firstTime,
        reconnected,
      };
    },
  }),
  jsonRoute({
    operationId: 'disconnectMyProxy',
    method: 'post',
    path: '/me/disconnect',
    tag: 'Proxy',
    summary: 'Disconnect: close every connection and refuse new ones',
    description:
      'Open connections are closed on every gateway within about a second and new ones are refused (DISCONNECTED) until POST /me/connect.',
    access: 'customer',
    response: z.object({ accessPaused: z.boolean(), message: z.string() }),
    async handler({ caller, deps }) {
      if (!(await getProxyCredentials(caller.accountId))) throw noCredentials();
      const view = await setProxyAccess(caller.accountId, 'paused', { clock: deps.clock });
      return {
        accessPaused: view.accessPaused,
        message:
          'Disconnected: your open connections are closed and new ones are refused until you connect again.',
      };
    },
  }),
  jsonRoute({
    operationId: 'newMyProxyIp',
    method: 'post',
    path: '/me/new-ip',
    tag: 'Proxy',
    summary: 'New IP: move to fresh exits',
    description:
      'Every gateway chooses your exits afresh: your next connections use a new exit IP.',
    access: 'customer',
    rateLimit: { name: 'proxy-new-ip', perAccount: { rules: [{ max: 60, windowMs: 3_600_000 }] } },
    response: z.object({ message: z.string() }),
    async handler({ caller }) {
      if (!(await getProxyCredentials(caller.accountId))) throw noCredentials();
      await requestNewExit(caller.accountId);
      return { message: 'Done: your next connections use a new exit IP.' };
    },
  }),
  jsonRoute({
    operationId: 'listMyProxyRefusals',
    method: 'get',
    path: '/me/proxy/refusals',
    tag: 'Proxy',
    summary: 'Why did my proxy fail?',
    description:
      'The last connections the gateway refused or cut, newest first, with the reason code and message as the customer was told, and what to do; then whether the proxy works right now.',
    access: 'customer',
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(10) }),
    response: z.object({
      refusals: z.array(
        z.object({
          code: z.string(),
          message: z.string(),
          stage: z.enum(['refused', 'cut']).describe('refused at connect, or cut while open'),
          protocol: protocol.nullable(),
          port: z.number().int().nullable(),
          location: z.string().nullable(),
          count: z.number().int().describe('Repeats folded into this one.'),
          at: z.date(),
          upgrade: upgradeSchema.nullable().describe('What lifts it now, when a plan change does.'),
          whatToDo: z.string().nullable(),
        }),
      ),
      now: z.object({
        working: z.boolean(),
        message: z.string(),
        refusal: refusalSchema.nullable(),
      }),
    }),
    async handler({ caller, deps, query }) {
      const [records, e] = await Promise.all([
        listRecentRefusals(caller.accountId, { limit: query.limit }),
        entitlementsFor(caller.accountId, deps),
      ]);
      return {
        refusals: records.map((record) => {
          const upgrade = upgradeFor(record, e);
          return {
            code: record.code,
            message: record.message,
            stage: record.stage,
            protocol: record.protocol ?? null,
            port: record.port ?? null,
            location: record.location ?? null,
            count: record.count,
            at: record.at,
            upgrade,
            whatToDo: upgrade?.text ?? GATEWAY_ADVICE[record.code] ?? null,
          };
        }),
        now: e.access.on
          ? { working: true, message: 'Right now your proxy is working.', refusal: null }
          : {
              working: false,
              message: `Right now: ${e.access.message}`,
              refusal: {
                code: e.access.code,
                message: e.access.message,
                upgrade: e.access.upgrade,
              },
            },
      };
    },
  }),
  jsonRoute({
    operationId: 'listMyFailedProxyLogins',
    method: 'get',
    path: '/me/proxy/failed-logins',
    tag: 'Proxy',
    summary: 'Failed proxy logins with your username',
    description:
      'Who tried your proxy username with a wrong or replaced password, newest first: time, source IP, reason and attempts. If these were not you, rotate the password.',
    access: 'customer',
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) }),
    response: z.object({
      username: z.string().nullable(),
      failedLogins: z.array(
        z.object({
          at: z.date(),
          sourceIp: z.string(),
          reason: z.enum(proxyAuthFailureReasons),
          reasonText: z.string(),
          attempts: z.number().int(),
        }),
      ),
    }),
    async handler({ caller, query }) {
      const [credential, failures] = await Promise.all([
        getProxyCredentials(caller.accountId),
        listAuthFailures(caller.accountId, { limit: query.limit }),
      ]);
      return {
        username: credential?.username ?? null,
        failedLogins: failures.map((f) => ({
          at: f.at,
          sourceIp: f.sourceIp,
          reason: f.reason,
          reasonText: FAILURE_REASON[f.reason],
          attempts: f.attempts,
        })),
      };
    },
  }),
];
