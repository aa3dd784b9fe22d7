/**
 * A customer's traffic for the business test: a local download server (the
 * "website"), and real proxy clients through the gateway: an HTTP CONNECT
 * tunnel (node:http's own CONNECT client) and a SOCKS5 tunnel (the `socks`
 * package). Everything listens on port 0 and every wait is on a socket event.
 *
 * The download server reads one line per request, a byte count, and answers
 * with that many bytes; so one tunnel can download in steps, and a tunnel cut
 * by the gateway shows up as a socket that closes before its bytes arrived.
 */
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { SocksClient } from 'socks';

export interface DownloadServer {
  port: number;
  close(): Promise<void>;
}

export async function startDownloadServer(): Promise<DownloadServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const bytes = Number(pending.slice(0, end));
        pending = pending.slice(end + 1);
        if (Number.isSafeInteger(bytes) && bytes > 0) socket.write(Buffer.alloc(bytes, 0x61));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ProxyLogin {
  username: string;
  password: string;
}

/** What the gateway answered a tunnel request with. */
export type TunnelAnswer =
  { ok: true; tunnel: Tunnel } | { ok: false; status: number; body: string };

/** An open tunnel to the download server. */
export class Tunnel {
  private received = 0;
  private waiters: { bytes: number; resolve: (got: number) => void }[] = [];
  readonly closed: Promise<number>;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.waiters = this.waiters.filter((waiter) => {
        if (this.received < waiter.bytes) return true;
        waiter.resolve(this.received);
        return false;
      });
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(this.received)));
  }

  /** Bytes received through the tunnel so far. */
  get receivedBytes(): number {
    return this.received;
  }

  /**
   * Asks for `bytes` more and resolves with the total received once they
   * arrived, or with what arrived when the gateway closed the tunnel first.
   */
  download(bytes: number): Promise<number> {
    const target = this.received + bytes;
    const arrived = new Promise<number>((resolve) => this.waiters.push({ bytes: target, resolve }));
    this.socket.write(`${bytes}\n`);
    return Promise.race([arrived, this.closed]);
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.destroy();
    await this.closed;
  }
}

/** Opens an HTTPS-style tunnel with `CONNECT host:port` through the gateway's HTTP proxy. */
export async function connectTunnel(
  proxyPort: number,
  login: ProxyLogin,
  targetPort: number,
): Promise<TunnelAnswer> {
  const request = httpRequest({
    host: '127.0.0.1',
    port: proxyPort,
    method: 'CONNECT',
    path: `127.0.0.1:${targetPort}`,
    agent: false,
    headers: {
      'proxy-authorization': `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}`,
    },
  });
  request.end();
  // Node's client treats every answer to CONNECT as an upgrade: 'connect' comes for a 403 too.
  const [response, socket, head] = (await once(request, 'connect')) as [
    { statusCode?: number },
    Socket,
    Buffer,
  ];
  if (response.statusCode === 200) return { ok: true, tunnel: new Tunnel(socket) };
  const chunks: Buffer[] = [head];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  if (!socket.destroyed) await once(socket, 'close');
  return {
    ok: false,
    status: response.statusCode ?? 0,
    body: Buffer.concat(chunks).toString('utf8'),
  };
}

/** Opens a SOCKS5 tunnel through the gateway; rejects with the client's error when refused. */
export async function socksTunnel(
  socksPort: number,
  login: ProxyLogin,
  targetPort: number,
): Promise<Tunnel> {
  const { socket } = await SocksClient.createConnection({
    proxy: {
      host: '127.0.0.1',
      port: socksPort,
      type: 5,
      userId: login.username,
      password: login.password,
    },
    command: 'connect',
    destination: { host: '127.0.0.1', port: targetPort },
    timeout: 5_000,
  });
  return new Tunnel(socket);
}
