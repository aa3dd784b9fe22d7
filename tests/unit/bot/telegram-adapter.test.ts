/**
 * The Telegram adapter's own small rules: long texts split for Telegram's
 * 4,096 characters, the per-user rate limit, and the once-a-minute check.
 */
import { describe, expect, it } from '@jest/globals';
import {
  EveryFor,
  MAX_MESSAGE_LENGTH,
  splitText,
  UserRateLimiter,
} from '../../../bot/telegram/bot.js';

describe('splitText', () => {
  it('keeps a short text whole', () => {
    expect(splitText('hello\nworld')).toEqual(['hello\nworld']);
  });

  it('splits at line breaks, every part within the limit, nothing lost', () => {
    const lines = Array.from({ length: 400 }, (_, i) => `line ${i} ${'x'.repeat(20)}`);
    const text = lines.join('\n');
    const parts = splitText(text);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
    expect(parts.join('\n')).toBe(text);
  });

  it('cuts a single line longer than the limit', () => {
    const parts = splitText('y'.repeat(10), 4);
    expect(parts).toEqual(['yyyy', 'yyyy', 'yy']);
  });
});

describe('UserRateLimiter', () => {
  it('lets the allowance through, warns once, then drops until the window ends', () => {
    const limiter = new UserRateLimiter({ updates: 3, windowMs: 10_000 });
    const verdicts = Array.from({ length: 6 }, () => limiter.hit(1, 1_000));
    expect(verdicts).toEqual(['pass', 'pass', 'pass', 'warn', 'drop', 'drop']);
    // Another user is not affected; the next window starts afresh.
    expect(limiter.hit(2, 1_000)).toBe('pass');
    expect(limiter.hit(1, 11_000)).toBe('pass');
  });
});

describe('EveryFor', () => {
  it('says yes at most once per interval per key', () => {
    const every = new EveryFor(60_000);
    expect(every.due(7, 0)).toBe(true);
    expect(every.due(7, 59_999)).toBe(false);
    expect(every.due(8, 59_999)).toBe(true);
    expect(every.due(7, 60_000)).toBe(true);
  });
});
