import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

/**
 * Backends in order of preference. `tensorflow` needs @tensorflow/tfjs-node(-gpu), which the user
 * installs (it downloads libtensorflow, so it is not a dependency); `native` is this project's
 * OpenBLAS-backed kernels on top of the JS cpu backend (src/native); `wasm` and `cpu` always exist.
 */
export const BACKENDS = ['tensorflow', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendChoice {
  readonly name: BackendName;
  /** Why the preferred backends before it were not taken (shown once at start). */
  readonly notes: readonly string[];
}

const require = createRequire(import.meta.url);

type Loader = () => Promise<string | null>; // resolves to a reason it is unavailable, or null

const loaders: Record<BackendName, Loader> = {
  async tensorflow() {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        require.resolve(pkg);
      } catch {
        continue;
      }
      try {
        await import(pkg);
        return null;
      } catch (err) {
        return `${pkg} is installed but failed to load: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    return 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed';
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
    const reason = await backendAvailable(name);
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
