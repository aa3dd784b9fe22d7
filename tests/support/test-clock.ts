export { TestClock, durationMs } from '../../lib/clock.js';
export type { Clock, Duration } from '../../lib/clock.js';
