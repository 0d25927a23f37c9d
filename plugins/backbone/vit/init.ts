/**
 * Deterministic initial values, generated in JS so they are the same on every backend. Each
 * weight draws from its own stream keyed by (seed, name): adding a weight, or changing the number
 * of classes, leaves every other weight's initial value unchanged.
 */

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit key from a seed and a name (FNV-1a over the name, finalised with murmur3's mixer). */
export function streamKey(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ fmix32((seed >>> 0) ^ 0x9e3779b9);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

/** mulberry32: small, fast and good enough for weight initialisation and dropout seeds. */
export class Stream {
  private s: number;
  constructor(key: number) {
    this.s = key >>> 0;
  }
  get state(): number {
    return this.s;
  }
  set state(value: number) {
    this.s = value >>> 0;
  }
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in (0, 1): never 0, so log() in Box–Muller is finite. */
  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }
  normal(): number {
    const u = this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

export function zeros(size: number): Float32Array {
  return new Float32Array(size);
}

export function ones(size: number): Float32Array {
  return new Float32Array(size).fill(1);
}

/** Glorot/Xavier uniform, U(−a, a) with a = √(6 / (fan_in + fan_out)), as MAE initialises linears. */
export function xavierUniform(stream: Stream, fanIn: number, fanOut: number): Float32Array {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = (2 * stream.uniform() - 1) * a;
  return out;
}

export function normal(stream: Stream, size: number, std: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = stream.normal() * std;
  return out;
}

/** Normal with samples beyond ±2 std redrawn. */
export function truncatedNormal(stream: Stream, size: number, std: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let z = stream.normal();
    while (z < -2 || z > 2) z = stream.normal();
    out[i] = z * std;
  }
  return out;
}

/** U(−bound, bound). */
export function uniform(stream: Stream, size: number, bound: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (2 * stream.uniform() - 1) * bound;
  return out;
}
