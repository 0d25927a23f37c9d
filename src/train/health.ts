import type { Metrics } from '../contracts/stages.ts';
import type { LoopResult } from './loop.ts';

/** A loss that ends above this share of its first epoch's value has not visibly trained. */
export const LOSS_FELL_BY = 0.9;

/**
 * A training stage's loss at its first and last epoch, and a note when, over two epochs or more,
 * it fell by less than 10 % or rose: the stage then did not visibly learn (a learning rate too
 * small, too few steps, a broken gradient path). One epoch has nothing to compare.
 */
export function lossHealth(result: Pick<LoopResult, 'first' | 'last' | 'epochs'>): { health: Metrics; notes: string[] } {
  const first = result.first.loss;
  const last = result.last.loss;
  if (first === undefined || last === undefined) return { health: {}, notes: [] };
  const [a, b] = [first.toFixed(3), last.toFixed(3)];
  const notes =
    result.epochs < 2 || last <= LOSS_FELL_BY * first
      ? []
      : [last > first ? `the loss rose from ${a} to ${b}` : `the loss fell only from ${a} to ${b} (by ${(100 * (1 - last / first)).toFixed(0)} %)`];
  return { health: { loss_first: first, loss_last: last }, notes };
}
