/**
 * Fault points: a multi-step money flow names each gap between two writes
 * (`await faults.reach('payment.marked_paid')`). Production passes `noFaults`;
 * fault-injection tests pass `crashAt(step)`, which throws there as if the
 * process had died, then run the flow again (or its recovery) and check that
 * nothing was lost or applied twice.
 */
export interface FaultPoints {
  reach(step: string): void;
}

export const noFaults: FaultPoints = { reach: () => {} };

/** Thrown by `crashAt`; stands for the process dying at that step. */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
  constructor(readonly step: string) {
    super(`simulated crash at ${step}`);
  }
}

/** Crashes the first time `step` is reached (the restarted flow then passes it). */
export function crashAt(
  step: string,
): FaultPoints & { readonly crashed: boolean; readonly seen: string[] } {
  let crashed = false;
  const seen: string[] = [];
  return {
    get crashed() {
      return crashed;
    },
    seen,
    reach(current) {
      seen.push(current);
      if (!crashed && current === step) {
        crashed = true;
        throw new SimulatedCrash(step);
      }
    },
  };
}

/** Records the steps a flow passes, so a test can crash at each one in turn. */
export function recordSteps(): FaultPoints & { readonly seen: string[] } {
  const seen: string[] = [];
  return { seen, reach: (step) => void seen.push(step) };
}
