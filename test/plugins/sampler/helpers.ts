import { createRegistry, type PluginRegistry } from '../../../src/core/registry.ts';
import type { Sampler } from '../../../src/contracts/training.ts';
import type { PluginSlot } from '../../../src/core/plugin.ts';
import { Rng } from '../../../src/core/rng.ts';

let registry: PluginRegistry | undefined;

/** A sampler created as a recipe would create it (nested slots resolved, defaults filled). */
export async function sampler(slot: PluginSlot, seed = 2024): Promise<Sampler> {
  registry ??= await createRegistry();
  return registry.create('sampler', slot, { seed, scale: 'smoke', recipeDir: '.' });
}

/** Labels with unequal classes: class c has sizes[c] images, shuffled with a fixed seed. */
export function imbalanced(sizes: readonly number[]): Int32Array {
  const labels = Int32Array.from(sizes.flatMap((n, c) => Array<number>(n).fill(c)));
  return new Rng(7).shuffle(labels);
}

export function countsByClass(labels: Int32Array, indices: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const i of Array.from(indices)) counts[labels[i]!]! += 1;
  return counts;
}

export const sorted = (a: ArrayLike<number>) => Array.from(a).sort((x, y) => x - y);
