import { describe, expect, it } from '@jest/globals';
import { parseProxyUsername } from '../../core/proxy-credentials.js';

function refusedWith(raw: string): string {
  const parsed = parseProxyUsername(raw);
  if (parsed.ok) throw new Error(`expected "${raw}" to be refused`);
  return parsed.message;
}

describe('proxy username options', () => {
  it('takes a plain username with no options', () => {
    expect(parseProxyUsername('alice')).toEqual({
      ok: true,
      username: 'alice',
      location: null,
      sessionId: null,
    });
  });

  it('reads a location', () => {
    expect(parseProxyUsername('alice-country-ng')).toEqual({
      ok: true,
      username: 'alice',
      location: 'ng',
      sessionId: null,
    });
  });

  it('reads a location and a sticky session, in either order', () => {
    const expected = { ok: true, username: 'alice', location: 'ng', sessionId: 'ab12' };
    expect(parseProxyUsername('alice-country-ng-session-ab12')).toEqual(expected);
    expect(parseProxyUsername('alice-session-ab12-country-ng')).toEqual(expected);
  });

  it('reads a session without a location (any location the plan allows)', () => {
    expect(parseProxyUsername('alice-session-x1')).toEqual({
      ok: true,
      username: 'alice',
      location: null,
      sessionId: 'x1',
    });
  });

  it('accepts location codes longer than a country code (a city pool such as de2)', () => {
    expect(parseProxyUsername('alice-country-de2')).toMatchObject({ ok: true, location: 'de2' });
  });

  it('ignores case, as clients and people type it', () => {
    expect(parseProxyUsername('Alice-COUNTRY-NG-Session-AB12')).toEqual({
      ok: true,
      username: 'alice',
      location: 'ng',
      sessionId: 'ab12',
    });
  });

  it('refuses an unknown option by name, so a typo is not silently ignored', () => {
    expect(refusedWith('alice-city-lagos')).toContain('"city"');
    expect(refusedWith('alice-contry-ng')).toContain('"contry"');
  });

  it('refuses an option without a value, a value without an option, and an option twice', () => {
    expect(refusedWith('alice-country')).toContain('pairs');
    expect(refusedWith('alice-country-ng-ab12')).toContain('pairs');
    expect(refusedWith('alice-country-ng-country-gb')).toContain('twice');
    expect(refusedWith('alice-session-a-session-b')).toContain('twice');
  });

  it('refuses empty parts and values that are not letters and digits', () => {
    expect(refusedWith('alice--country-ng')).toBeTruthy();
    expect(refusedWith('alice-country-')).toContain('not valid');
    expect(refusedWith('alice-country-n_g')).toContain('not valid');
    expect(refusedWith('alice-session-ab.12')).toContain('not valid');
    // A location code starts with a letter and has at least two characters.
    expect(refusedWith('alice-country-1ng')).toContain('not valid');
    expect(refusedWith('alice-country-n')).toContain('not valid');
  });

  it('refuses a username that is not a valid account name', () => {
    expect(refusedWith('')).toContain('empty');
    expect(refusedWith('-country-ng')).toContain('not valid');
    expect(refusedWith('al')).toContain('not valid');
    expect(refusedWith('1alice')).toContain('not valid');
    expect(refusedWith('alice@example.com')).toContain('not valid');
  });

  it('refuses over-long values and usernames', () => {
    expect(parseProxyUsername(`alice-session-${'a'.repeat(32)}`)).toMatchObject({ ok: true });
    expect(refusedWith(`alice-session-${'a'.repeat(33)}`)).toContain('not valid');
    expect(parseProxyUsername(`alice-country-${'a'.repeat(16)}`)).toMatchObject({ ok: true });
    expect(refusedWith(`alice-country-${'a'.repeat(17)}`)).toContain('not valid');
    expect(parseProxyUsername(`a${'b'.repeat(31)}`)).toMatchObject({ ok: true });
    expect(refusedWith(`a${'b'.repeat(32)}`)).toContain('not valid');
    expect(refusedWith(`alice-session-${'a'.repeat(250)}`)).toContain('too long');
  });
});
