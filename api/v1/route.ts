/**
 * How a REST route is declared. Each route states who may call it (`access`),
 * whether a verified email is needed, which plan feature it needs, its rate
 * limits, and zod schemas for its params, query, body and response. One
 * declaration drives everything about the route: the Express handler
 * (api/v1/mount.ts), the checks in front of it, and its OpenAPI description
 * (api/v1/openapi.ts), so the description cannot drift from what is served.
 *
 * Handlers call `core/` and return a value; the response schema is applied to
 * it on the way out (unknown keys are dropped, so a handler cannot leak a field
 * the description does not name).
 */
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Clock } from '../../lib/clock.js';
import type { Mailer } from '../../lib/mailer.js';
import type { RateLimitRule } from '../../core/accounts/rate-limit.js';
import type { ConfiguredAdmins } from '../../core/admin/index.js';
import type { EntitlementPolicy } from '../../core/account-entitlements.js';
import type { PaymentsService } from '../../core/payments/index.js';
import type { SettingsStore } from '../../core/settings.js';
import type { UnsubscribeLinks } from '../../core/email/unsubscribe.js';
import type { TokenSigner } from './tokens.js';

/** Who may call a route: anyone, a logged-in account, or an admin. */
export type Access = 'public' | 'customer' | 'admin';

/** Plan features a route can require (checked against the caller's live plan). */
export type PlanFeature = 'seats';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What every handler can reach. */
export interface ApiDeps {
  clock: Clock;
  tokens: TokenSigner;
  mailer: Mailer;
  payments: PaymentsService;
  settings: SettingsStore;
  logger: Logger;
  /** Where people reach us (links in emails, server-rendered pages). */
  publicUrl: string;
  /** Admins named in configuration (chat identities). */
  configuredAdmins: ConfiguredAdmins;
  /** The gateway as customers reach it (credentials, ready URLs). */
  proxy: { host: string; socksPort: number; httpPort: number; policy: EntitlementPolicy };
  /** Signs the one-click unsubscribe links of emails (the /account/unsubscribe page). */
  unsubscribe?: UnsubscribeLinks | undefined;
  /** Public handles shown next to link codes. */
  links?: { telegramBotUsername?: string | undefined; whatsappNumber?: string | undefined };
}

/** The logged-in account behind a request. */
export interface Caller {
  accountId: string;
  sessionId: string;
  roles: string[];
  email: string | null;
  emailVerified: boolean;
  status: 'active' | 'suspended' | 'deleted';
}

export interface RouteContext<P, Q, B, A extends Access> {
  params: P;
  query: Q;
  body: B;
  caller: A extends 'public' ? Caller | null : Caller;
  ip: string;
  userAgent: string | undefined;
  /** A request header by name (case-insensitive), e.g. `header('idempotency-key')`. */
  header: (name: string) => string | undefined;
  requestId: string;
  deps: ApiDeps;
  log: Logger;
}

/** A file answer (an invoice PDF). */
export interface FileAnswer {
  body: Buffer;
  filename: string;
}

/** How a rate limit names who is limited. */
export interface RateLimitSpec<B = unknown> {
  /** Short name, part of the stored key, e.g. 'login'. */
  name: string;
  /** Hits allowed per client IP. */
  perIp?: readonly RateLimitRule[];
  /**
   * Hits allowed per account: the caller's account, or for public routes the
   * subject named in the body (an email address), hashed in the key.
   */
  perAccount?: {
    rules: readonly RateLimitRule[];
    subject?: (body: B) => string | undefined;
  };
}

interface RouteBase<
  A extends Access,
  PS extends z.ZodType,
  QS extends z.ZodType,
  BS extends z.ZodType,
> {
  /** Unique operation name, e.g. 'getMe' (OpenAPI operationId, audit names). */
  operationId: string;
  method: HttpMethod;
  /** Express-style path under /api/v1, e.g. '/me/invoices/:number'. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  access: A;
  /** Default: true for 'customer' and 'admin' routes, false for 'public'. */
  verifiedEmail?: boolean;
  planFeature?: PlanFeature;
  rateLimit?: RateLimitSpec<z.output<BS>>;
  params?: PS;
  query?: QS;
  /** Request headers the route reads (lower-case names), validated and described; read them with `header()`. */
  headers?: z.ZodObject;
  body?: BS;
  /** Success status (default 200; 201 for creations, 204 for no body). */
  status?: 200 | 201 | 202 | 204;
}

export interface JsonRoute<
  A extends Access,
  PS extends z.ZodType,
  QS extends z.ZodType,
  BS extends z.ZodType,
  RS extends z.ZodType,
> extends RouteBase<A, PS, QS, BS> {
  response: RS;
  handler: (ctx: RouteContext<z.output<PS>, z.output<QS>, z.output<BS>, A>) => Promise<z.input<RS>>;
}

export interface FileRoute<
  A extends Access,
  PS extends z.ZodType,
  QS extends z.ZodType,
  BS extends z.ZodType,
> extends RouteBase<A, PS, QS, BS> {
  /** The file's content type, e.g. 'application/pdf'. */
  file: string;
  handler: (ctx: RouteContext<z.output<PS>, z.output<QS>, z.output<BS>, A>) => Promise<FileAnswer>;
}

export interface EmptyRoute<
  A extends Access,
  PS extends z.ZodType,
  QS extends z.ZodType,
  BS extends z.ZodType,
> extends RouteBase<A, PS, QS, BS> {
  status: 204;
  handler: (ctx: RouteContext<z.output<PS>, z.output<QS>, z.output<BS>, A>) => Promise<void>;
}

/** A route with its types erased, as the mounting and the description see it. */
export interface AnyRoute extends RouteBase<Access, z.ZodType, z.ZodType, z.ZodType> {
  response?: z.ZodType;
  file?: string;
  handler: (ctx: RouteContext<unknown, unknown, unknown, Access>) => Promise<unknown>;
}

/** Declares a JSON route; the schemas type the handler. */
export function jsonRoute<
  A extends Access,
  RS extends z.ZodType,
  PS extends z.ZodType = z.ZodObject<Record<string, never>>,
  QS extends z.ZodType = z.ZodObject<Record<string, never>>,
  BS extends z.ZodType = z.ZodUndefined,
>(route: JsonRoute<A, PS, QS, BS, RS>): AnyRoute {
  return route as unknown as AnyRoute;
}

/** Declares a route that answers with a file. */
export function fileRoute<
  A extends Access,
  PS extends z.ZodType = z.ZodObject<Record<string, never>>,
  QS extends z.ZodType = z.ZodObject<Record<string, never>>,
  BS extends z.ZodType = z.ZodUndefined,
>(route: FileRoute<A, PS, QS, BS>): AnyRoute {
  return route as unknown as AnyRoute;
}

/** Declares a route that answers 204 with no body. */
export function emptyRoute<
  A extends Access,
  PS extends z.ZodType = z.ZodObject<Record<string, never>>,
  QS extends z.ZodType = z.ZodObject<Record<string, never>>,
  BS extends z.ZodType = z.ZodUndefined,
>(route: EmptyRoute<A, PS, QS, BS>): AnyRoute {
  return route as unknown as AnyRoute;
}
