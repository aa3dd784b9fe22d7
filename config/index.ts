import path from 'node:path';

import type { LogLevel } from '../lib/logger.js';
import { ConfigError } from './config-error.js';
import { ENV_NAMES, envSchema } from './env-schema.js';
import type { Env, NodeEnv, TelegramMode } from './env-schema.js';
import { loadLocalSecrets } from './local-secrets.js';
import type { LocalSecretName } from './local-secrets.js';
import { roleProblems } from './roles.js';
import type { RoleName } from './roles.js';

export { ConfigError, formatConfigError, isConfigError } from './config-error.js';
export { ROLE_NAMES, isRoleName, selectRoles } from './roles.js';
export type { RoleConfig, RoleName, RoleSelection } from './roles.js';
export { ENV_NAMES, TELEGRAM_MODES } from './env-schema.js';
export type { EnvName, NodeEnv, TelegramMode } from './env-schema.js';
export { SECRETS_FILE_NAME } from './local-secrets.js';

/**
 * Everything Atlantic reads from the environment, parsed once at start-up and
 * deeply frozen. Every module receives it (or the part it needs) as a
 * parameter; nothing else reads `process.env`. Each field names its variable.
 */
export interface Config {
  /** NODE_ENV: development | test | production (default development). */
  readonly nodeEnv: NodeEnv;
  readonly isProduction: boolean;
  readonly isTest: boolean;
  /** DATA_DIR as an absolute path (default `./data` under the working directory). */
  readonly dataDir: string;
  /** PUBLIC_URL without a trailing slash: where people and Paystack reach the API (default `http://localhost:${API_PORT}`). */
  readonly publicUrl: string;
  /** BIND_HOST: the address every listener binds to (default 0.0.0.0). */
  readonly bindHost: string;
  /** ROLES, in start order; undefined when unset or when it only leaves roles out (then main starts every configured role but those). */
  readonly roles: readonly RoleName[] | undefined;
  /** ROLES=-proxy,...: roles left out of "every configured role" (default none). */
  readonly excludedRoles: readonly RoleName[];
  readonly log: {
    /** LOG_LEVEL (default info). */
    readonly level: LogLevel;
    /** LOG_PRETTY: one readable line per record instead of JSON (default false). */
    readonly pretty: boolean;
  };
  readonly mongo: {
    /** MONGODB_URI; undefined means an embedded engine (refused in production). */
    readonly uri: string | undefined;
    /** MONGOMS_SYSTEM_BINARY: a local `mongod` for mongodb-memory-server. */
    readonly systemBinary: string | undefined;
    /** MONGOMS_DOWNLOAD: let mongodb-memory-server download a `mongod` (default true). */
    readonly download: boolean;
  };
  readonly api: {
    /** API_PORT (default 3000; 0 picks a free port). */
    readonly port: number;
    /** CORS_ORIGINS: browser origins allowed to call /api/v1 (default none: CORS off). */
    readonly corsOrigins: readonly string[];
  };
  readonly proxy: {
    /** SOCKS_PORT (default 1080). */
    readonly socksPort: number;
    /** HTTP_PROXY_PORT (default 8080). */
    readonly httpPort: number;
    /** PROXY_PUBLIC_HOST: the host customers point their apps at (default: PUBLIC_URL's host). */
    readonly publicHost: string;
    /** ALLOW_PRIVATE_TARGETS: let tunnels reach loopback/private/link-local addresses (default false). */
    readonly allowPrivateTargets: boolean;
    /** HTTPS_ONLY_PORTS: the ports https-only plans may CONNECT to (default [443]). */
    readonly httpsOnlyPorts: readonly number[];
    /** BLOCKED_PORTS: destination ports no plan may reach (default [25]: no spam relaying). */
    readonly blockedPorts: readonly number[];
  };
  readonly auth: {
    /** JWT_SECRET: signs REST API tokens (at least 32 characters). */
    readonly jwtSecret: string;
  };
  readonly paystack: {
    /** PAYSTACK_SECRET_KEY: API calls and webhook signatures. */
    readonly secretKey: string;
    /** PAYSTACK_BASE_URL without a trailing slash (default https://api.paystack.co). */
    readonly baseUrl: string;
    /**
     * True when no real Paystack is configured outside production (the key was
     * generated and PAYSTACK_BASE_URL is unset): `npm start` then runs the local
     * Paystack emulator as a labelled SANDBOX. Never true in production.
     */
    readonly sandbox: boolean;
    /** PAYSTACK_WEBHOOK_ALLOWED_IPS: webhook senders allowed (`paystack` = Paystack's published IPs); empty = any. */
    readonly webhookAllowedIps: readonly string[];
  };
  /** TRUST_PROXY: how many reverse proxies sit in front of the api (for the client IP); default 0. */
  readonly trustProxy: number;
  readonly telegram: {
    /** TELEGRAM_BOT_TOKEN; undefined means the telegram role cannot run. */
    readonly token: string | undefined;
    /** TELEGRAM_API_ROOT without a trailing slash (default https://api.telegram.org). */
    readonly apiRoot: string;
    /** TELEGRAM_MODE: polling (default; one process at a time) or webhook (several processes). */
    readonly mode: TelegramMode;
    /** TELEGRAM_WEBHOOK_SECRET: Telegram's `secret_token` for webhook mode; undefined in polling mode. */
    readonly webhookSecret: string | undefined;
    /** TELEGRAM_BOT_USERNAME: the bot's @username, for "back to Telegram" links (optional). */
    readonly botUsername: string | undefined;
    /** ADMIN_TELEGRAM_IDS: Telegram user ids that are admins from the start. */
    readonly adminIds: readonly number[];
  };
  readonly whatsapp: {
    /** WHATSAPP_ENABLED (default false). */
    readonly enabled: boolean;
    /** WHATSAPP_PAIRING_NUMBER: log in with a pairing code for this number instead of a QR code (digits only). */
    readonly pairingNumber: string | undefined;
    /** WHATSAPP_PUBLIC_NUMBER: the number customers write to, for "back to WhatsApp" links (digits). */
    readonly publicNumber: string | undefined;
    /** ADMIN_WHATSAPP_NUMBERS: E.164 digits without `+`, admins from the start. */
    readonly adminNumbers: readonly string[];
  };
  readonly mail: {
    /** SMTP_URL; undefined means mail is written to `${dataDir}/mail` (not allowed in production). */
    readonly smtpUrl: string | undefined;
    /** MAIL_FROM (default `Atlantic <no-reply@localhost>`). */
    readonly from: string;
  };
}

export interface LoadConfigOptions {
  /** Folder that a relative DATA_DIR is resolved against (default: process.cwd()). */
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** Things an operator should know (generated secrets, test keys in production); log them at warn. */
  warnings: string[];
}

const DEFAULT_PAYSTACK_BASE_URL = 'https://api.paystack.co';
const DEFAULT_TELEGRAM_API_ROOT = 'https://api.telegram.org';
const DEFAULT_MAIL_FROM = 'Atlantic <no-reply@localhost>';
const LOCAL_PAYSTACK_KEY_PREFIX = 'sk_test_local_';

/** Empty or blank values count as unset (a `.env` line like `SMTP_URL=`); others are trimmed. */
function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const cleaned: Record<string, string> = {};
  for (const name of ENV_NAMES) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') cleaned[name] = value;
  }
  return cleaned;
}

/** Parses every variable; a bad one becomes a problem and is then treated as unset for the cross-checks. */
function parseEnv(cleaned: Record<string, string>): { env: Env; problems: string[] } {
  const first = envSchema.safeParse(cleaned);
  if (first.success) return { env: first.data, problems: [] };
  const problems: string[] = [];
  const bad = new Set<string>();
  for (const issue of first.error.issues) {
    const name = String(issue.path[0] ?? 'environment');
    bad.add(name);
    problems.push(`${name}: ${issue.message}`);
  }
  const rest = Object.fromEntries(Object.entries(cleaned).filter(([name]) => !bad.has(name)));
  // Every variable is optional with a default, so what is left parses.
  return { env: envSchema.parse(rest), problems };
}

function productionProblems(env: Env): string[] {
  const problems: string[] = [];
  if (env.MONGODB_URI === undefined) {
    problems.push(
      'MONGODB_URI: NODE_ENV=production needs MONGODB_URI: the embedded engines are for development and tests',
    );
  }
  if (env.JWT_SECRET === undefined) {
    problems.push(
      'JWT_SECRET: required when NODE_ENV=production; set at least 32 random characters (e.g. `openssl rand -base64 48`)',
    );
  }
  if (env.PAYSTACK_SECRET_KEY === undefined) {
    problems.push(
      'PAYSTACK_SECRET_KEY: required when NODE_ENV=production; use the secret key from the Paystack dashboard (Settings > API Keys & Webhooks)',
    );
  } else if (env.PAYSTACK_SECRET_KEY.startsWith(LOCAL_PAYSTACK_KEY_PREFIX)) {
    problems.push(
      'PAYSTACK_SECRET_KEY: this is a key Atlantic generated for local use, not one Paystack issued; use the secret key from the Paystack dashboard',
    );
  } else if (!/^sk_(live|test)_\w+$/.test(env.PAYSTACK_SECRET_KEY)) {
    problems.push(
      'PAYSTACK_SECRET_KEY: must be a Paystack secret key (sk_live_... or sk_test_...), not a public key; value not shown',
    );
  }
  if (env.TELEGRAM_MODE === 'webhook' && env.TELEGRAM_WEBHOOK_SECRET === undefined) {
    problems.push(
      'TELEGRAM_WEBHOOK_SECRET: required when NODE_ENV=production and TELEGRAM_MODE=webhook; set 32 or more random letters and digits',
    );
  }
  if (env.TELEGRAM_MODE === 'webhook' && env.PUBLIC_URL === undefined) {
    problems.push(
      'PUBLIC_URL: required when TELEGRAM_MODE=webhook in production: Telegram must reach the webhook over the internet',
    );
  }
  return problems;
}

function productionWarnings(env: Env): string[] {
  const warnings: string[] = [];
  if (env.PAYSTACK_SECRET_KEY?.startsWith('sk_test_')) {
    warnings.push(
      'PAYSTACK_SECRET_KEY is a test key (sk_test_...) while NODE_ENV=production: no real money will move',
    );
  }
  if (env.PUBLIC_URL === undefined) {
    warnings.push(
      `PUBLIC_URL is not set: payment links and callbacks will point at http://localhost:${env.API_PORT}`,
    );
  }
  if (env.SMTP_URL === undefined) {
    warnings.push('SMTP_URL is not set: no email can be sent in production');
  }
  if (env.ALLOW_PRIVATE_TARGETS) {
    warnings.push(
      'ALLOW_PRIVATE_TARGETS=true in production: customers can reach loopback and private addresses through the gateway',
    );
  }
  return warnings;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Reads the environment once: every problem is collected and thrown together
 * as a ConfigError; the result is deeply frozen. Outside production, missing
 * secrets are generated into `${DATA_DIR}/secrets.json` (see local-secrets.ts).
 * Only main.ts passes `process.env`; tests pass a plain object.
 */
export function loadConfig(
  rawEnv: Record<string, string | undefined> = process.env,
  options: LoadConfigOptions = {},
): LoadedConfig {
  const { env, problems } = parseEnv(cleanEnv(rawEnv));
  const isProduction = env.NODE_ENV === 'production';
  const warnings: string[] = [];
  const dataDir = path.resolve(options.cwd ?? process.cwd(), env.DATA_DIR ?? 'data');

  const roleView = {
    roles: env.ROLES?.only,
    telegram: { token: env.TELEGRAM_BOT_TOKEN },
    whatsapp: { enabled: env.WHATSAPP_ENABLED },
  };
  problems.push(...roleProblems(roleView));
  if (isProduction) {
    problems.push(...productionProblems(env));
    warnings.push(...productionWarnings(env));
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const secrets: Partial<Record<LocalSecretName, string>> = {
    JWT_SECRET: env.JWT_SECRET,
    PAYSTACK_SECRET_KEY: env.PAYSTACK_SECRET_KEY,
    TELEGRAM_WEBHOOK_SECRET: env.TELEGRAM_WEBHOOK_SECRET,
  };
  if (!isProduction) {
    const needed: LocalSecretName[] = [];
    if (env.JWT_SECRET === undefined) needed.push('JWT_SECRET');
    if (env.PAYSTACK_SECRET_KEY === undefined) needed.push('PAYSTACK_SECRET_KEY');
    if (env.TELEGRAM_MODE === 'webhook' && env.TELEGRAM_WEBHOOK_SECRET === undefined) {
      needed.push('TELEGRAM_WEBHOOK_SECRET');
    }
    const local = loadLocalSecrets(dataDir, needed, {
      JWT_SECRET: (value) => value.length >= 32,
      TELEGRAM_WEBHOOK_SECRET: (value) => /^[A-Za-z0-9_-]{16,256}$/.test(value),
    });
    if (local.problems.length > 0) throw new ConfigError(local.problems);
    Object.assign(secrets, local.values);
    warnings.push(...local.warnings);
  }
  const { JWT_SECRET: jwtSecret, PAYSTACK_SECRET_KEY: paystackSecretKey } = secrets;
  if (jwtSecret === undefined || paystackSecretKey === undefined) {
    // Unreachable: production requires both, elsewhere they were generated.
    throw new ConfigError(['JWT_SECRET, PAYSTACK_SECRET_KEY: could not be resolved']);
  }

  const config: Config = {
    nodeEnv: env.NODE_ENV,
    isProduction,
    isTest: env.NODE_ENV === 'test',
    dataDir,
    publicUrl: env.PUBLIC_URL ?? `http://localhost:${env.API_PORT}`,
    bindHost: env.BIND_HOST,
    roles: env.ROLES?.only,
    excludedRoles: env.ROLES?.except ?? [],
    log: { level: env.LOG_LEVEL, pretty: env.LOG_PRETTY },
    mongo: {
      uri: env.MONGODB_URI,
      systemBinary:
        env.MONGOMS_SYSTEM_BINARY === undefined
          ? undefined
          : path.resolve(options.cwd ?? process.cwd(), env.MONGOMS_SYSTEM_BINARY),
      download: env.MONGOMS_DOWNLOAD,
    },
    api: { port: env.API_PORT, corsOrigins: env.CORS_ORIGINS ?? [] },
    proxy: {
      socksPort: env.SOCKS_PORT,
      httpPort: env.HTTP_PROXY_PORT,
      publicHost:
        env.PROXY_PUBLIC_HOST ??
        new URL(env.PUBLIC_URL ?? `http://localhost:${env.API_PORT}`).hostname,
      allowPrivateTargets: env.ALLOW_PRIVATE_TARGETS,
      httpsOnlyPorts: env.HTTPS_ONLY_PORTS ?? [443],
      blockedPorts: env.BLOCKED_PORTS ?? [25],
    },
    auth: { jwtSecret },
    paystack: {
      secretKey: paystackSecretKey,
      baseUrl: env.PAYSTACK_BASE_URL ?? DEFAULT_PAYSTACK_BASE_URL,
      sandbox:
        !isProduction &&
        env.PAYSTACK_BASE_URL === undefined &&
        paystackSecretKey.startsWith(LOCAL_PAYSTACK_KEY_PREFIX),
      webhookAllowedIps: env.PAYSTACK_WEBHOOK_ALLOWED_IPS ?? [],
    },
    trustProxy: env.TRUST_PROXY,
    telegram: {
      token: env.TELEGRAM_BOT_TOKEN,
      apiRoot: env.TELEGRAM_API_ROOT ?? DEFAULT_TELEGRAM_API_ROOT,
      mode: env.TELEGRAM_MODE,
      webhookSecret: env.TELEGRAM_MODE === 'webhook' ? secrets.TELEGRAM_WEBHOOK_SECRET : undefined,
      botUsername: env.TELEGRAM_BOT_USERNAME,
      adminIds: env.ADMIN_TELEGRAM_IDS ?? [],
    },
    whatsapp: {
      enabled: env.WHATSAPP_ENABLED,
      pairingNumber: env.WHATSAPP_PAIRING_NUMBER,
      publicNumber: env.WHATSAPP_PUBLIC_NUMBER,
      adminNumbers: env.ADMIN_WHATSAPP_NUMBERS ?? [],
    },
    mail: { smtpUrl: env.SMTP_URL, from: env.MAIL_FROM ?? DEFAULT_MAIL_FROM },
  };
  return { config: deepFreeze(config), warnings };
}
