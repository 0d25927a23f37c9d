/**
 * Seeded random numbers for everything in a run (data, label sampling, initialisation, batch
 * order, augmentation, λ): all randomness flows from the recipe's seed through these, so the
 * same recipe, seed and backend give the same numbers. Every stream is derived from a seed and
 * a path of tags (`deriveSeed(seed, 'train', index)`), so a stream never depends on how much
 * another one has been used.
 */

/** FNV-1a over the UTF-16 code units; enough to turn a tag into 32 bits. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The splitmix32 finaliser: a bijective 32-bit mix with good avalanche. */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** A child seed for `seed` along a path of tags; distinct paths give unrelated streams. */
export function deriveSeed(seed: number, ...tags: readonly (number | string)[]): number {
  let h = mix32(seed >>> 0);
  for (const tag of tags) {
    const t = typeof tag === 'number' ? tag >>> 0 : hashString(tag);
    h = mix32((h ^ mix32(t + 0x6a09e667)) >>> 0);
  }
  return h;
}

/** mulberry32 step as a plain function: returns [0, 1) and the next state. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** mulberry32 with the helpers the generator needs. */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A new independent generator for a sub-task, keyed by tags (does not advance this one). */
  static derive(seed: number, ...tags: readonly (number | string)[]): Rng {
    return new Rng(deriveSeed(seed, ...tags));
  }

  /** Uniform on [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A fresh 32-bit seed drawn from this stream. */
  seed(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** ±1 with equal odds. */
  sign(): number {
    return this.next() < 0.5 ? -1 : 1;
  }

  /** Standard normal (Box–Muller, the second value cached). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = this.next();
    if (u < 1e-12) u = 1e-12;
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  gauss(mean: number, sd: number): number {
    return mean + sd * this.normal();
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Index drawn with probability proportional to `weights`. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** Fisher–Yates in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost). */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.next() || Number.MIN_VALUE, 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x ** 4) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b) from two gammas (Mixup's λ). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /** The generator's position, for exact resume. */
  getState(): { state: number; spare: number | null } {
    return { state: this.state, spare: this.spare };
  }

  setState(s: { state: number; spare: number | null }): void {
    this.state = s.state | 0;
    this.spare = s.spare;
  }
}
