/**
 * The Express app: health, readiness, metrics, and the JSON error contract every
 * later route follows — `{ error: { code, message, requestId } }` with a status
 * from one table the compiler keeps complete (api/errors.ts).
 */
import express, { type ErrorRequestHandler, type Request, type RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { newRequestId } from '../lib/ids.js';
import { redactSecrets } from '../lib/logger.js';
import { errorResponse } from './errors.js';

export interface AppOptions {
  logger: Logger;
  metrics: Registry;
  /** Resolves when the database answers a ping; rejects otherwise. */
  pingDatabase: () => Promise<void>;
  /** Largest JSON body accepted, in bytes. Default 100 KB. */
  bodyLimitBytes?: number;
  /** How long /readyz waits for the database before answering 503. Default 2000 ms. */
  readinessTimeoutMs?: number;
  /**
   * Mounts the feature routers before the 404 handler. JSON bodies are parsed for
   * `/api` only; other routes (the Paystack webhook needs the raw bytes) parse their own.
   */
  mountRoutes?: (app: express.Express) => void;
  /** Reverse proxies in front of the app, for `req.ip`. Default 0. */
  trustProxy?: number;
}

/** A client's own request id is kept when it is short and plain; otherwise we make one. */
const clientRequestId = /^[A-Za-z0-9._-]{1,64}$/;

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', options.trustProxy ?? 0);

  // Server-to-server calls (Paystack's webhooks) skip the browser security
  // headers and the per-request access log: the sender reads neither, and at
  // hundreds of events a second the log line and the headers cost more than
  // storing the event. Their routes log refusals and outcomes themselves.
  const forBrowsersAndPeople = (middleware: express.RequestHandler): express.RequestHandler =>
    function unlessServerToServer(req, res, next) {
      if (req.path.startsWith('/webhooks/')) {
        next();
        return;
      }
      middleware(req, res, next);
    };

  app.use(forBrowsersAndPeople(helmet()));
  app.use(
    forBrowsersAndPeople(
      pinoHttp({
        logger: options.logger,
        genReqId: (req, res) => {
          const given = req.headers['x-request-id'];
          const id =
            typeof given === 'string' && clientRequestId.test(given) ? given : newRequestId();
          res.setHeader('x-request-id', id);
          return id;
        },
        // Health probes and scrapes every few seconds would drown the log.
        autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
        // Links in mail carry single-use secrets in the query (?token=): never log them.
        serializers: {
          req: (req: { url?: string; query?: unknown }) => ({
            ...req,
            url: redactUrlSecrets(req.url),
            query: redactSecrets(req.query),
          }),
        },
      }),
    ),
  );
  app.use(requestDuration(options.metrics));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (req, res) => {
    try {
      await withTimeout(options.pingDatabase(), options.readinessTimeoutMs ?? 2_000);
      res.json({ status: 'ready', checks: { database: 'up' } });
    } catch (err) {
      req.log.warn({ err }, 'readyz.database_down');
      res.status(503).json({ status: 'unavailable', checks: { database: 'down' } });
    }
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', options.metrics.contentType);
    res.send(await options.metrics.metrics());
  });

  app.use('/api', express.json({ limit: options.bodyLimitBytes ?? 100_000 }));
  options.mountRoutes?.(app);

  app.use((req, res) => {
    const { status, body } = errorResponse(
      { code: 'NOT_FOUND', message: `No route for ${req.method} ${req.path}.` },
      requestIdOf(req),
    );
    res.status(status).json(body);
  });

  app.use(errorHandler);
  return app;
}

/** `/account/reset-password?token=[redacted]`: the path and harmless parameters stay readable. */
export function redactUrlSecrets(url: string | undefined): string | undefined {
  return url?.replace(/([?&](?:token|code)=)[^&#]*/gi, '$1[redacted]');
}

export function requestIdOf(req: Request): string {
  // genReqId above always returns a string; pino-http types it more widely.
  if (typeof req.id === 'string') return req.id;
  // Server-to-server routes skip pino-http: their errors still get an id.
  return req.id === undefined ? newRequestId() : JSON.stringify(req.id);
}

const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const { status, body, isUnexpected } = errorResponse(err, requestIdOf(req));
  if (isUnexpected) req.log.error({ err }, 'request.failed');
  if (res.headersSent) return;
  res.status(status).json(body);
};

/** Rejects when `promise` has not settled within `ms`, so a probe never hangs on a dead database. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function requestDuration(registry: Registry): RequestHandler {
  const histogram = new Histogram({
    name: 'atlantic_http_request_duration_seconds',
    help: 'HTTP requests served by the api role, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (req, res, next) => {
    const end = histogram.startTimer();
    res.on('finish', () => {
      // The matched route pattern keeps label cardinality bounded; unmatched paths share one label.
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}
