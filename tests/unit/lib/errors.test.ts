import { describe, expect, it } from '@jest/globals';

import {
  DOMAIN_ERROR_CODES,
  DomainError,
  isDomainError,
  isDomainErrorCode,
} from '../../../lib/errors.js';

describe('DomainError', () => {
  it('carries a code, a message for people, the cause and details', () => {
    const cause = new Error('E11000 duplicate key');
    const error = new DomainError('CONFLICT', 'That email is already registered.', {
      cause,
      details: { field: 'email' },
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('DomainError');
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('That email is already registered.');
    expect(error.cause).toBe(cause);
    expect(error.details).toEqual({ field: 'email' });
    expect(error.stack).toContain('DomainError');
  });

  it('has no cause or details unless given', () => {
    const error = new DomainError('NOT_FOUND', 'No such plan.');
    expect(error.cause).toBeUndefined();
    expect(error.details).toBeUndefined();
    expect('cause' in error).toBe(false);
  });

  it('is recognised by isDomainError, optionally by code', () => {
    const error = new DomainError('RATE_LIMITED', 'Slow down.');
    expect(isDomainError(error)).toBe(true);
    expect(isDomainError(error, 'RATE_LIMITED')).toBe(true);
    expect(isDomainError(error, 'NOT_FOUND')).toBe(false);
    expect(isDomainError(error, ['NOT_FOUND', 'RATE_LIMITED'])).toBe(true);
    expect(isDomainError(new Error('plain'))).toBe(false);
    expect(isDomainError({ code: 'NOT_FOUND', message: 'fake' })).toBe(false);
  });

  it('lists the codes as a closed, duplicate-free list of UPPER_SNAKE names', () => {
    // The edges' tables (api/errors.ts) are kept complete by the compiler (`satisfies`).
    expect(new Set(DOMAIN_ERROR_CODES).size).toBe(DOMAIN_ERROR_CODES.length);
    for (const code of DOMAIN_ERROR_CODES) expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
    expect(isDomainErrorCode('FORBIDDEN')).toBe(true);
    expect(isDomainErrorCode('TEAPOT')).toBe(false);
  });
});
