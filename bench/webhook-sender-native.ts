/**
 * The native load generator of webhooks.bench.ts: same job file, same output
 * line as bench/webhook-sender.ts, but the sending is done by a small C
 * program, so the sender's CPU per delivery (about 0.9 ms for Node's fetch on
 * a 2-core machine) no longer competes with the server being measured:
 *
 *   node --import tsx bench/webhook-sender-native.ts <job.json> [<binary>]
 *
 * This wrapper reads `{ url, secretKey, senders, bodies }`, builds every HTTP/1.1
 * request in order (POST <path>, Host, Content-Type: application/json,
 * Content-Length, x-paystack-signature from signPaystackBody, Connection:
 * keep-alive), writes them to a file (each a 4-byte little-endian length, then
 * the bytes) and runs
 *
 *   webhook-sender-native <host> <port> <senders> <requests file>
 *
 * `<senders>` blocking threads, one keep-alive connection each, take the next
 * request from a shared atomic counter, write it and read the whole answer
 * (status line, then Content-Length, chunked or to EOF); a connection the
 * server closed is reopened (a request that found its reused connection closed
 * before any answer byte is sent once more, as HTTP clients do). It prints one
 * JSON line, `{ latenciesMs, seconds, failures, startedAtEpochMs, cpuSeconds }`
 * (latency per answered request, CLOCK_MONOTONIC; failures = non-200 answers
 * plus requests that got no answer; cpuSeconds = getrusage(RUSAGE_SELF) user +
 * system while sending), which this wrapper passes through unchanged.
 *
 * The program is compiled with `gcc -O2 -pthread` once and cached in
 * os.tmpdir() under a hash of its source. Without gcc, or with
 * BENCH_NODE_SENDER=1, the bench uses the Node sender (bench/webhook-sender.ts)
 * and says so in its setup line.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  access,
  constants,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { signPaystackBody } from '../lib/paystack/signature.js';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct addrinfo *target;
static unsigned char *data;
static long nreq;
static long *req_off;
static uint32_t *req_len;
static double *lat_us;      /* per request; < 0 when it got no answer */
static atomic_long next_req;
static atomic_long failures;
static atomic_long reported;

static double mono_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double cpu_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void report(const char *what, long i) {
  if (atomic_fetch_add(&reported, 1) < 5) fprintf(stderr, "webhook-sender-native: request %ld: %s\n", i, what);
}

static int write_full(int fd, const unsigned char *buf, long n) {
  long put = 0;
  while (put < n) {
    ssize_t w = write(fd, buf + put, n - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    put += w;
  }
  return 0;
}

static int connect_target(void) {
  int fd = socket(target->ai_family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (connect(fd, target->ai_addr, target->ai_addrlen) < 0) { close(fd); return -1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

typedef struct { unsigned char *buf; size_t cap, have; } rbuf_t;

/* Reads more bytes into rb; -1 on EOF or error. */
static int fill(int fd, rbuf_t *rb) {
  if (rb->have == rb->cap) { rb->cap *= 2; rb->buf = realloc(rb->buf, rb->cap); }
  for (;;) {
    ssize_t r = read(fd, rb->buf + rb->have, rb->cap - rb->have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    rb->have += (size_t)r;
    return 0;
  }
}

/* Position just after the next CRLF at or after pos, reading more as needed; -1 on EOF. */
static long line_end(int fd, rbuf_t *rb, size_t pos) {
  for (;;) {
    if (rb->have >= pos + 2) {
      unsigned char *e = memmem(rb->buf + pos, rb->have - pos, "\r\n", 2);
      if (e) return (long)(e - rb->buf) + 2;
    }
    if (fill(fd, rb)) return -1;
  }
}

static int header_is(const unsigned char *line, size_t n, const char *name) {
  size_t k = strlen(name);
  return n > k && line[k] == ':' && strncasecmp((const char *)line, name, k) == 0;
}

static int value_has(const unsigned char *line, size_t n, const char *word) {
  char v[256];
  size_t k = n < sizeof v - 1 ? n : sizeof v - 1;
  memcpy(v, line, k);
  v[k] = 0;
  return strcasestr(strchr(v, ':') ? strchr(v, ':') : v, word) != NULL;
}

/*
 * Reads one whole HTTP/1.x answer. Returns its status (> 0), 0 when the
 * connection was closed before any byte, -1 on any other error; *keep is 0
 * when the connection cannot carry another request.
 */
static int read_response(int fd, rbuf_t *rb, int *keep) {
  rb->have = 0;
  size_t head = 0;
  for (;;) {
    if (rb->have >= 4) {
      unsigned char *e = memmem(rb->buf, rb->have, "\r\n\r\n", 4);
      if (e) { head = (size_t)(e - rb->buf) + 4; break; }
    }
    if (fill(fd, rb)) return rb->have == 0 ? 0 : -1;
  }
  if (head < 14 || memcmp(rb->buf, "HTTP/1.", 7) != 0) return -1;
  int status = atoi((const char *)rb->buf + 9);
  if (status <= 0) return -1;
  *keep = rb->buf[7] != '0';
  long long clen = -1;
  int chunked = 0;
  size_t pos = (size_t)((unsigned char *)memmem(rb->buf, head, "\r\n", 2) - rb->buf) + 2;
  while (pos + 2 < head) {
    unsigned char *line = rb->buf + pos;
    size_t n = (size_t)((unsigned char *)memmem(line, head - pos, "\r\n", 2) - line);
    if (header_is(line, n, "content-length")) {
      char v[32];
      size_t k = n - 15 < sizeof v - 1 ? n - 15 : sizeof v - 1;
      memcpy(v, line + 15, k);
      v[k] = 0;
      clen = atoll(v);
    } else if (header_is(line, n, "transfer-encoding")) {
      chunked = value_has(line, n, "chunked");
    } else if (header_is(line, n, "connection")) {
      if (value_has(line, n, "close")) *keep = 0;
      else if (value_has(line, n, "keep-alive")) *keep = 1;
    }
    pos += n + 2;
  }
  if (status / 100 == 1 || status == 204 || status == 304) return status;
  if (chunked) {
    pos = head;
    for (;;) {
      long end = line_end(fd, rb, pos);
      if (end < 0) return -1;
      long size = strtol((const char *)rb->buf + pos, NULL, 16);
      pos = (size_t)end;
      if (size < 0) return -1;
      if (size == 0) {
        /* trailers, then an empty line */
        for (;;) {
          end = line_end(fd, rb, pos);
          if (end < 0) return -1;
          if ((size_t)end == pos + 2) return status;
          pos = (size_t)end;
        }
      }
      while (rb->have < pos + (size_t)size + 2) if (fill(fd, rb)) return -1;
      pos += (size_t)size + 2;
    }
  }
  if (clen >= 0) {
    while (rb->have < head + (size_t)clen) if (fill(fd, rb)) return -1;
    return status;
  }
  /* no length: the body ends with the connection */
  *keep = 0;
  while (fill(fd, rb) == 0) { rb->have = head; }
  return status;
}

static void *worker(void *arg) {
  (void)arg;
  rbuf_t rb = { malloc(65536), 65536, 0 };
  int fd = -1;
  for (;;) {
    long i = atomic_fetch_add(&next_req, 1);
    if (i >= nreq) break;
    double t0 = mono_us();
    int status = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
      int fresh = fd < 0;
      if (fresh) fd = connect_target();
      if (fd < 0) { report("connect failed", i); break; }
      int keep = 1;
      int sent = write_full(fd, data + req_off[i], req_len[i]) == 0;
      status = sent ? read_response(fd, &rb, &keep) : 0;
      if (status > 0 && keep) break;
      close(fd);
      fd = -1;
      if (status > 0) break;
      /* a reused connection the server had closed: send once more on a new one */
      if (status == 0 && !fresh) continue;
      report(status == 0 ? "connection closed without an answer" : "malformed answer", i);
      break;
    }
    if (status > 0) {
      lat_us[i] = mono_us() - t0;
      if (status != 200) atomic_fetch_add(&failures, 1);
    } else {
      atomic_fetch_add(&failures, 1);
    }
  }
  if (fd >= 0) close(fd);
  free(rb.buf);
  return NULL;
}

static void load(const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) { perror(file); exit(2); }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = malloc(size > 0 ? size : 1);
  if (size > 0 && fread(data, 1, size, f) != (size_t)size) { perror(file); exit(2); }
  fclose(f);
  for (long p = 0; p + 4 <= size; nreq++) {
    uint32_t n = data[p] | data[p + 1] << 8 | data[p + 2] << 16 | (uint32_t)data[p + 3] << 24;
    p += 4 + (long)n;
    if (p > size) { fprintf(stderr, "%s: truncated\n", file); exit(2); }
  }
  req_off = malloc((nreq + 1) * sizeof(long));
  req_len = malloc((nreq + 1) * sizeof(uint32_t));
  lat_us = malloc((nreq + 1) * sizeof(double));
  long p = 0;
  for (long i = 0; i < nreq; i++) {
    uint32_t n = data[p] | data[p + 1] << 8 | data[p + 2] << 16 | (uint32_t)data[p + 3] << 24;
    req_off[i] = p + 4;
    req_len[i] = n;
    lat_us[i] = -1;
    p += 4 + (long)n;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: webhook-sender-native <host> <port> <senders> <requests file>\n"); return 2; }
  signal(SIGPIPE, SIG_IGN);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(argv[1], argv[2], &hints, &target);
  if (rc) { fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(rc)); return 2; }
  int threads = atoi(argv[3]);
  load(argv[4]);
  if (threads < 1) threads = 1;
  if (threads > nreq && nreq > 0) threads = (int)nreq;
  pthread_t *t = calloc(threads, sizeof(pthread_t));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);

  double cpu0 = cpu_seconds();
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  long long started_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
  double start = mono_us();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], &attr, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  double seconds = (mono_us() - start) / 1e6;
  double cpu = cpu_seconds() - cpu0;

  printf("{\"latenciesMs\":[");
  int first = 1;
  for (long i = 0; i < nreq; i++) {
    if (lat_us[i] < 0) continue;
    printf(first ? "%.3f" : ",%.3f", lat_us[i] / 1e3);
    first = 0;
  }
  printf("],\"seconds\":%.6f,\"failures\":%ld,\"startedAtEpochMs\":%lld,\"cpuSeconds\":%.6f}\n",
         seconds, (long)atomic_load(&failures), started_ms, cpu);
  return 0;
}
`;

const CFLAGS = ['-O2', '-pthread'];

let built: Promise<{ binary?: string; reason?: string }> | undefined;

/**
 * The compiled program, from os.tmpdir() when this source was built before;
 * `reason` instead when gcc is missing or fails.
 */
export function buildWebhookSender(): Promise<{ binary?: string; reason?: string }> {
  built ??= (async () => {
    const hash = createHash('sha256')
      .update(`${CFLAGS.join(' ')}\n${SOURCE}`)
      .digest('hex')
      .slice(0, 16);
    const dir = path.join(os.tmpdir(), `atlantic-webhook-sender-${hash}`);
    const binary = path.join(dir, 'webhook-sender-native');
    try {
      await access(binary, constants.X_OK);
      return { binary };
    } catch {
      // not built yet
    }
    await mkdir(dir, { recursive: true });
    const source = path.join(dir, `webhook-sender-native.${process.pid}.c`);
    const partial = `${binary}.${process.pid}`;
    await writeFile(source, SOURCE);
    try {
      await promisify(execFile)('gcc', [...CFLAGS, '-o', partial, source]);
      await rename(partial, binary);
      return { binary };
    } catch (error) {
      return { reason: `gcc failed or is missing: ${String(error).split('\n')[0]}` };
    }
  })();
  return built;
}

/**
 * Which sender webhooks.bench.ts runs: this native one when it builds, the Node
 * one (bench/webhook-sender.ts) with BENCH_NODE_SENDER=1 or without gcc.
 * `args` follow the job file on the command line; `description` is for the
 * bench's setup line.
 */
export async function chooseWebhookSender(): Promise<{
  script: string;
  args: string[];
  description: string;
}> {
  const node = (why: string) => ({
    script: 'bench/webhook-sender.ts',
    args: [],
    description: `Node fetch sender (${why})`,
  });
  if (process.env.BENCH_NODE_SENDER === '1') return node('BENCH_NODE_SENDER=1');
  const { binary, reason } = await buildWebhookSender();
  if (!binary) return node(reason ?? 'no native sender');
  return {
    script: 'bench/webhook-sender-native.ts',
    args: [binary],
    description: 'native C sender: one thread and one keep-alive connection each',
  };
}

interface Job {
  url: string;
  secretKey: string;
  senders: number;
  bodies: string[];
}

/** Every request in order, each a 4-byte little-endian length and the bytes. */
function requestsFile(job: Job): Buffer {
  const url = new URL(job.url);
  const target = `${url.pathname}${url.search}`;
  const parts: Buffer[] = [];
  for (const body of job.bodies) {
    const head =
      `POST ${target} HTTP/1.1\r\n` +
      `Host: ${url.host}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-paystack-signature: ${signPaystackBody(body, job.secretKey)}\r\n` +
      'Connection: keep-alive\r\n\r\n';
    const request = Buffer.from(head + body);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(request.length);
    parts.push(length, request);
  }
  return Buffer.concat(parts);
}

async function main(jobFile: string, prebuilt: string | undefined): Promise<void> {
  const job = JSON.parse(await readFile(jobFile, 'utf8')) as Job;
  const url = new URL(job.url);
  if (url.protocol !== 'http:') throw new Error(`the native sender speaks plain HTTP: ${job.url}`);
  const binary = prebuilt ?? (await buildWebhookSender()).binary;
  if (!binary) throw new Error((await buildWebhookSender()).reason);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-requests-'));
  const file = path.join(dir, 'requests.bin');
  await writeFile(file, requestsFile(job));
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port || '80';
  const child = spawn(binary, [host, port, String(job.senders), file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  await rm(dir, { recursive: true, force: true });
  const line = Buffer.concat(chunks).toString('utf8').trim();
  if (code !== 0 || !line) {
    throw new Error(`webhook-sender-native exited with ${code ?? signal}`);
  }
  process.stdout.write(`${line}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [jobFile, binary] = process.argv.slice(2);
  if (!jobFile) throw new Error('usage: webhook-sender-native.ts <job.json> [<binary>]');
  await main(jobFile, binary);
}
