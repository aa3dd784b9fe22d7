/**
 * Runs the in-process MongoDB engine as its own process, for benchmarks that
 * want the database on another core, as a real mongod would be:
 *
 *   node --import tsx lib/mongo-engine/main.ts [--port 0] [--host 127.0.0.1]
 *
 * Prints one JSON line `{"uri":"mongodb://…"}` on stdout when listening;
 * SIGINT/SIGTERM stop it. Options come from argv only.
 */
import { parseArgs } from 'node:util';
import { startMongoEngine } from './index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
  strict: true,
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`--port must be 0-65535, got ${values.port}\n`);
  process.exit(2);
}
const engine = await startMongoEngine({ port, host: values.host });
process.stdout.write(`${JSON.stringify({ uri: engine.uri })}\n`);
const stop = (): void => {
  void engine.stop().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
