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
 * Keys whose values never reach a log, wherever they sit up to four levels
 * deep (pino paths have no recursive wildcard, so each depth is listed).
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
  'access_token',
  'refresh_token',
  'botToken',
  'idToken',
  'secret',
  'secretKey',
  'secret_key',
  'clientSecret',
  'client_secret',
  'proxySecret',
  'jwtSecret',
  'apiKey',
  'api_key',
  'privateKey',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'authorization_code',
  'card',
  'cvv',
  'pan',
  'pin',
  'smtpUrl',
  'JWT_SECRET',
  'PAYSTACK_SECRET_KEY',
  'TELEGRAM_BOT_TOKEN',
  'SMTP_URL',
  'MONGODB_URI',
];

/** Header names with dashes need bracket notation in pino paths. */
const SECRET_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-paystack-signature',
  'x-telegram-bot-api-secret-token',
];

function keyPath(prefix: string, key: string): string {
  const part = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
  return prefix === '' ? part.replace(/^\./, '') : `${prefix}${part}`;
}

export const REDACT_PATHS: readonly string[] = [
  ...['', '*', '*.*', '*.*.*'].flatMap((depth) => SECRET_KEYS.map((key) => keyPath(depth, key))),
  ...['req.headers', 'res.headers', 'headers', '*.headers', 'request.headers', 'response.headers'].flatMap(
    (at) => SECRET_HEADERS.map((header) => keyPath(at, header)),
  ),
];

export const REDACTED = '[redacted]';

/** The root logger of a process; modules take `logger.child({ module: 'x' })`. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pinoOptions: pino.LoggerOptions = {
    level: options.level,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  const destination = options.destination ?? pino.destination(1);
  return pino(pinoOptions, options.pretty ? prettyStream(destination) : destination);
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
