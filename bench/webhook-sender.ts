/**
 * The load generator of webhooks.bench.ts, in its own process so that sending
 * does not steal CPU from the server being measured:
 *
 *   node --import tsx bench/webhook-sender.ts <job.json>
 *
 * The job file holds `{ url, secretKey, senders, bodies }`; each body is signed
 * like Paystack does and POSTed by `senders` concurrent loops. Prints one JSON
 * line: `{ latenciesMs, seconds, failures, startedAtEpochMs, cpuSeconds }`.
 *
 * The bench uses it only as the fallback: by default it runs the native C
 * sender (bench/webhook-sender-native.ts, same job file and output line), whose
 * CPU per delivery is a small fraction of this one's. BENCH_NODE_SENDER=1
 * forces this sender, e.g. to compare the two; so does a machine without gcc.
 */
import { readFile } from 'node:fs/promises';
import { signPaystackBody } from '../lib/paystack/signature.js';

interface Job {
  url: string;
  secretKey: string;
  senders: number;
  bodies: string[];
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

const file = process.argv[2];
if (!file) throw new Error('usage: webhook-sender.ts <job.json>');
const job = JSON.parse(await readFile(file, 'utf8')) as Job;
const signed = job.bodies.map((body) => ({
  body,
  signature: signPaystackBody(body, job.secretKey),
}));

const latenciesMs: number[] = [];
let failures = 0;
let next = 0;
const startedAtEpochMs = Date.now();
const start = performance.now();
const cpuAtStart = process.cpuUsage();
const sender = async (): Promise<void> => {
  while (next < signed.length) {
    const item = signed[next++];
    if (!item) break;
    const t0 = performance.now();
    const res = await fetch(job.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-paystack-signature': item.signature },
      body: item.body,
    });
    await res.arrayBuffer();
    latenciesMs.push(performance.now() - t0);
    if (res.status !== 200) failures++;
  }
};
await Promise.all(Array.from({ length: job.senders }, sender));
process.stdout.write(
  `${JSON.stringify({
    latenciesMs,
    seconds: (performance.now() - start) / 1000,
    failures,
    startedAtEpochMs,
    cpuSeconds: cpuSecondsSince(cpuAtStart),
  })}\n`,
);
