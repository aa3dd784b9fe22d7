/**
 * The peers of the gateway benchmark (microsocks and Dante, both with username
 * authentication when possible) and what the bench reads from /proc about any
 * proxy process: resident memory and CPU time of the process and every
 * descendant (Dante forks worker processes; microsocks and Node do not).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, stopChild, whenAccepting } from '../tests/support/proxy-wire.js';

export { stopChild };

export interface Proxy {
  name: string;
  /** What the table says about how it ran. */
  note: string;
  port: number;
  pid: number;
  credentials: { username: string; password: string }[];
  stop(): Promise<void>;
}

/** Reads the first stdout line of a child as JSON. */
export async function firstLine<T>(child: ChildProcess, name: string): Promise<T> {
  if (!child.stdout) throw new Error(`${name} has no stdout`);
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${name} exited (${String(code)}) before answering`);
  });
  const [line] = (await Promise.race([once(lines, 'line'), exited])) as [string];
  lines.close();
  return JSON.parse(line) as T;
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startMicrosocks(): Promise<Proxy> {
  const port = await freePort();
  const credentials = { username: 'bench', password: randomBytes(12).toString('hex') };
  const child = spawn(
    'microsocks',
    ['-i', '127.0.0.1', '-p', String(port), '-u', credentials.username, '-P', credentials.password],
    { stdio: 'ignore' },
  );
  await whenAccepting(port, { child, name: 'microsocks' });
  return {
    name: 'microsocks',
    note: 'microsocks -u/-P (username auth), one thread per connection',
    port,
    pid: child.pid ?? 0,
    credentials: [credentials],
    stop: () => stopChild(child),
  };
}

/**
 * The minimal Node SOCKS5 proxy (bench/node-socks-peer.ts, compiled): what
 * Node alone costs per tunnel on this machine, without Atlantic's access layer.
 */
export async function startNodePeer(script: string): Promise<Proxy> {
  const credentials = { username: 'bench', password: randomBytes(12).toString('hex') };
  const child = spawn(process.execPath, [script, credentials.username, credentials.password], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const { port } = await firstLine<{ port: number }>(child, 'node-socks-peer');
  return {
    name: 'minimal Node',
    note: `the smallest Node ${process.version} SOCKS5 proxy (bench/node-socks-peer.ts): one fixed login, pipe() both ways, nothing of Atlantic's; one process`,
    port,
    pid: child.pid ?? 0,
    credentials: [credentials],
    stop: () => stopChild(child),
  };
}

const DANTE_USER = 'atlanticbench';
/** One password per bench process, so a second Dante (fresh, for memory) keeps the first one's login working. */
const DANTE_PASSWORD = randomBytes(12).toString('hex');

/**
 * Dante's `socksmethod: username` checks system accounts, so as root a
 * throwaway account is created (and removed by `stop()` when this run created
 * it). Its password is stored as MD5-crypt: with the system default
 * (yescrypt) Dante spends milliseconds per login hashing (LIBRARIES.md: 63
 * tunnels/s), which would measure crypt(3), not the proxy. Without root,
 * Dante runs without authentication and says so.
 */
export async function startDante(): Promise<Proxy> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlantic-bench-danted-'));
  const root = process.getuid?.() === 0;
  let createdUser = false;
  const credentials: { username: string; password: string }[] = [];
  if (root) {
    const password = DANTE_PASSWORD;
    try {
      execFileSync('id', [DANTE_USER], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', DANTE_USER]);
      createdUser = true;
    }
    const hash = execFileSync('openssl', ['passwd', '-1', password], { encoding: 'utf8' }).trim();
    execFileSync('chpasswd', ['-e'], { input: `${DANTE_USER}:${hash}\n` });
    credentials.push({ username: DANTE_USER, password });
  }
  const config = path.join(dir, 'danted.conf');
  writeFileSync(
    config,
    [
      'logoutput: stderr',
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      `socksmethod: ${root ? 'username' : 'none'}`,
      ...(root ? ['user.privileged: root', 'user.unprivileged: nobody'] : []),
      'client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      'socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      '',
    ].join('\n'),
  );
  const child = spawn('danted', ['-f', config, '-p', path.join(dir, 'danted.pid')], {
    stdio: 'ignore',
  });
  await whenAccepting(port, { child, name: 'danted' });
  return {
    name: 'Dante',
    note: root
      ? `danted 1.4, socksmethod username (system account, MD5-crypt password), default process settings`
      : 'danted 1.4 WITHOUT authentication (not root: no system account could be made)',
    port,
    pid: child.pid ?? 0,
    credentials,
    stop: async () => {
      await stopChild(child);
      if (createdUser) execFileSync('userdel', [DANTE_USER], { stdio: 'ignore' });
    },
  };
}

interface ProcEntry {
  pid: number;
  ppid: number;
  /** utime, clock ticks. */
  userTicks: number;
  /** stime, clock ticks. */
  systemTicks: number;
  /** cutime, cstime (reaped children), clock ticks. */
  childUserTicks: number;
  childSystemTicks: number;
}

function readProc(pid: number): ProcEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 of proc(5): state, ppid, ..., utime (14), stime, cutime, cstime.
    return {
      pid,
      ppid: Number(fields[1]),
      userTicks: Number(fields[11]),
      systemTicks: Number(fields[12]),
      childUserTicks: Number(fields[13]),
      childSystemTicks: Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants. */
function tree(rootPid: number): ProcEntry[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((entry): entry is ProcEntry => entry !== undefined);
  const byParent = new Map<number, ProcEntry[]>();
  for (const entry of all) {
    const siblings = byParent.get(entry.ppid) ?? [];
    siblings.push(entry);
    byParent.set(entry.ppid, siblings);
  }
  const root = all.find((entry) => entry.pid === rootPid);
  if (!root) return [];
  const out: ProcEntry[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const entry = stack.pop() as ProcEntry;
    out.push(entry);
    stack.push(...(byParent.get(entry.pid) ?? []));
  }
  return out;
}

const TICKS_PER_SECOND = Number(
  (() => {
    try {
      return execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    } catch {
      return '100';
    }
  })(),
);

/** CPU seconds used so far by the process tree (reaped children included), user and kernel. */
export function cpuTimes(rootPid: number): { user: number; system: number } {
  const entries = tree(rootPid);
  const root = entries.find((entry) => entry.pid === rootPid);
  const sum = (ticks: (entry: ProcEntry) => number): number =>
    entries.reduce((total, entry) => total + ticks(entry), 0);
  return {
    user: (sum((e) => e.userTicks) + (root?.childUserTicks ?? 0)) / TICKS_PER_SECOND,
    system: (sum((e) => e.systemTicks) + (root?.childSystemTicks ?? 0)) / TICKS_PER_SECOND,
  };
}

/** CPU seconds used so far by the process tree (reaped children included). */
export function cpuSeconds(rootPid: number): number {
  const { user, system } = cpuTimes(rootPid);
  return user + system;
}

/** VmRSS of the process tree in bytes, and how many processes it has. */
export function rssBytes(rootPid: number): { bytes: number; processes: number } {
  const entries = tree(rootPid);
  let bytes = 0;
  for (const entry of entries) {
    try {
      const status = readFileSync(`/proc/${entry.pid}/status`, 'utf8');
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      bytes += Number(kb ?? 0) * 1024;
    } catch {
      // The process exited between listing and reading.
    }
  }
  return { bytes, processes: entries.length };
}
