/**
 * What the auth tests share: requests from a chosen loopback address (so
 * per-IP limits can be reached, and kept apart, over real HTTP), form posts
 * to the account pages, and reading codes and links out of captured mail.
 */
import http from 'node:http';
import type { ApiHarness } from '../../support/api.js';
import type { CapturedMail } from '../../support/smtp-capture.js';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

export interface RequestOptions {
  token?: string;
  json?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

let lastOctet = 1;

/** A loopback address of its own (127.0.0.2, .3, ...): every one is a different client IP to the app. */
export function freshIp(): string {
  lastOctet += 1;
  if (lastOctet > 254) throw new Error('out of loopback addresses for this file');
  return `127.0.0.${lastOctet}`;
}

/**
 * A request from `ip` to the app. Paths starting `/account/` or `/api/` are
 * taken as they are; others are under /api/v1.
 */
export function requestFrom(
  api: ApiHarness,
  ip: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Answer> {
  const url = new URL(
    path.startsWith('/account/') || path.startsWith('/api/') ? path : `/api/v1${path}`,
    api.base,
  );
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | undefined;
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) {
    payload = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  } else if (options.form) {
    payload = new URLSearchParams(options.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: method.toUpperCase(),
        headers,
        localAddress: ip,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = (res.headers['content-type'] ?? '').includes('application/json');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            body: isJson ? JSON.parse(text) : text,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A client at one IP address of its own. */
export function client(api: ApiHarness, ip = freshIp()) {
  return {
    ip,
    call: (method: string, path: string, options?: RequestOptions) =>
      requestFrom(api, ip, method, path, options),
  };
}

let addresses = 0;

/** A fresh address; `local` must not appear in the passwords tests use. */
export function newAddress(local = 'auth'): string {
  addresses += 1;
  return `${local}${addresses}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** A password that passes every rule for the addresses newAddress makes. */
export const GOOD_PASSWORD = 'violet harbour 1987';

export function codeIn(mail: CapturedMail): string {
  const code = /verification code is (\d{6})/.exec(mail.text)?.[1];
  if (!code) throw new Error(`no code in: ${mail.text}`);
  return code;
}

/** The link to one of our pages in a mail or a chat text. */
export function linkIn(text: string, page: 'verify-email' | 'reset-password'): URL {
  const found = new RegExp(`(http://atlantic\\.test/account/${page}\\?token=[\\w%-]+)`).exec(text);
  if (!found?.[1]) throw new Error(`no ${page} link in: ${text}`);
  return new URL(found[1]);
}

/** `/account/<page>?token=...` of a link, for requests to the app under test. */
export function pathOf(link: URL): string {
  return `${link.pathname}${link.search}`;
}

/** The error body without its request id, to compare two refusals. */
export function refusalOf(answer: Answer): unknown {
  const { requestId: _requestId, ...rest } = (answer.body as { error: Record<string, unknown> })
    .error;
  return { status: answer.status, ...rest };
}
