import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  FakeAccess,
  RawClient,
  curl,
  hasCommand,
  selfSignedCertificate,
  startGateway,
  startHttpTarget,
  startHttpsTarget,
  type HttpTarget,
  type StartedGateway,
} from '../../../support/proxy-wire.js';

const access = new FakeAccess()
  .addUser('alice', { password: 's3cret' })
  .addUser('starter', {
    password: 'pw',
    refusal: {
      ok: false,
      kind: 'entitlement',
      code: 'PROTOCOL_NOT_ALLOWED',
      message: 'Upgrade to PAYG for all protocols',
    },
  })
  .addUser('hammer', {
    password: 'pw',
    refusal: { ok: false, kind: 'rate_limited', code: 'TOO_MANY_ATTEMPTS', message: 'Slow down' },
  });
const aliceAuth = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
let gw: StartedGateway;
let web: HttpTarget;
let secure: HttpTarget | undefined;
const certificate = selfSignedCertificate();
const haveCurl = hasCommand('curl');

beforeAll(async () => {
  gw = await startGateway(access);
  web = await startHttpTarget();
  if (certificate) secure = await startHttpsTarget(certificate);
});

afterAll(async () => {
  await gw.stop();
  await web.close();
  await secure?.close();
});

/** Sends a raw request head to the HTTP proxy and returns everything it answers before closing. */
async function rawExchange(request: string): Promise<string> {
  const client = await RawClient.connect(gw.httpPort);
  client.write(request);
  return (await client.ended).toString('latin1');
}

describe('HTTP CONNECT', () => {
  it('tunnels TLS to an HTTPS target (curl through CONNECT)', async () => {
    if (!haveCurl || !secure) return;
    const result = await curl([
      '--proxy',
      `http://127.0.0.1:${gw.httpPort}`,
      '--proxy-user',
      'alice:s3cret',
      '--insecure',
      `https://localhost:${secure.port}/secret-path`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello from target: GET /secret-path 0');
    expect(access.requests.at(-1)).toMatchObject({
      protocol: 'https',
      host: 'localhost',
      port: secure.port,
    });
  });

  it('answers 200 and relays bytes the client sent with its CONNECT', async () => {
    const grant = access.nextGrant();
    const client = await RawClient.connect(gw.httpPort);
    client.write(
      `CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\nProxy-Authorization: ${aliceAuth}\r\n\r\n` +
        `GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    const answer = (await client.ended).toString();
    expect(answer.startsWith('HTTP/1.1 200 Connection Established\r\n\r\nHTTP/1.1 200 OK')).toBe(
      true,
    );
    expect(answer.endsWith('hello from target: GET /early 0')).toBe(true);
    const granted = await grant;
    await granted.closed;
    const tunnelled =
      Buffer.byteLength(answer) - 'HTTP/1.1 200 Connection Established\r\n\r\n'.length;
    const sent = `GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`.length;
    expect(granted.allowedBytes).toBe(tunnelled + sent);
  });

  it('answers 407 with Proxy-Authenticate when credentials are missing or wrong', async () => {
    const missing = await rawExchange(`CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\n\r\n`);
    expect(missing).toMatch(/^HTTP\/1\.1 407 /);
    expect(missing).toContain('Proxy-Authenticate: Basic realm="Atlantic"');
    const wrong = await rawExchange(
      `CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('alice:nope').toString('base64')}\r\n\r\n`,
    );
    expect(wrong).toMatch(/^HTTP\/1\.1 407 /);
    expect(wrong).toContain('BAD_CREDENTIALS');
  });

  it('answers 403 naming the reason for an entitlement refusal', async () => {
    const answer = await rawExchange(
      `CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('starter:pw').toString('base64')}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('PROTOCOL_NOT_ALLOWED: Upgrade to PAYG for all protocols');
  });

  it('answers 429 when the controller rate-limits', async () => {
    const answer = await rawExchange(
      `CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('hammer:pw').toString('base64')}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
  });

  it('answers 502 when the target refuses the connection', async () => {
    const closed = await startHttpTarget();
    await closed.close();
    const answer = await rawExchange(
      `CONNECT 127.0.0.1:${closed.port} HTTP/1.1\r\nProxy-Authorization: ${aliceAuth}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toContain('CONNECTION_REFUSED');
  });

  it('answers 400 to a CONNECT without a port', async () => {
    const answer = await rawExchange(
      `CONNECT example.com HTTP/1.1\r\nProxy-Authorization: ${aliceAuth}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe('plain HTTP forwarding', () => {
  it('forwards an absolute-URI request without proxy or hop-by-hop headers (curl -x)', async () => {
    if (!haveCurl) return;
    const result = await curl([
      '-x',
      `http://127.0.0.1:${gw.httpPort}`,
      '--proxy-user',
      'alice:s3cret',
      '-H',
      'Keep-Alive: timeout=5',
      `http://127.0.0.1:${web.port}/plain?q=1`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello from target: GET /plain?q=1 0');
    const seen = web.requests.at(-1);
    expect(seen?.url).toBe('/plain?q=1');
    expect(seen?.headers['proxy-authorization']).toBeUndefined();
    expect(seen?.headers['proxy-connection']).toBeUndefined();
    expect(seen?.headers['keep-alive']).toBeUndefined();
    expect(seen?.headers.connection).toBe('close');
  });

  it('bills the request and the response as relayed, byte for byte', async () => {
    const grant = access.nextGrant();
    const answer = await rawExchange(
      `POST http://127.0.0.1:${web.port}/upload HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\n` +
        `Proxy-Authorization: ${aliceAuth}\r\nContent-Length: 5\r\n\r\nhello`,
    );
    expect(answer.endsWith('hello from target: POST /upload 5')).toBe(true);
    const granted = await grant;
    await granted.closed;
    const forwardedHead = `POST /upload HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\nContent-Length: 5\r\nConnection: close\r\n\r\n`;
    expect(granted.allowedBytes).toBe(forwardedHead.length + 5 + Buffer.byteLength(answer));
  });

  it('re-frames a chunked request body for the target', async () => {
    const answer = await rawExchange(
      `POST http://127.0.0.1:${web.port}/chunked HTTP/1.1\r\nHost: t\r\nProxy-Authorization: ${aliceAuth}\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n`,
    );
    expect(answer).toContain('hello from target: POST /chunked 7');
    expect(web.requests.at(-1)?.body).toBe('abcdefg');
  });

  it('answers 407 to a plain request without credentials', async () => {
    const answer = await rawExchange(
      `GET http://127.0.0.1:${web.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 407 /);
    expect(answer.toLowerCase()).toContain('proxy-authenticate: basic realm="atlantic"');
  });

  it('answers 403 with the reason to a refused plain request', async () => {
    const answer = await rawExchange(
      `GET http://127.0.0.1:${web.port}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${Buffer.from('starter:pw').toString('base64')}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('PROTOCOL_NOT_ALLOWED');
  });

  it('answers 400 to an origin-form request (not a proxy request)', async () => {
    const answer = await rawExchange(`GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });
});

describe('HTTP handshake limits', () => {
  it('answers 431 to a request head over 16 KiB', async () => {
    const answer = await rawExchange(
      `CONNECT 127.0.0.1:${web.port} HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('answers 400 to garbage', async () => {
    const answer = await rawExchange('\x16\x03\x01\x02\x00 not http at all\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('answers 408 when the head does not arrive within the handshake timeout', async () => {
    const slow = await startGateway(access, { timeouts: { handshakeMs: 50 } });
    const client = await RawClient.connect(slow.httpPort);
    client.write('CONNECT 127.0.0.1:1 HTTP/1.1\r\n');
    expect((await client.ended).toString()).toMatch(/^HTTP\/1\.1 408 /);
    await slow.stop();
  });
});
