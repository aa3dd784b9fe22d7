/**
 * Configuration is wrong. `problems` lists every problem found at once, each
 * starting with the variable's name and saying how to fix it.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((problem) => `  - ${problem}`).join('\n'),
    );
    this.problems = Object.freeze([...problems]);
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}

/** The text main prints before exiting when start-up configuration fails. */
export function formatConfigError(error: unknown): string {
  if (error instanceof ConfigError) {
    return `${error.message}\nEvery variable is described in .env.example.`;
  }
  if (error instanceof Error) return `Configuration could not be loaded: ${error.message}`;
  return `Configuration could not be loaded: ${String(error)}`;
}
