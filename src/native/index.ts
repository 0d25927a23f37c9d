import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

import { ADAMW_IN_PLACE_KERNEL, ADAMW_KERNEL, EMA_IN_PLACE_KERNEL } from '../core/kernel-names.ts';
import { loadAddon, type NativeAddon } from './addon.ts';
import { adamWInPlaceKernel, adamWKernel, blockKernels, emaInPlaceKernel, layerKernels, linearKernels, nativeKernels } from './kernels.ts';
import { BufferPool, type CpuBackendBase, withBufferPool } from './pool.ts';

export { loadAddon, type NativeAddon } from './addon.ts';

export const NATIVE_BACKEND = 'native';

interface CpuBackendModule {
  MathBackendCPU: new () => CpuBackendBase;
}

interface RegistryState {
  result?: string | null;
  pool?: BufferPool;
  kernels: string[];
  fallbacks: Map<string, number>;
}

// Kept on globalThis: a loader may instantiate this module twice (ESM and CJS paths), while tfjs's
// registry, which the state describes, exists once per process.
const STATE_KEY = Symbol.for('ssfer.native.registry');
const state: RegistryState =
  ((globalThis as Record<symbol, unknown>)[STATE_KEY] as RegistryState | undefined) ??
  ((globalThis as Record<symbol, unknown>)[STATE_KEY] = { kernels: [], fallbacks: new Map() } as RegistryState);

/**
 * The JS cpu backend class, taken from the copy @tensorflow/tfjs itself loads so that there is a
 * single tfjs-core (and kernel registry) in the process.
 */
function loadCpuBackend(): CpuBackendModule | string {
  try {
    const require = createRequire(import.meta.url);
    const tfjsEntry = require.resolve('@tensorflow/tfjs');
    const fromTfjs = createRequire(tfjsEntry);
    const cpuEntry = fromTfjs.resolve('@tensorflow/tfjs-backend-cpu');
    const coreOfTfjs = fromTfjs.resolve('@tensorflow/tfjs-core');
    const coreOfCpu = createRequire(cpuEntry).resolve('@tensorflow/tfjs-core');
    if (coreOfTfjs !== coreOfCpu) {
      return '@tensorflow/tfjs-backend-cpu resolves another copy of @tensorflow/tfjs-core than @tensorflow/tfjs';
    }
    const mod = fromTfjs('@tensorflow/tfjs-backend-cpu') as Partial<CpuBackendModule>;
    if (typeof mod.MathBackendCPU !== 'function') return '@tensorflow/tfjs-backend-cpu has no MathBackendCPU';
    return mod as CpuBackendModule;
  } catch (err) {
    return `@tensorflow/tfjs-backend-cpu not found: ${(err as Error).message.split('\n')[0]}`;
  }
}

/**
 * Registers the tfjs backend 'native': the JS cpu backend with its hot kernels (matmul through
 * OpenBLAS, elementwise, reductions, softmax, data movement) replaced by the C++ addon. Kernels
 * and cases the addon does not cover run the cpu backend's JS kernel. Returns null when the
 * backend is registered and usable, otherwise why not; never throws. Safe to call repeatedly.
 */
export function registerNativeBackend(): string | null {
  if (state.result !== undefined) return state.result;
  state.result = register();
  return state.result;
}

function register(): string | null {
  const addon = loadAddon();
  if (typeof addon === 'string') return addon;
  const cpu = loadCpuBackend();
  if (typeof cpu === 'string') return cpu;
  if (tf.findBackendFactory(NATIVE_BACKEND)) return null;
  try {
    const cpuKernels = tf.getKernelsForBackend('cpu');
    if (cpuKernels.length === 0) return 'the tfjs cpu backend registered no kernels';
    const pool = new BufferPool();
    state.pool = pool;
    const Backend = withBufferPool(cpu.MathBackendCPU, pool);
    const ok = tf.registerBackend(NATIVE_BACKEND, () => new Backend() as KernelBackend);
    if (!ok) return `tfjs refused to register the '${NATIVE_BACKEND}' backend`;
    const natives = nativeKernels(addon, pool);
    const names: string[] = [];
    for (const k of cpuKernels) {
      const native = natives.get(k.kernelName);
      const config: KernelConfig = { ...k, backendName: NATIVE_BACKEND };
      if (native) {
        const jsKernel = k.kernelFunc;
        const name = k.kernelName;
        const orig: KernelFunc = (args) => {
          state.fallbacks.set(name, (state.fallbacks.get(name) ?? 0) + 1);
          return jsKernel(args);
        };
        config.kernelFunc = ((args) => native(args, orig, jsKernel)) as KernelFunc;
        names.push(k.kernelName);
      }
      tf.registerKernel(config);
    }
    tf.registerKernel({ kernelName: ADAMW_KERNEL, backendName: NATIVE_BACKEND, kernelFunc: adamWKernel(addon, pool) });
    names.push(ADAMW_KERNEL);
    if (typeof addon.adamWInPlace === 'function') {
      tf.registerKernel({ kernelName: ADAMW_IN_PLACE_KERNEL, backendName: NATIVE_BACKEND, kernelFunc: adamWInPlaceKernel(addon, pool) });
      names.push(ADAMW_IN_PLACE_KERNEL);
    }
    if (typeof addon.emaInPlace === 'function') {
      tf.registerKernel({ kernelName: EMA_IN_PLACE_KERNEL, backendName: NATIVE_BACKEND, kernelFunc: emaInPlaceKernel(addon, pool) });
      names.push(EMA_IN_PLACE_KERNEL);
    }
    // An addon built before these kernels existed lacks them; the layers then keep their op-by-op path.
    if (typeof addon.layerNorm === 'function' && typeof addon.gelu === 'function') {
      for (const [kernelName, kernelFunc] of layerKernels(addon, pool)) {
        tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
        names.push(kernelName);
      }
    }
    if (typeof addon.vitBlock === 'function') {
      for (const [kernelName, kernelFunc] of [...blockKernels(addon, pool), ...linearKernels(addon, pool)]) {
        tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
        names.push(kernelName);
      }
    }
    state.kernels = names.sort();
    replaceReductionGradients();
    return null;
  } catch (err) {
    return `registering the native backend failed: ${(err as Error).message.split('\n')[0]}`;
  }
}

/**
 * The gradients of Sum and Mean multiply the incoming gradient by `ones(x.shape)`, a tensor
 * filled element by element in JS, which costs about as much as the multiply itself. On this
 * backend they broadcast it instead (a Tile kernel), which gives the same values; every other
 * backend keeps tfjs's own gradient.
 */
function replaceReductionGradients(): void {
  for (const name of ['Sum', 'Mean']) {
    const original = tf.getGradient(name);
    if (!original) continue;
    tf.registerGradient({
      ...original,
      gradFunc: (dy, saved, attrs) => {
        const dyT = dy as tf.Tensor;
        const x = saved[0];
        if (tf.getBackend() !== NATIVE_BACKEND || !x || dyT.dtype !== 'float32' || x.size === 0) {
          return original.gradFunc(dy, saved, attrs);
        }
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
        const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
        const reduceSize = axes.reduce((n, a) => n * x.shape[a]!, 1);
        return {
          x: () => {
            const full = tf.broadcastTo(tf.reshape(dyT, expanded), x.shape);
            return name === 'Mean' ? tf.div(full, reduceSize) : full;
          },
        };
      },
    });
  }
}

/** Names of the kernels that run in C++ on the 'native' backend (empty before registration). */
export function nativeKernelList(): readonly string[] {
  return state.kernels;
}

/** How often each native kernel handed a call to the JS kernel (a dtype or case it does not cover). */
export function nativeFallbackCounts(): ReadonlyMap<string, number> {
  return state.fallbacks;
}

export function resetNativeFallbackCounts(): void {
  state.fallbacks.clear();
}

/**
 * Hands the buffers kept for reuse (about the peak memory of a training step) back to the
 * garbage collector, e.g. after training before a long evaluation.
 */
export function releaseNativeBuffers(): void {
  state.pool?.clear();
}

/** Threads used by the addon's kernels and by OpenBLAS; returns the count now in effect. */
export function setNativeThreads(n: number): number {
  const addon = loadAddon();
  if (typeof addon === 'string') throw new Error(addon);
  return addon.setThreads(n);
}

export function nativeInfo(): ReturnType<NativeAddon['info']> | null {
  const addon = loadAddon();
  return typeof addon === 'string' ? null : addon.info();
}
