/**
 * Runs the Paystack emulator as its own process, for benchmarks and manual
 * sandboxes:
 *
 *   node --import tsx lib/paystack/emulator/main.ts --secret-key K [--port 0]
 *     [--host 127.0.0.1] [--webhook-url URL] [--log-level warn]
 *
 * When listening it prints one JSON line on stdout, `{"baseUrl":"http://…"}`,
 * and nothing else goes to stdout (logs go to stderr). SIGINT/SIGTERM stop it.
 * Options come from argv only, never from the environment.
 */
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { createLogger, LOG_LEVELS } from '../../logger.js';
import type { LogLevel } from '../../logger.js';
import { startPaystackEmulator } from './index.js';

interface EmulatorCommandLine {
  secretKey: string;
  port: number;
  host: string;
  webhookUrl: string | undefined;
  logLevel: LogLevel;
}

/** Reads the command line; throws an Error naming the problem. */
function parseEmulatorArgs(argv: readonly string[]): EmulatorCommandLine {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'secret-key': { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'webhook-url': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
    },
    strict: true,
  });
  const secretKey = values['secret-key'];
  if (secretKey === undefined || secretKey === '') throw new Error('--secret-key is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`--port must be 0-65535, got ${values.port}`);
  }
  const webhookUrl = values['webhook-url'];
  if (webhookUrl !== undefined) new URL(webhookUrl); // throws on a malformed URL
  const logLevel = values['log-level'];
  if (!LOG_LEVELS.some((level) => level === logLevel)) {
    throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return { secretKey, port, host: values.host, webhookUrl, logLevel: logLevel as LogLevel };
}

async function main(): Promise<void> {
  let commandLine: EmulatorCommandLine;
  try {
    commandLine = parseEmulatorArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(
      `paystack emulator: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const logger = createLogger({
    level: commandLine.logLevel,
    name: 'paystack-emulator',
    destination: pino.destination(2),
  });
  const emulator = await startPaystackEmulator({
    secretKey: commandLine.secretKey,
    port: commandLine.port,
    host: commandLine.host,
    logger,
    ...(commandLine.webhookUrl === undefined ? {} : { webhookUrl: commandLine.webhookUrl }),
  });
  process.stdout.write(`${JSON.stringify({ baseUrl: emulator.baseUrl })}\n`);
  const stop = (): void => {
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'emulator.stop_failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
