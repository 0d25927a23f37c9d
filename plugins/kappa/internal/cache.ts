/** A least-recently-used map bounded by the total size of its values. */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; size: number }>();
  private total = 0;

  constructor(
    private readonly capacity: number,
    private readonly sizeOf: (value: V) => number,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    // Re-insert so Map's insertion order tracks recency.
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V): void {
    const size = this.sizeOf(value);
    if (size > this.capacity) return;
    const old = this.map.get(key);
    if (old) {
      this.total -= old.size;
      this.map.delete(key);
    }
    this.map.set(key, { value, size });
    this.total += size;
    for (const [k, v] of this.map) {
      if (this.total <= this.capacity) break;
      this.map.delete(k);
      this.total -= v.size;
    }
  }

  get size(): number {
    return this.map.size;
  }
}

/**
 * A key for a run of numbers: two independent 32-bit FNV-1a hashes over their bit patterns plus
 * the length, so distinct images colliding is practically impossible.
 */
export function contentKey(
  data: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; BYTES_PER_ELEMENT: number },
  start: number,
  length: number,
): string {
  const words = new Uint32Array(data.buffer, data.byteOffset + start * data.BYTES_PER_ELEMENT, (length * data.BYTES_PER_ELEMENT) >>> 2);
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    h1 = Math.imul(h1 ^ w, 0x01000193);
    h2 = Math.imul(h2 ^ (w >>> 16) ^ (w << 16), 0x01000193);
  }
  return `${length}:${(h1 >>> 0).toString(36)}:${(h2 >>> 0).toString(36)}`;
}
