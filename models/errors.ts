/**
 * MongoDB's duplicate-key error (E11000): how a unique index says "this already
 * exists". Every idempotent write in Atlantic relies on it, so it is recognised
 * in one place. https://www.mongodb.com/docs/manual/core/index-unique/
 */
export function isDuplicateKeyError(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000
  );
}
