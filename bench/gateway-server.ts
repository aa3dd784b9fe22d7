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
import { getHeapSpaceStatistics } from 'node:v8';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { systemClock } from '../lib/clock.js';
import { createMetricsRegistry } from '../lib/metrics.js';
import { GatewayAccessController } from '../proxy/access-controller.js';
import { createGateway } from '../proxy/gateway.js';

const [uri, dbName, minLeaseBytes] = process.argv.slice(2);
if (!uri || !dbName) throw new Error('usage: gateway-server.ts <mongodb-uri> <dbName>');

await mongoose.connect(uri, { dbName });
if (process.env.BENCH_QUERY_LOG) {
  // BENCH_QUERY_LOG=1: counts of database calls per collection and method, every 5 s on stderr.
  const counts = new Map<string, number>();
  mongoose.set('debug', (collection: string, method: string) => {
    const key = `${collection}.${method}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  setInterval(() => {
    process.stderr.write(`QUERIES ${process.pid} ${JSON.stringify(Object.fromEntries(counts))}\n`);
    counts.clear();
  }, 5_000).unref();
}
const logger = pino({ level: 'silent' });
const policy = { httpsOnlyPorts: [443], blockedPorts: [25] };
const metrics = createMetricsRegistry({ defaultMetrics: false });
const access = new GatewayAccessController({
  clock: systemClock,
  logger,
  metrics,
  policy,
  ...(minLeaseBytes ? { leases: { minLeaseBytes: Number(minLeaseBytes) } } : {}),
  ...(process.env.BENCH_REFRESH_MS ? { refreshMs: Number(process.env.BENCH_REFRESH_MS) } : {}),
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

if (process.env.BENCH_MEMORY_DETAIL) {
  const { PerformanceObserver } = await import('node:perf_hooks');
  const { getHeapSpaceStatistics } = await import('node:v8');
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      process.stderr.write(
        `GC ${process.pid} ${Math.round(entry.startTime)} kind=${String((entry as { detail?: { kind?: number } }).detail?.kind)} ${entry.duration.toFixed(2)}ms new=${Math.round((ns?.physical_space_size ?? 0) / 1024)}K\n`,
      );
    }
  }).observe({ entryTypes: ['gc'] });
}

/** The young generation's resident size (V8's new space), reported with every control answer. */
function newSpaceBytes(): number {
  return (
    getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
      ?.physical_space_size ?? 0
  );
}

interface Control {
  type: 'gc' | 'profile-start' | 'profile-stop' | 'heap-snapshot' | 'alloc-start' | 'alloc-stop';
  file?: string;
}

let session: Session | undefined;
const post = (method: string, params?: object): Promise<unknown> =>
  new Promise((resolve, reject) => {
    if (!session) {
      reject(new Error('no profiler session'));
      return;
    }
    session.post(method, params, (error, result) => (error ? reject(error) : resolve(result)));
  });

async function handle(message: Control): Promise<void> {
  if (message.type === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc');
    gc();
    gc();
    if (process.env.BENCH_MEMORY_DETAIL) {
      const { getHeapSpaceStatistics } = await import('node:v8');
      const { readFileSync } = await import('node:fs');
      const spaces = Object.fromEntries(
        getHeapSpaceStatistics().map((s) => [
          s.space_name,
          [Math.round(s.space_used_size / 1024), Math.round(s.physical_space_size / 1024)],
        ]),
      );
      // Resident KiB per kind of mapping: the node binary, malloc's heap, anonymous (V8 pages, arenas), other files.
      const maps: Record<string, number> = {};
      let kind = '';
      for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) {
          const name = head[3] ?? '';
          kind =
            name === ''
              ? 'anon'
              : name.endsWith('/node')
                ? 'node'
                : name.startsWith('[')
                  ? name
                  : 'file';
          continue;
        }
        const rss = /^Rss:\s+(\d+)/.exec(line);
        if (rss) maps[kind] = (maps[kind] ?? 0) + Number(rss[1]);
      }
      process.stderr.write(
        `MEMDETAIL ${JSON.stringify({ usage: process.memoryUsage(), spaces, maps })}\n`,
      );
    }
  } else if (message.type === 'heap-snapshot') {
    const { writeHeapSnapshot } = await import('node:v8');
    writeHeapSnapshot(message.file);
  } else if (message.type === 'alloc-start') {
    session = new Session();
    session.connect();
    await post('HeapProfiler.enable');
    // Every allocation, also what the GC already collected: the churn, not what stays.
    await post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else if (message.type === 'alloc-stop') {
    const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
    if (message.file) await writeFile(message.file, JSON.stringify(profile));
    session?.disconnect();
    session = undefined;
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
    () => process.send?.({ type: message.type, done: true, newSpaceBytes: newSpaceBytes() }),
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
