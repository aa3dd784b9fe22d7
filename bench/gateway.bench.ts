/**
 * The gateway (issue 4, "Speed") side by side with microsocks, Dante and a
 * minimal Node SOCKS5 proxy (bench/node-socks-peer.ts: what Node itself costs
 * per tunnel), on loopback, in one run, rounds interleaved (the order rotates
 * every round):
 *
 * - bulk: one tunnel downloads BENCH_GATEWAY_BYTES (1 GiB) from a C source;
 *   GB/s, and CPU seconds per GiB of the proxy process (tree, for Dante);
 * - short tunnels with auth (greeting, RFC 1929 login, CONNECT, 1 byte echoed,
 *   close), one at a time and 64 at once, for BENCH_GATEWAY_RATE_MS each:
 *   tunnels/s, p50 and p99 latency, and (64 at once) the proxy's user and
 *   kernel CPU per tunnel;
 * - memory: (RSS with 1,000 idle authenticated tunnels - RSS before) / 1,000,
 *   after a full GC in Atlantic's process (peers are just measured).
 *
 * Atlantic runs with the real access controller (credential cache,
 * entitlements, connection limits, quota leases, metering) on a database of
 * BENCH_GATEWAY_ACCOUNTS customers on the Personal plan, in its own process;
 * the database engine in another. Clients and targets are one small C program
 * (bench/gateway-native.ts) so that the generator is not the bottleneck.
 * BENCH_PROFILE_DIR=<dir>: one extra 64-way run with Atlantic's process under
 * the CPU profiler; the profile is written there and its top entries printed.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mongoose from 'mongoose';
import { addExit, addLocation } from '../core/locations.js';
import { seedPlans } from '../core/plans.js';
import { issueProxyCredentials } from '../core/proxy-credentials.js';
import { activateFromPayment } from '../core/subscriptions.js';
import { systemClock } from '../lib/clock.js';
import { compileForBench } from './compiled.js';
import { gatewayNodeFlags } from './runtime-flags.js';
import { Account } from '../models/account.js';
import {
  buildNative,
  writeCredentials,
  type BulkResult,
  type IdleResult,
  type RateResult,
} from './gateway-native.js';
import {
  cpuSeconds,
  cpuTimes,
  firstLine,
  hasCommand,
  rssBytes,
  startDante,
  startMicrosocks,
  startNodePeer,
  stopChild,
  type Proxy,
} from './gateway-peers.js';

const GiB = 2 ** 30;
const BULK_BYTES = Number(process.env.BENCH_GATEWAY_BYTES ?? GiB);
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 3);
const RATE_MS = Number(process.env.BENCH_GATEWAY_RATE_MS ?? 2_000);
const ACCOUNTS = Number(process.env.BENCH_GATEWAY_ACCOUNTS ?? 256);
/** How long the idle tunnels are held before RSS is read (BENCH_GATEWAY_IDLE_SETTLE_MS). */
const IDLE_SETTLE_MS = Number(process.env.BENCH_GATEWAY_IDLE_SETTLE_MS ?? 20_000);
/** BENCH_GATEWAY_PHASES=memory (or bulk,rate): run only those phases, for a quick look at one figure. */
const PHASES = new Set((process.env.BENCH_GATEWAY_PHASES ?? 'bulk,rate,memory').split(','));
/**
 * The gateway runs with the controller's default leases (smallest 1 MiB): a
 * tunnel at loopback speed spends a lease before its renewal returns, and the
 * relay holds the next chunk until it does (grant.waitForAllowance). The bench
 * also checks one download with the defaults on a fresh process and reports
 * any cut. BENCH_GATEWAY_MIN_LEASE_BYTES raises the smallest lease instead.
 */
const BENCH_MIN_LEASE_BYTES = process.env.BENCH_GATEWAY_MIN_LEASE_BYTES
  ? Number(process.env.BENCH_GATEWAY_MIN_LEASE_BYTES)
  : undefined;
const IDLE_TUNNELS = 1_000;
const CONCURRENCY = 64;

const root = path.resolve(import.meta.dirname, '..');

async function runNative<T>(binary: string, args: string[]): Promise<T> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const result = await firstLine<T>(child, `native ${args[0] ?? ''}`);
  if (child.exitCode === null) await once(child, 'exit');
  return result;
}

async function startNativeServer(
  binary: string,
  args: string[],
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const { port } = await firstLine<{ port: number }>(child, `native ${args[0] ?? ''}`);
  return { port, child };
}

/** gateway-server's answer to a control message. */
interface ControlReply {
  type: string;
  done: boolean;
  error?: string;
  /** The young generation's resident bytes after the command (V8's new space). */
  newSpaceBytes?: number;
}

interface AtlanticProcess {
  proxy: Proxy;
  control(message: {
    type: 'gc' | 'profile-start' | 'profile-stop' | 'heap-snapshot' | 'alloc-start' | 'alloc-stop';
    file?: string;
  }): Promise<ControlReply>;
}

let gatewayServerScript = '';
/** BENCH_GATEWAY_NODE_FLAGS: extra Node/V8 flags for the Atlantic process (e.g. `--trace-gc`). */
const NODE_FLAGS = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean);

async function startAtlantic(
  uri: string,
  dbName: string,
  credentials: Proxy['credentials'],
  minLeaseBytes?: number,
): Promise<AtlanticProcess> {
  const args = [uri, dbName, ...(minLeaseBytes ? [String(minLeaseBytes)] : [])];
  const child = fork(gatewayServerScript, args, {
    cwd: root,
    execArgv: ['--expose-gc', ...gatewayNodeFlags(), ...NODE_FLAGS],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const info = await firstLine<{ socksPort: number; pid: number }>(child, 'gateway-server');
  return {
    proxy: {
      name: 'Atlantic',
      note: `Atlantic gateway, one Node ${process.version} process (${gatewayNodeFlags().join(' ')}, as docker-compose.yml's gateway service), real access controller (${ACCOUNTS} Personal-plan accounts, auth from the cache, entitlements, connection limits, quota leases${minLeaseBytes ? ` with the smallest lease raised to ${minLeaseBytes / 2 ** 20} MiB` : ''}, metering)`,
      port: info.socksPort,
      pid: info.pid,
      credentials,
      stop: () => stopChild(child),
    },
    control: async (message) => {
      const answered = new Promise<ControlReply>((resolve, reject) => {
        const onMessage = (reply: ControlReply): void => {
          if (reply.type !== message.type) return;
          child.off('message', onMessage);
          if (reply.done) resolve(reply);
          else reject(new Error(`gateway-server ${message.type}: ${reply.error ?? ''}`));
        };
        child.on('message', onMessage);
      });
      child.send(message);
      return answered;
    },
  };
}

/** Customers on the Personal plan (SOCKS5, quota with leases) with proxy credentials. */
async function seedCustomers(count: number): Promise<Proxy['credentials']> {
  await seedPlans(systemClock);
  await addLocation({ countryCode: 'ng', city: 'Lagos', label: 'Nigeria (Lagos)' });
  await addExit('ng', { exitId: 'direct', kind: 'direct' });
  const credentials: Proxy['credentials'] = [];
  for (let i = 0; i < count; i += 32) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(32, count - i) }, async (_, j) => {
        const account = await Account.create({ email: `gateway-bench${i + j}@example.com` });
        const accountId = String(account._id);
        await activateFromPayment({
          accountId,
          planCode: 'personal',
          paymentRef: `bench_${accountId}`,
          clock: systemClock,
        });
        const issued = await issueProxyCredentials(accountId, {});
        return { username: issued.username, password: issued.secret };
      }),
    );
    credentials.push(...batch);
  }
  return credentials;
}

interface Figures {
  bulkGBps: number;
  cpuPerGiB: number;
  seqRate: number;
  seqP50ms: number;
  seqP99ms: number;
  concRate: number;
  concP50ms: number;
  concP99ms: number;
  concUserMs: number;
  concSystemMs: number;
  idleKiB: number;
}

type Metric = keyof Figures;

const ROWS: { metric: Metric; label: string; higherIsBetter: boolean; digits: number }[] = [
  { metric: 'bulkGBps', label: 'bulk 1 GiB download, GB/s', higherIsBetter: true, digits: 2 },
  { metric: 'cpuPerGiB', label: 'CPU s per GiB (bulk)', higherIsBetter: false, digits: 2 },
  { metric: 'seqRate', label: 'tunnels/s, 1 at a time', higherIsBetter: true, digits: 0 },
  { metric: 'seqP50ms', label: 'latency p50, 1 at a time (ms)', higherIsBetter: false, digits: 3 },
  { metric: 'seqP99ms', label: 'latency p99, 1 at a time (ms)', higherIsBetter: false, digits: 3 },
  { metric: 'concRate', label: 'tunnels/s, 64 at once', higherIsBetter: true, digits: 0 },
  { metric: 'concP50ms', label: 'latency p50, 64 at once (ms)', higherIsBetter: false, digits: 2 },
  { metric: 'concP99ms', label: 'latency p99, 64 at once (ms)', higherIsBetter: false, digits: 2 },
  {
    metric: 'concUserMs',
    label: 'proxy user CPU per tunnel, 64 at once (ms)',
    higherIsBetter: false,
    digits: 3,
  },
  {
    metric: 'concSystemMs',
    label: 'proxy kernel CPU per tunnel, 64 at once (ms)',
    higherIsBetter: false,
    digits: 3,
  },
  { metric: 'idleKiB', label: 'RSS per idle tunnel (KiB)', higherIsBetter: false, digits: 1 },
];

/** Atlantic's targets, as (metric, peer, minimum ratio) or an absolute bound. */
const TARGETS: Partial<Record<Metric, { ratio?: Record<string, number>; atMost?: number }>> = {
  bulkGBps: { ratio: { Dante: 1.2, microsocks: 3 } },
  concRate: { ratio: { microsocks: 0.6, Dante: 2 } },
  idleKiB: { atMost: 16 },
};

/** The proxies other than Atlantic (whose credentials file is written apart). */
function peers0(proxies: Proxy[]): Proxy[] {
  return proxies.filter((proxy) => proxy.name !== 'Atlantic');
}

function median(values: number[]): number {
  const sorted = [...values].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The CPU profile's top self-time entries, as table rows. */
async function summariseProfile(file: string, top: number): Promise<string[]> {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === '(idle)') return;
    const delta = profile.timeDeltas[i] ?? 0;
    const where = frame.url
      ? ` ${frame.url.replace(/^file:\/\//, '').replace(`${root}/`, '')}:${frame.lineNumber + 1}`
      : '';
    const key = `${frame.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + delta);
    total += delta;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => `| ${((100 * us) / total).toFixed(1)} % | \`${key}\` |`);
}

export default async function bench({ write }: { write: (line: string) => void }): Promise<void> {
  const native = await buildNative();
  if (!native.binary) {
    write(`Skipped: the C load generator could not be built (${native.reason ?? ''}).`);
    return;
  }
  const binary = native.binary;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-gateway-'));
  const cleanups: (() => Promise<void> | void)[] = [];
  const skipped: string[] = [];
  try {
    // The gateway runs as it ships (bench/compiled.ts).
    const compiled = await compileForBench(dir, ['gateway-server', 'node-socks-peer']);
    gatewayServerScript = compiled['gateway-server'];
    const peerStarters = new Map<string, () => Promise<Proxy>>();
    if (hasCommand('microsocks')) peerStarters.set('microsocks', startMicrosocks);
    else skipped.push('microsocks (binary not found: apt-get install microsocks)');
    if (hasCommand('danted')) peerStarters.set('Dante', startDante);
    else skipped.push('Dante (danted not found: apt-get install dante-server)');
    peerStarters.set('minimal Node', () => startNodePeer(compiled['node-socks-peer']));
    // BENCH_GATEWAY_PEERS=microsocks,minimal Node: only those peers (development).
    const wantedPeers = process.env.BENCH_GATEWAY_PEERS?.split(',');
    for (const name of [...peerStarters.keys()]) {
      if (wantedPeers && !wantedPeers.includes(name)) peerStarters.delete(name);
    }
    const echo = await startNativeServer(binary, ['echo']);
    cleanups.push(() => stopChild(echo.child));
    const source = await startNativeServer(binary, ['source', String(BULK_BYTES)]);
    cleanups.push(() => stopChild(source.child));

    const engineChild = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(root, 'lib/mongo-engine/main.ts')],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => stopChild(engineChild));
    const { uri } = await firstLine<{ uri: string }>(engineChild, 'mongo-engine');
    const dbName = 'bench_gateway';
    await mongoose.connect(uri, { dbName });
    cleanups.push(() => mongoose.disconnect());
    await Promise.all(Object.values(mongoose.models).map((m) => m.init()));
    const seedStart = performance.now();
    const credentials = await seedCustomers(ACCOUNTS + 1);
    const seedSeconds = (performance.now() - seedStart) / 1000;

    const credsFile = new Map<string, string>();
    const bulkOnce = (proxy: Proxy): Promise<BulkResult> =>
      runNative<BulkResult>(binary, [
        'bulk',
        String(proxy.port),
        String(source.port),
        credsFile.get(proxy.name) ?? '',
      ]);

    // The default lease settings, on one bulk download (an account of its own).
    const defaults = await startAtlantic(uri, dbName, credentials.slice(-1));
    credsFile.set('Atlantic', await writeCredentials(dir, 'Atlantic', credentials.slice(-1)));
    const defaultBulk = await bulkOnce(defaults.proxy);
    await defaults.proxy.stop();
    credsFile.set('Atlantic', await writeCredentials(dir, 'Atlantic', credentials.slice(0, -1)));

    const atlantic = await startAtlantic(
      uri,
      dbName,
      credentials.slice(0, -1),
      BENCH_MIN_LEASE_BYTES,
    );
    cleanups.push(() => atlantic.proxy.stop());
    const proxies: Proxy[] = [atlantic.proxy];
    for (const start of peerStarters.values()) {
      const peer = await start();
      cleanups.push(() => peer.stop());
      proxies.push(peer);
    }

    for (const proxy of peers0(proxies)) {
      credsFile.set(proxy.name, await writeCredentials(dir, proxy.name, proxy.credentials));
    }
    const rate = (proxy: Proxy, threads: number, ms: number): Promise<RateResult> =>
      runNative<RateResult>(binary, [
        'rate',
        String(proxy.port),
        String(echo.port),
        credsFile.get(proxy.name) ?? '',
        String(threads),
        String(ms),
      ]);

    // Warm-up: JIT, the credential cache's hot paths, every account's first lease.
    for (const proxy of proxies) {
      await rate(proxy, 1, 300);
      await rate(proxy, CONCURRENCY, 700);
    }

    const runs = new Map<string, Partial<Figures>[]>(proxies.map((p) => [p.name, []]));
    const coldRuns: RateResult[] = [];
    const engineCpu = { seconds: 0, tunnels: 0 };
    const errors: string[] = [];
    /** Atlantic's memory runs: how much of the RSS per tunnel was V8's young generation growing. */
    const youngGeneration: { grownKiB: number; totalKiB: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = proxies.map((_, i) => proxies[(i + round) % proxies.length] as Proxy);
      const figures = new Map<string, Partial<Figures>>(order.map((p) => [p.name, {}]));
      const at = (proxy: Proxy): Partial<Figures> => figures.get(proxy.name) as Partial<Figures>;

      for (const proxy of PHASES.has('bulk') ? order : []) {
        const cpu0 = cpuSeconds(proxy.pid);
        const bulk = await bulkOnce(proxy);
        const cpu = cpuSeconds(proxy.pid) - cpu0;
        if (bulk.error || bulk.bytes !== BULK_BYTES) {
          // A cut download measures nothing: the figure stays out of the medians.
          errors.push(
            `${proxy.name} bulk round ${round + 1}: ${bulk.error ?? `cut after ${bulk.bytes} of ${BULK_BYTES} bytes (${fmt(bulk.bytes / bulk.seconds / 1e9, 2)} GB/s until the cut)`}`,
          );
          continue;
        }
        at(proxy).bulkGBps = bulk.bytes / bulk.seconds / 1e9;
        at(proxy).cpuPerGiB = cpu / (bulk.bytes / GiB);
      }
      // Before each timed short-tunnel run, 600 ms of 64-way traffic touches every
      // account again: an account idle for 10 s returns its lease and may leave
      // the hot cache, and its next tunnel waits on the database (the cold path
      // is reported apart below). Peers get the same warm-up.
      const warmUp = (proxy: Proxy): Promise<RateResult> => rate(proxy, CONCURRENCY, 600);
      const timedRate = async (
        proxy: Proxy,
        threads: number,
      ): Promise<RateResult & { userMs: number; systemMs: number }> => {
        const cold = await warmUp(proxy);
        if (proxy === atlantic.proxy) coldRuns.push(cold);
        const engine0 = cpuSeconds(engineChild.pid ?? 0);
        const proxy0 = cpuTimes(proxy.pid);
        const result = await rate(proxy, threads, RATE_MS);
        const proxy1 = cpuTimes(proxy.pid);
        if (proxy === atlantic.proxy) {
          engineCpu.seconds += cpuSeconds(engineChild.pid ?? 0) - engine0;
          engineCpu.tunnels += result.count;
        }
        const perTunnelMs = (seconds: number): number =>
          (1000 * seconds) / Math.max(1, result.count);
        return {
          ...result,
          userMs: perTunnelMs(proxy1.user - proxy0.user),
          systemMs: perTunnelMs(proxy1.system - proxy0.system),
        };
      };
      for (const proxy of PHASES.has('rate') ? order : []) {
        const seq = await timedRate(proxy, 1);
        at(proxy).seqRate = seq.count / seq.seconds;
        at(proxy).seqP50ms = seq.p50us / 1000;
        at(proxy).seqP99ms = seq.p99us / 1000;
        if (seq.errors > 0)
          errors.push(`${proxy.name} 1 at a time round ${round + 1}: ${seq.errors} failed`);
      }
      for (const proxy of PHASES.has('rate') ? order : []) {
        const conc = await timedRate(proxy, CONCURRENCY);
        at(proxy).concRate = conc.count / conc.seconds;
        at(proxy).concP50ms = conc.p50us / 1000;
        at(proxy).concP99ms = conc.p99us / 1000;
        at(proxy).concUserMs = conc.userMs;
        at(proxy).concSystemMs = conc.systemMs;
        if (conc.errors > 0)
          errors.push(`${proxy.name} 64 at once round ${round + 1}: ${conc.errors} failed`);
      }
      // Memory: a fresh process of each proxy, so memory kept from earlier runs
      // (glibc's cached thread stacks, Dante's idle workers, V8's grown heap)
      // does not hide the cost of the tunnels.
      for (const proxy of PHASES.has('memory') ? order : []) {
        const isAtlantic = proxy === atlantic.proxy;
        const freshAtlantic = isAtlantic
          ? await startAtlantic(uri, dbName, credentials.slice(0, -1), BENCH_MIN_LEASE_BYTES)
          : undefined;
        const fresh =
          freshAtlantic?.proxy ?? (await (peerStarters.get(proxy.name) as () => Promise<Proxy>)());
        const freshCreds = await writeCredentials(dir, `${proxy.name}-fresh`, fresh.credentials);
        try {
          const gc = async (): Promise<number | undefined> =>
            freshAtlantic ? (await freshAtlantic.control({ type: 'gc' })).newSpaceBytes : undefined;
          // Measured once the process has been idle a while, before as after,
          // not in the wake of its start or of the burst that opened the
          // tunnels: every proxy waits the same time.
          const settle = (): Promise<unknown> =>
            new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
          await settle();
          const newSpaceBefore = await gc();
          const before = rssBytes(fresh.pid).bytes;
          if (freshAtlantic && process.env.BENCH_HEAP_SNAPSHOT) {
            await freshAtlantic.control({
              type: 'heap-snapshot',
              file: `${process.env.BENCH_HEAP_SNAPSHOT}.before`,
            });
            await gc();
          }
          const holder = spawn(
            binary,
            ['idle', String(fresh.port), freshCreds, String(IDLE_TUNNELS)],
            { stdio: ['pipe', 'pipe', 'inherit'] },
          );
          const idle = await firstLine<IdleResult>(holder, 'native idle');
          // BENCH_ALLOC_PROFILE=<file>: what the idle gateway allocates meanwhile.
          const allocProfile = freshAtlantic ? process.env.BENCH_ALLOC_PROFILE : undefined;
          if (allocProfile) await freshAtlantic?.control({ type: 'alloc-start' });
          await settle();
          if (allocProfile) {
            await freshAtlantic?.control({ type: 'alloc-stop', file: allocProfile });
          }
          const newSpaceAfter = await gc();
          const after = rssBytes(fresh.pid).bytes;
          if (freshAtlantic && process.env.BENCH_HEAP_SNAPSHOT) {
            // BENCH_HEAP_SNAPSHOT=<file>: what the idle tunnels hold, for a heap viewer.
            await freshAtlantic.control({
              type: 'heap-snapshot',
              file: process.env.BENCH_HEAP_SNAPSHOT,
            });
          }
          holder.stdin?.end();
          await once(holder, 'exit');
          if (idle.errors > 0)
            errors.push(`${proxy.name} idle round ${round + 1}: ${idle.errors} tunnels failed`);
          const opened = Math.max(1, idle.opened);
          const perTunnelKiB = (after - before) / opened / 1024;
          at(proxy).idleKiB = perTunnelKiB;
          if (newSpaceBefore !== undefined && newSpaceAfter !== undefined) {
            youngGeneration.push({
              grownKiB: (newSpaceAfter - newSpaceBefore) / opened / 1024,
              totalKiB: perTunnelKiB,
            });
          }
        } finally {
          await fresh.stop();
        }
      }
      for (const proxy of proxies) runs.get(proxy.name)?.push(at(proxy));
    }

    let profileRows: string[] = [];
    let profileFile: string | undefined;
    if (process.env.BENCH_PROFILE_DIR) {
      await mkdir(process.env.BENCH_PROFILE_DIR, { recursive: true });
      profileFile = path.resolve(process.env.BENCH_PROFILE_DIR, 'gateway-64way.cpuprofile');
      await atlantic.control({ type: 'profile-start' });
      await rate(atlantic.proxy, CONCURRENCY, RATE_MS);
      await atlantic.control({ type: 'profile-stop', file: profileFile });
      profileRows = await summariseProfile(profileFile, 15);
    }

    // ---- the table -------------------------------------------------------
    const peers = proxies.filter((p) => p !== atlantic.proxy);
    const atlanticRuns = runs.get('Atlantic') ?? [];
    write(
      `Loopback, ${ROUNDS} interleaved rounds (order rotated each round), medians; ratios are the median of the per-round ratios Atlantic / peer with the min-max spread. Bulk ${fmt(BULK_BYTES / GiB, 2)} GiB per run; short tunnels ${RATE_MS} ms per run; ${IDLE_TUNNELS} idle tunnels. Client, targets and every proxy share the machine's ${os.cpus().length} cores.\n`,
    );
    write(
      `Generator: a C client compiled by the bench (gcc -O2, one blocking thread per concurrent tunnel: greeting, RFC 1929 auth, CONNECT 127.0.0.1, 1 byte echoed by a C target that then closes, read to EOF, close); bulk read into a reused 256 KiB buffer from a C source.\n`,
    );
    for (const proxy of proxies) write(`- **${proxy.name}**: ${proxy.note}`);
    for (const reason of skipped) write(`- skipped: ${reason}`);
    write('');
    const header = [
      'figure',
      ...proxies.map((p) => p.name),
      ...peers.map((p) => `Atlantic / ${p.name}`),
      'target',
    ];
    write(`| ${header.join(' | ')} |`);
    write(`| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
    for (const row of ROWS) {
      const cells = [row.label];
      for (const proxy of proxies) {
        cells.push(
          fmt(median((runs.get(proxy.name) ?? []).map((f) => f[row.metric] ?? NaN)), row.digits),
        );
      }
      const verdicts: string[] = [];
      const target = TARGETS[row.metric];
      for (const peer of peers) {
        const peerRuns = runs.get(peer.name) ?? [];
        const ratios = atlanticRuns.map(
          (f, i) => (f[row.metric] ?? NaN) / (peerRuns[i]?.[row.metric] ?? NaN),
        );
        const finite = ratios.filter((r) => Number.isFinite(r));
        const m = median(finite);
        cells.push(
          finite.length
            ? `${fmt(m, 2)}x (${fmt(Math.min(...finite), 2)}-${fmt(Math.max(...finite), 2)})`
            : 'n/a',
        );
        const wanted = target?.ratio?.[peer.name];
        if (wanted !== undefined)
          verdicts.push(`>= ${wanted}x ${peer.name}: ${m >= wanted ? 'met' : 'NOT met'}`);
      }
      if (target?.atMost !== undefined) {
        const value = median(atlanticRuns.map((f) => f[row.metric] ?? NaN));
        verdicts.push(`<= ${target.atMost} KiB: ${value <= target.atMost ? 'met' : 'NOT met'}`);
      }
      cells.push(
        verdicts.join('; ') || (row.higherIsBetter ? 'higher is better' : 'lower is better'),
      );
      write(`| ${cells.join(' | ')} |`);
    }
    write(
      `\nPer-round ratio direction: Atlantic / peer for every row (above 1 is better for GB/s and tunnels/s, below 1 is better for CPU, latency and RSS). RSS and CPU are read from /proc for the proxy process and its descendants (Dante forks workers); Atlantic's RSS after a full GC. Database seeded with ${ACCOUNTS} accounts in ${seedSeconds.toFixed(1)} s.`,
    );
    if (youngGeneration.length > 0) {
      const grown = youngGeneration.map((r) => r.grownKiB);
      const without = youngGeneration.map((r) => r.totalKiB - r.grownKiB);
      write(
        `\nAtlantic's RSS per idle tunnel, taken apart: V8's young generation (new space, resident) grew by ${fmt(median(grown), 1)} KiB per tunnel (min ${fmt(Math.min(...grown), 1)}, max ${fmt(Math.max(...grown), 1)}) between the two readings: a burst of allocation grows it up to 32 MB, and V8 gives it back only once the process allocates little for several seconds. Without it: ${fmt(median(without), 1)} KiB per tunnel (min ${fmt(Math.min(...without), 1)}, max ${fmt(Math.max(...without), 1)}).`,
      );
    }
    const coldRates = coldRuns.map((r) => r.count / r.seconds);
    write(
      `\nAtlantic's database side: the engine process (the in-process MongoDB engine, Node) used ${fmt((1000 * engineCpu.seconds) / Math.max(1, engineCpu.tunnels), 3)} CPU-s per 1,000 tunnels during Atlantic's timed short-tunnel runs (usage flushes, presence, lease settles; on the same 2 cores). The 600 ms 64-way warm-up before each run, which finds accounts cold (lease returned after 10 s idle, facts maybe dropped from the hot cache), ran at ${fmt(median(coldRates), 0)} tunnels/s (min ${fmt(Math.min(...coldRates), 0)}, max ${fmt(Math.max(...coldRates), 0)}), ${coldRuns.reduce((n, r) => n + r.errors, 0)} failed.`,
    );
    write(
      `\nQuota leases with the controller's defaults (smallest lease 1 MiB), one ${fmt(BULK_BYTES / GiB, 2)} GiB download through a fresh Atlantic process: ${
        defaultBulk.bytes === BULK_BYTES
          ? `complete, ${fmt(defaultBulk.bytes / defaultBulk.seconds / 1e9, 2)} GB/s.`
          : `CUT after ${defaultBulk.bytes} bytes (${fmt(defaultBulk.bytes / 2 ** 20, 2)} MiB): the first lease ran dry before its renewal came back and the relay treated that as "quota out".`
      }`,
    );
    if (errors.length > 0) write(`\nErrors: ${errors.join('; ')}`);
    if (profileFile) {
      write(`\nCPU profile of Atlantic's process during one extra 64-way run: ${profileFile}\n`);
      write('| self time | function |');
      write('| ---: | --- |');
      for (const row of profileRows) write(row);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        write(`cleanup failed: ${String(error)}`);
      }
    }
    // The compiled gateway and the credential files (node_modules is a link, left alone).
    await rm(dir, { recursive: true, force: true });
  }
}
