/**
 * The engine's direct route for equality and `$in` filters must match exactly
 * the documents mingo matches, and must decline every filter it does not
 * handle so mingo still sees it.
 */
import { describe, expect, it } from '@jest/globals';
import { Query } from 'mingo';
import { Double, Int32, Long, ObjectId, type Document } from 'bson';
import { equalityPredicate } from '../../../lib/mongo-engine/query.js';

const idA = new ObjectId('65a000000000000000000001');
const idB = new ObjectId('65a000000000000000000002');
const day = new Date('2026-01-01T00:00:00Z');

const docs: Document[] = [
  { _id: 1, accountId: idA, status: 'active', n: 1, when: day, tags: ['x', 'y'], flag: true },
  { _id: 2, accountId: idB, status: 'expired', n: 2.5, when: new Date(0), tags: [], flag: false },
  { _id: 3, accountId: idA, status: null, n: 1, tags: 'x' },
  { _id: 4, status: 'active', n: 2, tags: [['x']], nested: { status: 'active' } },
  { _id: 5, accountId: [idA, idB], n: 2.5, status: 'ACTIVE' },
  { _id: 6, accountId: String(idA), n: '1', when: String(day) },
];

const handled: [string, Document][] = [
  ['an ObjectId', { accountId: idA }],
  ['$in of ObjectIds', { accountId: { $in: [idA, new ObjectId()] } }],
  ['$in of nothing', { accountId: { $in: [] } }],
  ['a string', { status: 'active' }],
  ['$eq of a string', { status: { $eq: 'active' } }],
  ['a number', { n: 1 }],
  ['a fraction', { n: { $in: [2.5, 2] } }],
  ['a date', { when: day }],
  ['a boolean', { flag: false }],
  ['an element of an array field', { tags: 'x' }],
  ['two fields', { accountId: idA, status: 'active' }],
  ['a field no document has', { missing: 'x' }],
  ['_id', { _id: { $in: [1, 4, 9] } }],
];

const declined: [string, Document][] = [
  ['null', { status: null }],
  ['$in with null', { status: { $in: ['active', null] } }],
  ['a dotted path', { 'nested.status': 'active' }],
  ['a document value', { nested: { status: 'active' } }],
  ['an array value', { tags: ['x', 'y'] }],
  ['a regex', { status: /act/i }],
  ['another operator', { n: { $gt: 1 } }],
  ['$in beside another operator', { n: { $in: [1], $ne: 2 } }],
  ['a top-level operator', { $or: [{ status: 'active' }] }],
  ['NaN', { n: Number.NaN }],
];

const idsOf = (matched: Document[]): unknown[] => matched.map((doc): unknown => doc._id);

describe('equality filters', () => {
  it.each(handled)('%s: same documents as mingo', (_name, filter) => {
    const predicate = equalityPredicate(filter);
    expect(predicate).not.toBeNull();
    const query = new Query(filter, { idKey: '_id', useStrictMode: true });
    const direct = idsOf(docs.filter((doc) => predicate?.(doc)));
    expect(direct).toEqual(idsOf(docs.filter((doc) => query.test(doc))));
  });

  it('matches at least one document in most cases, so the comparison means something', () => {
    const matching = handled.filter(([, filter]) =>
      docs.some((doc) => equalityPredicate(filter)?.(doc)),
    );
    expect(matching.length).toBeGreaterThanOrEqual(handled.length - 3);
  });

  it('compares numbers by value whatever their BSON type, as MongoDB does (mingo does not)', () => {
    const predicate = equalityPredicate({ n: { $in: [1, 2.5] } });
    const stored = [new Int32(1), new Long(1), new Double(2.5), 1, 2.5, new Int32(2), '1'];
    expect(stored.map((n) => predicate?.({ n }))).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it.each(declined)('%s: left to mingo', (_name, filter) => {
    expect(equalityPredicate(filter)).toBeNull();
  });
});
