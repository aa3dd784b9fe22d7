/**
 * A job in two idempotent steps, each recorded in `work_steps` with how many
 * times it was attempted: the shape of every Atlantic job (each step keyed,
 * so a rerun finishes what a dead run began and repeats nothing).
 */
import type { Agenda } from 'agenda';
import type { Db } from 'mongodb';

export const TWO_STEP_JOB = 'work.two-steps';

export function defineTwoStepWork(
  agenda: Agenda,
  db: Db,
  hooks: { afterStepOne?: () => Promise<void> } = {},
): void {
  const steps = db.collection<{ _id: string; done: number; attempts: number }>('work_steps');
  const step = async (id: string): Promise<void> => {
    // Done once (the first time), attempted as often as runs reach it.
    await steps.updateOne(
      { _id: id },
      { $setOnInsert: { done: 1 }, $inc: { attempts: 1 } },
      { upsert: true },
    );
  };
  agenda.define(TWO_STEP_JOB, async () => {
    await step('one');
    await hooks.afterStepOne?.();
    await step('two');
  });
}
