import { pino } from 'pino';

export type Logger = pino.Logger;
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface CreateLoggerOptions {
  level: LogLevel;
  /** One readable line per record instead of JSON (for a terminal). Default false. */
  pretty?: boolean;
  /** Where records go; default stdout. Tests pass a stream they read. */
  destination?: pino.DestinationStream;
  /** Added to every record as `name`. */
  name?: string;
}

/**
 * Keys whose values never reach a log, at any depth. Matching ignores case,
 * `-` and `_`, so `secretKey`, `secret_key` and `SECRET-KEY` are one entry and
 * `proxy-authorization` is covered by `proxyAuthorization`.
 */
const SECRET_KEYS = [
  'password',
  'passwd',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'botToken',
  'idToken',
  'secret',
  'secretKey',
  'clientSecret',
  'proxySecret',
  'jwtSecret',
  'webhookSecret',
  'apiKey',
  'xApiKey',
  'privateKey',
  'authorization',
  'proxyAuthorization',
  'cookie',
  'setCookie',
  'xPaystackSignature',
  'xTelegramBotApiSecretToken',
  'authorizationCode',
  'card',
  'cvv',
  'pan',
  'pin',
  'otp',
  'smtpUrl',
  'mongodbUri',
  'paystackSecretKey',
  'telegramBotToken',
];

const normalizeKey = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');
const secretKeySet: ReadonlySet<string> = new Set(SECRET_KEYS.map(normalizeKey));
const normalizedCache = new Map<string, boolean>();

export function isSecretKey(key: string): boolean {
  let secret = normalizedCache.get(key);
  if (secret === undefined) {
    secret = secretKeySet.has(normalizeKey(key));
    if (normalizedCache.size < 10_000) normalizedCache.set(key, secret);
  }
  return secret;
}

export const REDACTED = '[redacted]';
const MAX_DEPTH = 8;

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `value` with secret keys censored in plain objects and arrays (up
 * to 8 levels); the same reference when nothing needed censoring. Class
 * instances (Errors, Dates, Buffers, documents) are left to pino's serializers.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    const items: readonly unknown[] = value;
    let copy: unknown[] | undefined;
    items.forEach((item, index) => {
      const redacted = redactSecrets(item, depth + 1);
      if (redacted !== item) {
        copy ??= [...items];
        copy[index] = redacted;
      }
    });
    return copy ?? items;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = value[key];
    const redacted =
      isSecretKey(key) && item !== undefined && item !== null
        ? REDACTED
        : redactSecrets(item, depth + 1);
    if (redacted !== item) {
      copy ??= { ...value };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

/**
 * pino serializers (e.g. pino-http's `req`/`res`) run after the formatters,
 * so the headers they produce are censored by pino's own path redaction.
 */
const SERIALIZED_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-paystack-signature',
  'x-telegram-bot-api-secret-token',
];
export const REDACT_PATHS: readonly string[] = ['req.headers', 'res.headers'].flatMap((at) =>
  SERIALIZED_HEADERS.map((header) => `${at}["${header}"]`),
);

/**
 * The root logger of a process; modules take `logger.child({ module: 'x' })`.
 * Secrets are censored in log objects and in child bindings alike.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pinoOptions: pino.LoggerOptions = {
    level: options.level,
    formatters: {
      log: (object) => redactSecrets(object) as Record<string, unknown>,
      bindings: (bindings) => redactSecrets(bindings) as pino.Bindings,
    },
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  const destination = options.destination ?? pino.destination(1);
  const logger = pino(pinoOptions, options.pretty ? prettyStream(destination) : destination);
  redactChildBindings(logger);
  return logger;
}

type ChildFn = (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;

/**
 * pino applies `formatters.bindings` to the root's bindings only (a child
 * resets it), so `child()` is wrapped on the root; children are created with
 * the root as prototype and inherit the wrapper at every depth.
 */
function redactChildBindings(logger: Logger): void {
  const prototype = Object.getPrototypeOf(logger) as { child: ChildFn };
  const createChild = prototype.child;
  Object.defineProperty(logger, 'child', {
    configurable: true,
    writable: true,
    value: function child(
      this: Logger,
      bindings: pino.Bindings,
      options?: pino.ChildLoggerOptions,
    ) {
      return createChild.call(this, redactSecrets(bindings) as pino.Bindings, options);
    },
  });
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

/**
 * A small stand-in for pino-pretty (not installed): `12:03:04.123 INFO  [api] message {rest}`.
 * It reformats the already redacted JSON line, so redaction still holds.
 */
export function prettyStream(out: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string): void {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { level, time, msg, pid: _pid, hostname: _hostname, name, module, ...rest } = record;
      const clock = typeof time === 'string' ? time.slice(11, 23) : '';
      const levelName = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : '';
      const label = [name, module].filter((part) => typeof part === 'string').join('/');
      const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
      const text = typeof msg === 'string' ? msg : '';
      out.write(`${clock} ${levelName} ${label ? `[${label}] ` : ''}${text}${extra}\n`);
    },
  };
}
