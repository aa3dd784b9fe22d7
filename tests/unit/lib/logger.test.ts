import { describe, expect, it } from '@jest/globals';

import { REDACTED, createLogger } from '../../../lib/logger.js';
import type { LogLevel } from '../../../lib/logger.js';

function capture(level: LogLevel = 'info', pretty = false) {
  const lines: string[] = [];
  const logger = createLogger({
    level,
    pretty,
    destination: { write: (line) => lines.push(line) },
  });
  return { logger, lines, output: () => lines.join('') };
}

const SECRET = 'hunter2-s3cr3t-value';

describe('createLogger', () => {
  it('writes JSON records at or above its level', () => {
    const { logger, lines } = capture('info');
    logger.debug('hidden');
    logger.info({ userId: 'u1' }, 'signed up');
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(record).toMatchObject({ level: 30, msg: 'signed up', userId: 'u1' });
    expect(typeof record.time).toBe('string');
  });

  it('keeps secrets out of records at any reasonable depth', () => {
    const { logger, output } = capture();
    logger.info(
      {
        password: SECRET,
        token: SECRET,
        user: { password: SECRET, proxySecret: SECRET },
        paystack: { secretKey: SECRET, data: { authorization: { authorization_code: SECRET } } },
        payment: { card: { pan: SECRET }, cvv: SECRET },
        config: { telegram: { token: SECRET } },
        env: { JWT_SECRET: SECRET },
      },
      'many secrets',
    );
    expect(output()).not.toContain(SECRET);
    expect(output()).toContain(REDACTED);
  });

  it("keeps secrets in a child logger's bindings out of records", () => {
    const { logger, output } = capture();
    logger.child({ botToken: SECRET, session: { accessToken: SECRET } }).info('child record');
    logger
      .child({ module: 'bot' })
      .child({ password: SECRET }, { level: 'debug' })
      .debug('grandchild record');
    expect(output()).toContain('child record');
    expect(output()).toContain('grandchild record');
    expect(output()).not.toContain(SECRET);
  });

  it('keeps authorization, proxy-authorization and cookie headers out', () => {
    const { logger, output } = capture();
    logger.info(
      {
        req: {
          method: 'GET',
          headers: {
            authorization: `Bearer ${SECRET}`,
            'proxy-authorization': `Basic ${SECRET}`,
            cookie: `sid=${SECRET}`,
            'x-paystack-signature': SECRET,
            'user-agent': 'curl/8',
          },
        },
        res: { headers: { 'set-cookie': `sid=${SECRET}` } },
      },
      'request',
    );
    expect(output()).not.toContain(SECRET);
    expect(output()).toContain('curl/8');
  });

  it('censors secret keys whatever their case or separator, and leaves the input untouched', () => {
    const { logger, output } = capture();
    const input = { Secret_Key: SECRET, 'X-API-KEY': SECRET, items: [{ PASSWORD: SECRET }] };
    logger.info(input, 'variants');
    expect(output()).not.toContain(SECRET);
    expect(input.Secret_Key).toBe(SECRET);
    expect(input.items[0]?.PASSWORD).toBe(SECRET);
  });

  it('censors headers that a serializer produces after the formatters ran', () => {
    class IncomingRequest {
      constructor(readonly rawHeaders: Record<string, string>) {}
    }
    const { logger, output } = capture();
    const child = logger.child(
      {},
      {
        serializers: {
          req: (req: IncomingRequest) => ({ method: 'GET', headers: { ...req.rawHeaders } }),
        },
      },
    );
    child.info(
      { req: new IncomingRequest({ authorization: `Bearer ${SECRET}`, host: 'api.test' }) },
      'served',
    );
    expect(output()).toContain('api.test');
    expect(output()).not.toContain(SECRET);
  });

  it('pretty mode prints one readable line, still redacted', () => {
    const { logger, lines } = capture('info', true);
    logger.child({ module: 'api' }).warn({ password: SECRET, port: 3000 }, 'listening');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} WARN {2}\[api\] listening \{.*"port":3000/);
    expect(lines[0]).not.toContain(SECRET);
  });
});
