/**
 * The Node flags the gateway ships with: the ones docker-compose.yml's
 * `gateway` service passes before the entry point (it runs the proxy role in
 * a process of its own; tests/unit/deploy-files.test.ts checks that service).
 * The gateway benchmark runs Atlantic's gateway with the same flags, so its
 * figures are the shipped ones.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const root = path.resolve(import.meta.dirname, '..');

export function gatewayNodeFlags(): string[] {
  const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as { services: { gateway?: { command?: string[] } } };
  const command = compose.services.gateway?.command;
  if (!command || command[0] !== 'node') {
    throw new Error('docker-compose.yml: the gateway service does not run node');
  }
  return command.slice(1).filter((part) => part.startsWith('--'));
}
