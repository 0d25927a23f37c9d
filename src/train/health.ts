import type { Metrics } from '../contracts/stages.ts';
import type { LoopResult } from './loop.ts';

/** A loss that ends above this share of its first epoch's value has not visibly trained. */
export const LOSS_FELL_BY = 0.9;

/**
 * A training stage's loss at its first and last epoch, and a note when it fell by less than 10 %:
 * the stage then did not visibly learn (a learning rate too small, too few steps, a broken
 * gradient path).
 */
export function lossHealth(result: Pick<LoopResult, 'first' | 'last'>): { health: Metrics; notes: string[] } {
  const first = result.first.loss;
  const last = result.last.loss;
  if (first === undefined || last === undefined) return { health: {}, notes: [] };
  const notes = last > LOSS_FELL_BY * first ? [`the loss fell only from ${first.toFixed(3)} to ${last.toFixed(3)} (by ${(100 * (1 - last / first)).toFixed(0)} %)`] : [];
  return { health: { loss_first: first, loss_last: last }, notes };
}
