import type { Rng } from '../../../src/core/rng.ts';

/** Positions live in the unit cube; the caller maps them to the searched ranges. */
export type Position = number[];

export interface Scored {
  readonly position: Position;
  readonly score: number;
}

/**
 * One wolf's move towards the three leaders (Mirjalili et al., Grey Wolf Optimizer, 2014), per
 * dimension j and leader L ∈ {α, β, δ}:
 *   A = 2a·r1 − a,  C = 2·r2,  D = |C·L_j − x_j|,  X_L = L_j − A·D
 *   x'_j = (X_α + X_β + X_δ) / 3, clipped to [0, 1]
 * `random` supplies r1, r2 in that order (α first, then β, then δ, per dimension).
 */
export function wolfStep(x: Position, leaders: readonly [Position, Position, Position], a: number, random: () => number): Position {
  return x.map((xj, j) => {
    let sum = 0;
    for (const leader of leaders) {
      const A = 2 * a * random() - a;
      const C = 2 * random();
      const D = Math.abs(C * leader[j]! - xj);
      sum += leader[j]! - A * D;
    }
    return Math.min(1, Math.max(0, sum / 3));
  });
}

/** Keeps the three best positions seen so far (α ≥ β ≥ δ), as the leaders of the pack. */
function updateLeaders(leaders: Scored[], candidate: Scored): void {
  leaders.push(candidate);
  leaders.sort((p, q) => q.score - p.score);
  leaders.length = Math.min(leaders.length, 3);
}

/**
 * Maximises `fitness` over [0, 1]^dims with `wolves` agents: the initial pack is drawn uniformly
 * and scored, then each of `iterations` moves every wolf with `wolfStep` (a falls linearly from 2
 * towards 0, shifting from exploration to exploitation) and scores it again. Fitness calls run in
 * a fixed order, so a seeded search is reproducible. Returns the best position ever scored.
 */
export async function greyWolf(o: {
  dims: number;
  wolves: number;
  iterations: number;
  rng: Rng;
  fitness: (x: Position, at: { iteration: number; agent: number }) => Promise<number>;
}): Promise<Scored> {
  const leaders: Scored[] = [];
  let pack: Position[] = Array.from({ length: o.wolves }, () => Array.from({ length: o.dims }, () => o.rng.next()));
  for (let iteration = 0; iteration <= o.iterations; iteration++) {
    if (iteration > 0) {
      const a = 2 - (2 * (iteration - 1)) / o.iterations;
      // Until three distinct leaders exist, the best one stands in for the missing ones.
      const lead = [0, 1, 2].map((k) => (leaders[k] ?? leaders[0]!).position) as [Position, Position, Position];
      pack = pack.map((x) => wolfStep(x, lead, a, () => o.rng.next()));
    }
    for (const [agent, x] of pack.entries()) {
      const score = await o.fitness(x, { iteration, agent });
      if (!Number.isFinite(score)) throw new Error(`grey wolf: fitness of agent ${agent} in iteration ${iteration} is ${score}`);
      updateLeaders(leaders, { position: [...x], score });
    }
  }
  return leaders[0]!;
}
