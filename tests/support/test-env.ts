/** Environment variables the global setup uses to hand the database to test workers. */
export const testEnvKeys = {
  uri: 'ATLANTIC_TEST_MONGODB_URI',
  engine: 'ATLANTIC_TEST_DB_ENGINE',
} as const;
