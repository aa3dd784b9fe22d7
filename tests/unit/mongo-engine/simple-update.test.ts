/**
 * The engine's direct route for common updates ($set, $unset, $inc on plain
 * paths) must leave every document exactly as mingo's general updater does,
 * and must decline everything it does not handle so mingo still sees it.
 */
import { describe, expect, it } from '@jest/globals';
import { update as mingoUpdate } from 'mingo';
import type { Document } from 'bson';
import { applySimpleUpdate } from '../../../lib/mongo-engine/update.js';
import { cloneDocument } from '../../../lib/mongo-engine/values.js';

const base = (): Document => ({
  _id: 1,
  status: 'pending',
  count: 3,
  nested: { a: 1, deep: { b: 'x' } },
  list: [1, 2],
  when: new Date('2026-01-01T00:00:00Z'),
});

const handled: [string, Document][] = [
  ['set a new top-level field', { $set: { fresh: true } }],
  ['set an existing field to a new value', { $set: { status: 'paid' } }],
  ['set a field to the value it has', { $set: { status: 'pending' } }],
  ['set a date', { $set: { when: new Date('2026-02-01T00:00:00Z') } }],
  ['set inside a sub-document', { $set: { 'nested.a': 2 } }],
  ['create missing parents', { $set: { 'new.inner.leaf': 5 } }],
  ['replace a sub-document', { $set: { nested: { z: 1 } } }],
  ['unset a field', { $unset: { status: 1 } }],
  ['unset a missing field', { $unset: { nope: 1 } }],
  ['unset inside a sub-document', { $unset: { 'nested.deep.b': 1 } }],
  ['increment', { $inc: { count: 2 } }],
  ['increment a missing field', { $inc: { other: 4 } }],
  ['increment by zero', { $inc: { count: 0 } }],
  ['several operators', { $set: { status: 'paid' }, $inc: { count: -1 }, $unset: { when: 1 } }],
];

const declined: [string, Document][] = [
  ['a positional path', { $set: { 'list.$': 9 } }],
  ['an array index', { $set: { 'list.0': 9 } }],
  ['an array on the way', { $set: { 'list.x': 9 } }],
  ['paths inside one another', { $set: { nested: {}, 'nested.a': 1 } }],
  ['$push', { $push: { list: 3 } }],
  ['$inc on a non-number', { $inc: { status: 1 } }],
];

describe('simple updates', () => {
  it.each(handled)('%s: same document and changed paths as mingo', (_name, ops) => {
    const direct = cloneDocument(base());
    const viaMingo = cloneDocument(base());
    const changed = applySimpleUpdate(direct, ops);
    const mingoChanged = mingoUpdate(viaMingo, ops, undefined, undefined, { cloneMode: 'copy' });
    expect(changed).not.toBeNull();
    expect(direct).toEqual(viaMingo);
    expect(JSON.stringify(direct)).toBe(JSON.stringify(viaMingo));
    expect((changed ?? []).length > 0).toBe(mingoChanged.length > 0);
  });

  it.each(declined)('%s: left to mingo, document untouched', (_name, ops) => {
    const doc = cloneDocument(base());
    expect(applySimpleUpdate(doc, ops)).toBeNull();
    expect(doc).toEqual(base());
  });
});
