import { pathToFileURL } from 'node:url';

import { loadAddon } from '../native/index.ts';

export interface SgemmResult {
  readonly bench: 'sgemm';
  /** Best of the timed runs; null when the native addon is not available. */
  readonly gflops: number | null;
  readonly n: number;
  readonly seconds?: number;
  /** OpenBLAS kernel family in use (e.g. SkylakeX, Haswell). */
  readonly core?: string;
  readonly threads?: number;
  readonly skipped?: string;
}

/**
 * Single-precision n×n×n matrix product through the native addon (OpenBLAS sgemm), the ceiling
 * the native backend's matmuls work against.
 */
export async function benchSgemm(options: { n?: number; repeats?: number } = {}): Promise<SgemmResult> {
  const n = options.n ?? 1024;
  const repeats = options.repeats ?? 5;
  const addon = loadAddon();
  if (typeof addon === 'string') return { bench: 'sgemm', gflops: null, n, skipped: addon };
  const a = new Float32Array(n * n);
  const b = new Float32Array(n * n);
  const c = new Float32Array(n * n);
  let s = 1;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
    b[a.length - 1 - i] = a[i]!;
  }
  const multiply = () => addon.matmul(a, b, c, 1, n, n, n, false, false, 0, 0, null, null);
  multiply(); // warm-up: thread start and packing buffers
  // Enough products per run for about a tenth of a second at ~100 GFLOP/s.
  const perRun = Math.max(1, Math.round(2e10 / (2 * n * n * n)));
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perRun; i++) multiply();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / perRun);
  }
  const info = addon.info();
  return { bench: 'sgemm', gflops: Math.round((2 * n * n * n) / best / 1e7) / 100, n, seconds: best, core: info.core, threads: info.blasThreads };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--n');
  console.log(JSON.stringify(await benchSgemm(at >= 0 ? { n: Number(process.argv[at + 1]) } : {})));
}
