/**
 * The native half of the gateway benchmark: a small C program, compiled with
 * gcc when the bench starts, that plays every role where a Node process would
 * be the bottleneck (LIBRARIES.md: Node load generators are 2-3x slower than a
 * C client, which would hide the differences between the proxies):
 *
 *   gateway-native echo                     tiny echo target: reads once, echoes, closes
 *   gateway-native source <bytes>           bulk target: writes <bytes> from a 1 MiB buffer, closes
 *   gateway-native rate <proxyPort> <targetPort> <credsFile> <threads> <ms>
 *        short tunnels in <threads> blocking loops (one thread per concurrent
 *        connection): SOCKS5 greeting, RFC 1929 auth, CONNECT 127.0.0.1,
 *        1 byte out, 1 byte back, read to EOF, close; per-tunnel latency
 *   gateway-native bulk <proxyPort> <targetPort> <credsFile>
 *        one tunnel to the source, read to EOF into a reused 256 KiB buffer
 *   gateway-native idle <proxyPort> <credsFile> <tunnels>
 *        holds its own target listener, opens <tunnels> tunnels to it one at
 *        a time, prints, then keeps them open until stdin closes
 *
 * Servers print `{"port":N}` once listening; clients print one JSON line.
 * `credsFile` holds `user<TAB>password` lines (used round robin); an empty
 * file means no authentication (SOCKS method 0).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct { char user[256]; char pass[256]; } cred_t;
static cred_t *creds;
static int ncreds;
static int proxy_port, target_port;
static double deadline_us;
static long long source_bytes;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int read_full(int fd, unsigned char *buf, int n) {
  int got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (int)r;
  }
  return 0;
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

static void load_creds(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) { perror(file); exit(2); }
  int cap = 16;
  creds = calloc(cap, sizeof(cred_t));
  char line[600];
  while (fgets(line, sizeof line, f)) {
    char *tab = strchr(line, '\t');
    if (!tab) continue;
    *tab = 0;
    char *pass = tab + 1;
    pass[strcspn(pass, "\r\n")] = 0;
    if (ncreds == cap) { cap *= 2; creds = realloc(creds, cap * sizeof(cred_t)); }
    snprintf(creds[ncreds].user, 256, "%s", line);
    snprintf(creds[ncreds].pass, 256, "%s", pass);
    ncreds++;
  }
  fclose(f);
}

/* A SOCKS5 tunnel through the proxy to 127.0.0.1:port, or -1. */
static int socks_open(int cred, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(proxy_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  unsigned char buf[600];
  int method = ncreds > 0 ? 2 : 0;
  buf[0] = 5; buf[1] = 1; buf[2] = (unsigned char)method;
  if (write_full(fd, buf, 3) || read_full(fd, buf, 2) || buf[0] != 5 || buf[1] != method) goto fail;
  if (method == 2) {
    cred_t *c = &creds[cred % ncreds];
    int ul = (int)strlen(c->user), pl = (int)strlen(c->pass), n = 0;
    buf[n++] = 1; buf[n++] = (unsigned char)ul; memcpy(buf + n, c->user, ul); n += ul;
    buf[n++] = (unsigned char)pl; memcpy(buf + n, c->pass, pl); n += pl;
    if (write_full(fd, buf, n) || read_full(fd, buf, 2) || buf[1] != 0) goto fail;
  }
  unsigned char req[10] = {5, 1, 0, 1, 127, 0, 0, 1, (unsigned char)(port >> 8), (unsigned char)(port & 255)};
  if (write_full(fd, req, 10) || read_full(fd, buf, 4) || buf[1] != 0) goto fail;
  int rest = buf[3] == 1 ? 6 : buf[3] == 4 ? 18 : -1;
  if (buf[3] == 3) { if (read_full(fd, buf, 1)) goto fail; rest = buf[0] + 2; }
  if (rest < 0 || read_full(fd, buf, rest)) goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

static int listen_any(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096)) { perror("listen"); exit(2); }
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return fd;
}

static int port_of(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

static void *echo_worker(void *arg) {
  int lfd = *(int *)arg;
  unsigned char buf[4096];
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r > 0) write_full(fd, buf, r);
    close(fd);
  }
  return NULL;
}

static void *source_worker(void *arg) {
  int lfd = *(int *)arg;
  long block = 1 << 20;
  unsigned char *buf = malloc(block);
  for (long i = 0; i < block; i++) buf[i] = (unsigned char)(i % 251);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    long long left = source_bytes;
    while (left > 0) {
      long n = left < block ? (long)left : block;
      if (write_full(fd, buf, n)) break;
      left -= n;
    }
    close(fd);
  }
  return NULL;
}

static void serve(void *(*worker)(void *), int threads) {
  static int lfd;
  lfd = listen_any();
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_create(&t, &attr, worker, &lfd);
  }
  printf("{\"port\":%d}\n", port_of(lfd));
  fflush(stdout);
  for (;;) pause();
}

typedef struct { int index, step; double *lat; long n, cap, errors; } worker_t;

static void *rate_worker(void *arg) {
  worker_t *w = arg;
  unsigned char buf[64];
  long k = w->index;
  while (now_us() < deadline_us) {
    double t0 = now_us();
    int fd = socks_open((int)(k % (ncreds > 0 ? ncreds : 1)), target_port);
    k += w->step;
    if (fd < 0) { w->errors++; continue; }
    buf[0] = 'x';
    int ok = write_full(fd, buf, 1) == 0 && read_full(fd, buf, 1) == 0 && buf[0] == 'x';
    while (ok && read(fd, buf, sizeof buf) > 0) {}
    close(fd);
    if (!ok) { w->errors++; continue; }
    if (w->n == w->cap) { w->cap = w->cap ? w->cap * 2 : 4096; w->lat = realloc(w->lat, w->cap * sizeof(double)); }
    w->lat[w->n++] = now_us() - t0;
  }
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void rate(int threads, int ms) {
  worker_t *w = calloc(threads, sizeof(worker_t));
  pthread_t *t = calloc(threads, sizeof(pthread_t));
  double start = now_us();
  deadline_us = start + ms * 1000.0;
  for (int i = 0; i < threads; i++) {
    w[i].index = i; w[i].step = threads;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_create(&t[i], &attr, rate_worker, &w[i]);
  }
  long total = 0, errors = 0;
  for (int i = 0; i < threads; i++) { pthread_join(t[i], NULL); total += w[i].n; errors += w[i].errors; }
  double seconds = (now_us() - start) / 1e6;
  double *all = malloc((total + 1) * sizeof(double));
  long n = 0;
  for (int i = 0; i < threads; i++) { memcpy(all + n, w[i].lat, w[i].n * sizeof(double)); n += w[i].n; }
  qsort(all, n, sizeof(double), cmp_double);
  double p50 = n ? all[(long)(n * 0.5)] : 0, p99 = n ? all[(long)(n * 0.99)] : 0;
  printf("{\"count\":%ld,\"errors\":%ld,\"seconds\":%.6f,\"p50us\":%.1f,\"p99us\":%.1f}\n", total, errors, seconds, p50, p99);
}

static void bulk(void) {
  double t0 = now_us();
  int fd = socks_open(0, target_port);
  if (fd < 0) { printf("{\"error\":\"tunnel refused\"}\n"); return; }
  double t1 = now_us();
  long size = 256 * 1024;
  unsigned char *buf = malloc(size);
  long long bytes = 0;
  for (;;) {
    ssize_t r = read(fd, buf, size);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    bytes += r;
  }
  double t2 = now_us();
  close(fd);
  printf("{\"bytes\":%lld,\"seconds\":%.6f,\"handshakeSeconds\":%.6f}\n", bytes, (t2 - t1) / 1e6, (t1 - t0) / 1e6);
}

static void *hold_worker(void *arg) {
  int lfd = *(int *)arg;
  for (;;) { int fd = accept(lfd, NULL, NULL); (void)fd; }
  return NULL;
}

static void idle(int tunnels) {
  static int lfd;
  lfd = listen_any();
  pthread_t t;
  pthread_create(&t, NULL, hold_worker, &lfd);
  int port = port_of(lfd), opened = 0, errors = 0;
  for (int i = 0; i < tunnels; i++) {
    int fd = socks_open(i, port);
    if (fd < 0) errors++; else opened++;
  }
  printf("{\"opened\":%d,\"errors\":%d}\n", opened, errors);
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {}
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "echo")) serve(echo_worker, 256);
  if (argc >= 3 && !strcmp(argv[1], "source")) { source_bytes = atoll(argv[2]); serve(source_worker, 4); }
  if (argc >= 7 && !strcmp(argv[1], "rate")) {
    proxy_port = atoi(argv[2]); target_port = atoi(argv[3]); load_creds(argv[4]);
    rate(atoi(argv[5]), atoi(argv[6]));
    return 0;
  }
  if (argc >= 5 && !strcmp(argv[1], "bulk")) {
    proxy_port = atoi(argv[2]); target_port = atoi(argv[3]); load_creds(argv[4]);
    bulk();
    return 0;
  }
  if (argc >= 5 && !strcmp(argv[1], "idle")) {
    proxy_port = atoi(argv[2]); load_creds(argv[3]);
    idle(atoi(argv[4]));
    return 0;
  }
  fprintf(stderr, "usage: see bench/gateway-native.ts\n");
  return 2;
}
`;

export interface RateResult {
  count: number;
  errors: number;
  seconds: number;
  p50us: number;
  p99us: number;
}

export interface BulkResult {
  bytes: number;
  seconds: number;
  handshakeSeconds: number;
  error?: string;
}

export interface IdleResult {
  opened: number;
  errors: number;
}

/** Compiles the program into a temp dir; undefined (with the reason) without gcc. */
export async function buildNative(): Promise<{ binary?: string; reason?: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-native-'));
  const source = path.join(dir, 'gateway-native.c');
  const binary = path.join(dir, 'gateway-native');
  await writeFile(source, SOURCE);
  try {
    await promisify(execFile)('gcc', ['-O2', '-pthread', '-o', binary, source]);
    return { binary };
  } catch (error) {
    return { reason: `gcc failed or is missing: ${String(error).split('\n')[0]}` };
  }
}

/** Writes a credentials file for the native client (`user<TAB>password` lines). */
export async function writeCredentials(
  dir: string,
  name: string,
  credentials: readonly { username: string; password: string }[],
): Promise<string> {
  const file = path.join(dir, `${name}.creds`);
  await writeFile(file, credentials.map((c) => `${c.username}\t${c.password}\n`).join(''));
  return file;
}
