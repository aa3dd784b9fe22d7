/**
 * The Atlantic gateway under test, in its own process so the load generator
 * and the targets do not share its event loop:
 *
 *   node --expose-gc --import tsx bench/gateway-server.ts <mongodb-uri> <dbName> [minLeaseBytes]
 *
 * Wired like the `proxy` role (proxy/index.ts): the real GatewayAccessController
 * (credentials from its in-memory cache, entitlements, connection limits,
 * quota leases, metering, usage flushes) behind createGateway, with private
 * targets allowed because every target of the bench is on loopback; the
 * smallest quota lease is the controller's default unless `minLeaseBytes` is
 * given (see gateway.bench.ts for why the bench raises it). Prints
 * `{"socksPort":N,"pid":N}` once listening. Control messages on the IPC
 * channel: `gc` (two full collections), `profile-start`, `profile-stop`
 * (writes the CPU profile to `file`); each is answered with `{ type, done }`.
 * SIGTERM stops the gateway, flushes usage and returns the leases.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { systemClock } from '../lib/clock.js';
import { createMetricsRegistry } from '../lib/metrics.js';
import { GatewayAccessController } from '../proxy/access-controller.js';
import { createGateway } from '../proxy/gateway.js';

const [uri, dbName, minLeaseBytes] = process.argv.slice(2);
if (!uri || !dbName) throw new Error('usage: gateway-server.ts <mongodb-uri> <dbName>');

await mongoose.connect(uri, { dbName });
const logger = pino({ level: 'silent' });
const policy = { httpsOnlyPorts: [443], blockedPorts: [25] };
const metrics = createMetricsRegistry({ defaultMetrics: false });
const access = new GatewayAccessController({
  clock: systemClock,
  logger,
  metrics,
  policy,
  ...(minLeaseBytes ? { leases: { minLeaseBytes: Number(minLeaseBytes) } } : {}),
});
const gateway = createGateway({
  access,
  logger,
  metrics,
  socksPort: 0,
  httpPort: 0,
  host: '127.0.0.1',
  allowPrivateTargets: true,
  blockedPorts: policy.blockedPorts,
});
await access.start();
await gateway.start();

interface Control {
  type: 'gc' | 'profile-start' | 'profile-stop' | 'heap-snapshot';
  file?: string;
}

let session: Session | undefined;
const post = (method: string): Promise<unknown> =>
  new Promise((resolve, reject) => {
    if (!session) {
      reject(new Error('no profiler session'));
      return;
    }
    session.post(method, (error, result) => (error ? reject(error) : resolve(result)));
  });

async function handle(message: Control): Promise<void> {
  if (message.type === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc');
    gc();
    gc();
  } else if (message.type === 'heap-snapshot') {
    const { writeHeapSnapshot } = await import('node:v8');
    writeHeapSnapshot(message.file);
  } else if (message.type === 'profile-start') {
    session = new Session();
    session.connect();
    await post('Profiler.enable');
    await post('Profiler.start');
  } else {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    if (message.file) await writeFile(message.file, JSON.stringify(profile));
    session?.disconnect();
    session = undefined;
  }
}

process.on('message', (message: Control) => {
  handle(message).then(
    () => process.send?.({ type: message.type, done: true }),
    (error: unknown) => process.send?.({ type: message.type, done: false, error: String(error) }),
  );
});

process.once('SIGTERM', () => {
  void (async () => {
    try {
      await gateway.stop({ drainTimeoutMs: 0 });
      await access.stop();
      await mongoose.disconnect();
    } catch (error) {
      process.stderr.write(`gateway-server: stop failed: ${String(error)}\n`);
    }
    process.exit(0);
  })();
});

process.stdout.write(
  `${JSON.stringify({ socksPort: gateway.addresses().socks.port, pid: process.pid })}\n`,
);
