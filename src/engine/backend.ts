import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { registerTensorflowKernels } from './tensorflow-kernels.ts';
import { registerWasmKernels } from './wasm-kernels.ts';
import { nativeKernelList } from '../native/index.ts';

/**
 * Backends in order of preference. `tensorflow` is @tensorflow/tfjs-node(-gpu) on libtensorflow:
 * built by `npm run setup:tensorflow` from PyPI's TensorFlow into .tensorflow/ (see
 * src/engine/setup-tensorflow.mjs), or installed by the user into node_modules; `native` is this
 * project's OpenBLAS-backed kernels on top of the JS cpu backend (src/native); `wasm` and `cpu`
 * always exist. The automatic choice takes `tensorflow` only when it runs on a GPU: on the CPU,
 * `native` is faster (`npm run bench` compares them).
 */
export const BACKENDS = ['tensorflow', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendChoice {
  readonly name: BackendName;
  /** Why the preferred backends before it were not taken (shown once at start). */
  readonly notes: readonly string[];
}

const require = createRequire(import.meta.url);

/** Where `npm run setup:tensorflow` builds the tensorflow backend (outside node_modules, which `npm ci` replaces). */
export const TENSORFLOW_HOME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '.tensorflow');

interface TensorflowBuild {
  readonly package: string;
  readonly tfjsNode: string;
  readonly tensorflow: string;
  readonly libtensorflow?: string;
  readonly device?: 'cpu' | 'gpu';
}

/** What setup:tensorflow recorded, or null when it has not run (or did not finish). */
export function tensorflowBuild(): TensorflowBuild | null {
  try {
    return JSON.parse(readFileSync(path.join(TENSORFLOW_HOME, 'manifest.json'), 'utf8')) as TensorflowBuild;
  } catch {
    return null;
  }
}

interface TensorflowSource {
  readonly pkg: string;
  readonly load: () => unknown;
  /** Known without loading it: a CPU-only build. */
  readonly cpuOnly: boolean;
  readonly where: string;
}

function tensorflowSources(): TensorflowSource[] {
  const sources: TensorflowSource[] = [];
  const built = tensorflowBuild();
  if (built && existsSync(path.join(TENSORFLOW_HOME, 'node_modules', ...built.package.split('/')))) {
    const fromHome = createRequire(path.join(TENSORFLOW_HOME, 'package.json'));
    sources.push({ pkg: built.package, load: () => fromHome(built.package), cpuOnly: built.device !== 'gpu', where: 'built by npm run setup:tensorflow' });
  }
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
    } catch {
      continue;
    }
    sources.push({ pkg, load: () => require(pkg), cpuOnly: pkg === '@tensorflow/tfjs-node', where: 'installed in node_modules' });
  }
  return sources;
}

/** Whether the loaded tensorflow backend runs its kernels on a GPU (null before it is loaded). */
export function tensorflowUsesGpu(): boolean | null {
  const backend = tf.findBackend('tensorflow') as unknown as { isUsingGpuDevice?: boolean } | null;
  return backend ? Boolean(backend.isUsingGpuDevice) : null;
}

let tensorflowLoad: string | null | undefined;

function loadTensorflow(): string | null {
  if (tensorflowLoad !== undefined) return tensorflowLoad;
  const sources = tensorflowSources();
  if (sources.length === 0) {
    tensorflowLoad = 'not built (run npm run setup:tensorflow; with a GPU: npm run setup:tensorflow -- --gpu)';
    return tensorflowLoad;
  }
  // libtensorflow logs its start-up (oneDNN, CPU features) on stderr unless told otherwise.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const failures: string[] = [];
  for (const s of sources) {
    try {
      s.load();
      registerTensorflowKernels();
      tensorflowLoad = null;
      return null;
    } catch (err) {
      failures.push(`${s.pkg} (${s.where}) failed to load: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  tensorflowLoad = `${failures.join('; ')} (rebuild it: npm run setup:tensorflow -- --force)`;
  return tensorflowLoad;
}

/**
 * Why the automatic choice passes over an available tensorflow backend: it takes it only on a
 * GPU. A CPU-only build is known from its record without loading libtensorflow.
 */
async function tensorflowNotFastest(): Promise<string | null> {
  const sources = tensorflowSources();
  if (sources.length > 0 && sources.every((s) => s.cpuOnly)) {
    return 'a CPU build; native is faster on the CPU (--backend tensorflow uses it anyway)';
  }
  const reason = await backendAvailable('tensorflow');
  if (reason) return reason;
  await tf.setBackend('tensorflow');
  return tensorflowUsesGpu() ? null : 'no GPU in use; native is faster on the CPU (--backend tensorflow uses it anyway)';
}

type Loader = () => Promise<string | null>; // resolves to a reason it is unavailable, or null

const loaders: Record<BackendName, Loader> = {
  async tensorflow() {
    return loadTensorflow();
  },
  async native() {
    try {
      const native = await import('../native/index.ts');
      return native.registerNativeBackend();
    } catch (err) {
      return `native kernels unavailable: ${(err as Error).message.split('\n')[0]}`;
    }
  },
  async wasm() {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmKernels();
      return null;
    } catch (err) {
      return `wasm backend failed to load: ${(err as Error).message.split('\n')[0]}`;
    }
  },
  async cpu() {
    return null;
  },
};

let prodModeSet = false;

/**
 * Whether the backend runs a kernel with code of its own. The native backend registers tfjs's
 * JavaScript kernels under its name for what it does not cover, so its own are listed apart.
 */
export function hasOwnKernel(kernelName: string, backend: string = tf.getBackend()): boolean {
  return backend === 'native' ? nativeKernelList().includes(kernelName) : tf.getKernel(kernelName, backend) !== undefined;
}

/** Whether a backend can be used here, without switching to it. */
export async function backendAvailable(name: BackendName): Promise<string | null> {
  const reason = await loaders[name]();
  if (reason) return reason;
  return tf.findBackendFactory(name) ? null : `backend '${name}' did not register`;
}

/**
 * Chooses and activates a backend: the one asked for (an error if it cannot run), or the first
 * available in BACKENDS order.
 */
export async function selectBackend(requested?: string): Promise<BackendChoice> {
  if (!prodModeSet) {
    // Silences tfjs's console advice to install tfjs-node; the choice is printed by the CLI instead.
    tf.enableProdMode();
    prodModeSet = true;
  }
  if (requested !== undefined) {
    if (!(BACKENDS as readonly string[]).includes(requested)) {
      throw new Error(`unknown backend '${requested}'; choose one of: ${BACKENDS.join(', ')}`);
    }
    const name = requested as BackendName;
    const reason = await backendAvailable(name);
    if (reason) throw new Error(`backend '${name}' cannot run here: ${reason}`);
    await activate(name);
    return { name, notes: [] };
  }
  const notes: string[] = [];
  for (const name of BACKENDS) {
    const reason = name === 'tensorflow' ? await tensorflowNotFastest() : await backendAvailable(name);
    if (reason) {
      notes.push(`${name}: ${reason}`);
      continue;
    }
    if (await activate(name)) return { name, notes };
    notes.push(`${name}: failed to initialise`);
  }
  throw new Error('no TensorFlow.js backend could be initialised');
}

async function activate(name: BackendName): Promise<boolean> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  return ok && tf.getBackend() === name;
}
