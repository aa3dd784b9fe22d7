import { isIP } from 'node:net';
import { z } from 'zod';

import { LOG_LEVELS } from '../lib/logger.js';
import { ROLE_NAMES, isRoleName } from './roles.js';
import type { RoleName } from './roles.js';

/**
 * The one schema for every environment variable Atlantic reads. Each entry
 * takes the raw string (empty and blank values count as unset) and yields a
 * typed value or a problem that says what is wrong and how to fix it; the
 * variable's name is put in front by loadConfig. Defaults live here.
 */

const NODE_ENVS = ['development', 'test', 'production'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];
export const TELEGRAM_MODES = ['polling', 'webhook'] as const;
export type TelegramMode = (typeof TELEGRAM_MODES)[number];

type Ctx = z.core.$RefinementCtx<string | undefined>;

function fail(ctx: Ctx, value: string | undefined, message: string): typeof z.NEVER {
  ctx.issues.push({ code: 'custom', message, input: value });
  return z.NEVER;
}

const raw = z.string().optional();

function oneOf<const T extends readonly string[]>(values: T, fallback: T[number]) {
  return raw.transform((value, ctx): T[number] => {
    if (value === undefined) return fallback;
    const found = values.find((v) => v === value.toLowerCase());
    return found ?? fail(ctx, value, `must be one of ${values.join(', ')}, got "${value}"`);
  });
}

function port(fallback: number) {
  return raw.transform((value, ctx): number => {
    if (value === undefined) return fallback;
    const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
    return n >= 0 && n <= 65535
      ? n
      : fail(
          ctx,
          value,
          `must be a port number from 0 to 65535 (0 picks a free port), got "${value}"`,
        );
  });
}

function parseBoolean(value: string): boolean | undefined {
  switch (value.toLowerCase()) {
    case 'true':
    case '1':
      return true;
    case 'false':
    case '0':
      return false;
    default:
      return undefined;
  }
}

function boolean(fallback: boolean) {
  return raw.transform((value, ctx): boolean => {
    if (value === undefined) return fallback;
    return parseBoolean(value) ?? fail(ctx, value, `must be true, false, 1 or 0, got "${value}"`);
  });
}

function url(protocols: readonly string[], example: string) {
  return raw.transform((value, ctx): string | undefined => {
    if (value === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return fail(ctx, value, `must be a URL like ${example}, got "${value}"`);
    }
    if (!protocols.includes(parsed.protocol.replace(/:$/, ''))) {
      return fail(
        ctx,
        value,
        `must start with ${protocols.map((p) => `${p}://`).join(' or ')} (like ${example}), got "${parsed.protocol}//..."`,
      );
    }
    return value.replace(/\/+$/, '');
  });
}

/** Only the scheme is checked for secrets-bearing URLs, and the value is never echoed back. */
function secretUrl(protocols: readonly string[], example: string) {
  return raw.transform((value, ctx): string | undefined => {
    if (value === undefined) return undefined;
    let protocol: string;
    try {
      protocol = new URL(value).protocol.replace(/:$/, '');
    } catch {
      return fail(
        ctx,
        value,
        `must be a URL like ${example} (value not shown, it may hold a password)`,
      );
    }
    return protocols.includes(protocol)
      ? value
      : fail(
          ctx,
          value,
          `must start with ${protocols.map((p) => `${p}://`).join(' or ')}, like ${example}`,
        );
  });
}

function list<T>(itemName: string, example: string, parseItem: (item: string) => T | undefined) {
  return raw.transform((value, ctx): T[] | undefined => {
    if (value === undefined) return undefined;
    const items = value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
    const bad = items.filter((item) => parseItem(item) === undefined);
    if (bad.length > 0) {
      return fail(
        ctx,
        value,
        `must be a comma-separated list of ${itemName} (like ${example}); not valid: ${bad.map((b) => `"${b}"`).join(', ')}`,
      );
    }
    const parsed = items.map((item) => parseItem(item)).filter((item) => item !== undefined);
    return [...new Set(parsed)];
  });
}

function parseTelegramId(item: string): number | undefined {
  const n = /^\d{1,16}$/.test(item) ? Number(item) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** E.164: up to 15 digits, no leading zero; a leading + and spaces are allowed and dropped. */
function parsePhoneNumber(item: string): string | undefined {
  const digits = item.replace(/[\s]/g, '').replace(/^\+/, '');
  return /^[1-9]\d{6,14}$/.test(digits) ? digits : undefined;
}

function parsePortItem(item: string): number | undefined {
  const n = /^\d{1,5}$/.test(item) ? Number(item) : NaN;
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * ROLES: the roles to run (`api,jobs`), or, with every name prefixed by `-`,
 * every configured role but those (`-proxy`: a process for all but the
 * gateway, which runs in a process of its own).
 */
const roles = raw.transform(
  (value, ctx): { only: RoleName[] | undefined; except: RoleName[] } | undefined => {
    if (value === undefined) return undefined;
    const entries = value
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== '');
    const excluding = entries.filter((name) => name.startsWith('-'));
    if (excluding.length > 0 && excluding.length < entries.length) {
      return fail(
        ctx,
        value,
        'either name the roles to run (api,jobs) or the roles to leave out (-proxy), not both',
      );
    }
    const names = entries.map((name) => name.replace(/^-/, ''));
    const unknown = names.filter((name) => !isRoleName(name));
    if (unknown.length > 0) {
      return fail(
        ctx,
        value,
        `unknown role${unknown.length === 1 ? '' : 's'} ${unknown.map((u) => `"${u}"`).join(', ')}; roles are ${ROLE_NAMES.join(', ')}`,
      );
    }
    const listed = ROLE_NAMES.filter((role) => names.includes(role));
    return excluding.length > 0
      ? { only: undefined, except: listed }
      : { only: listed, except: [] };
  },
);

/** One phone number in international form, kept as E.164 digits without the `+`. */
function phoneNumber() {
  return raw.transform((value, ctx): string | undefined => {
    if (value === undefined) return undefined;
    return (
      parsePhoneNumber(value) ??
      fail(
        ctx,
        value,
        `must be a phone number in international form like +2348012345678, got "${value}"`,
      )
    );
  });
}

const minSecretLength = 32;

export const envSchema = z.object({
  NODE_ENV: oneOf(NODE_ENVS, 'development'),
  MONGODB_URI: secretUrl(['mongodb', 'mongodb+srv'], 'mongodb://localhost:27017/atlantic'),
  MONGOMS_SYSTEM_BINARY: raw,
  MONGOMS_DOWNLOAD: boolean(true),
  DATA_DIR: raw,

  PUBLIC_URL: url(['http', 'https'], 'https://atlantic.example.com'),
  BIND_HOST: raw.transform((value) => value ?? '0.0.0.0'),
  API_PORT: port(3000),
  SOCKS_PORT: port(1080),
  HTTP_PROXY_PORT: port(8080),
  PROXY_PUBLIC_HOST: raw,
  ALLOW_PRIVATE_TARGETS: boolean(false),
  HTTPS_ONLY_PORTS: list('ports from 1 to 65535', '443,8443', parsePortItem),
  BLOCKED_PORTS: list('ports from 1 to 65535', '25,465,587', parsePortItem),

  JWT_SECRET: raw.refine((value) => value === undefined || value.length >= minSecretLength, {
    message: `must be at least ${minSecretLength} characters (e.g. the output of \`openssl rand -base64 48\`)`,
  }),

  PAYSTACK_SECRET_KEY: raw,
  PAYSTACK_BASE_URL: url(['http', 'https'], 'https://api.paystack.co'),
  PAYSTACK_WEBHOOK_ALLOWED_IPS: list(
    'IP addresses, or the word paystack for the addresses Paystack publishes',
    'paystack or 52.31.139.75,52.49.173.169',
    (item) =>
      item.toLowerCase() === 'paystack' || isIP(item) !== 0 ? item.toLowerCase() : undefined,
  ),
  CORS_ORIGINS: list(
    'browser origins (scheme://host[:port])',
    'https://dashboard.example.com',
    (item) => (/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(item) ? item : undefined),
  ),
  TRUST_PROXY: raw.transform((value, ctx): number => {
    if (value === undefined) return 0;
    const n = /^\d{1,2}$/.test(value) ? Number(value) : NaN;
    return Number.isInteger(n)
      ? n
      : fail(
          ctx,
          value,
          `must be the number of reverse proxies in front of the api (0-99), got "${value}"`,
        );
  }),

  TELEGRAM_BOT_TOKEN: raw.refine((value) => value === undefined || /^\d+:[\w-]+$/.test(value), {
    message: 'must look like 123456789:AAE... (the token @BotFather gives); value not shown',
  }),
  TELEGRAM_API_ROOT: url(['http', 'https'], 'https://api.telegram.org'),
  TELEGRAM_MODE: oneOf(TELEGRAM_MODES, 'polling'),
  TELEGRAM_WEBHOOK_SECRET: raw.refine(
    (value) => value === undefined || /^[A-Za-z0-9_-]{16,256}$/.test(value),
    {
      message:
        "must be 16-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)",
    },
  ),
  ADMIN_TELEGRAM_IDS: list('numeric Telegram user ids', '123456789,987654321', parseTelegramId),
  TELEGRAM_BOT_USERNAME: raw.transform((value, ctx): string | undefined => {
    if (value === undefined) return undefined;
    const name = value.replace(/^@/, '');
    return /^[A-Za-z][A-Za-z0-9_]{4,31}$/.test(name)
      ? name
      : fail(ctx, value, `must be the bot's @username (5-32 letters, digits, _), got "${value}"`);
  }),

  WHATSAPP_ENABLED: boolean(false),
  WHATSAPP_PAIRING_NUMBER: phoneNumber(),
  WHATSAPP_PUBLIC_NUMBER: phoneNumber(),
  ADMIN_WHATSAPP_NUMBERS: list(
    'phone numbers in international (E.164) form',
    '+2348012345678,+233201234567',
    parsePhoneNumber,
  ),

  SMTP_URL: secretUrl(['smtp', 'smtps'], 'smtps://user:password@smtp.example.com:465'),
  MAIL_FROM: raw.refine((value) => value === undefined || /@/.test(value), {
    message: 'must be an address like "Atlantic <no-reply@example.com>"',
  }),

  LOG_LEVEL: oneOf(LOG_LEVELS, 'info'),
  LOG_PRETTY: boolean(false),
  ROLES: roles,
});

export type Env = z.output<typeof envSchema>;
export type EnvName = keyof typeof envSchema.shape;
export const ENV_NAMES = Object.keys(envSchema.shape) as EnvName[];
