import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/**
 * Kernels the project's models and augmentations use that @tensorflow/tfjs-node does not
 * register, each mapped onto the TensorFlow op that computes it (so it runs in libtensorflow,
 * on the GPU where there is one). Registered once the 'tensorflow' backend has loaded.
 */

/** What the kernels use of tfjs-node's backend (NodeJSKernelBackend) and its binding. */
interface NodeBackend {
  binding: Record<'TF_FLOAT' | 'TF_INT32' | 'TF_ATTR_TYPE' | 'TF_ATTR_BOOL', number>;
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: TensorInfo[]): TensorInfo;
}

function dtypeCode(b: NodeBackend, dtype: string): number {
  if (dtype === 'float32') return b.binding.TF_FLOAT;
  if (dtype === 'int32') return b.binding.TF_INT32;
  throw new Error(`tensorflow backend: no ${dtype} kernel here`);
}

const KERNELS: KernelConfig[] = [
  {
    // tf.denseBincount (RandAugment's equalize): TF's DenseBincount, whose empty weights mean 1s.
    kernelName: 'DenseBincount',
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, weights } = inputs as { x: TensorInfo; weights: TensorInfo };
      const { size, binaryOutput } = attrs as NamedAttrMap;
      const b = backend as unknown as NodeBackend;
      const $size = tf.scalar(Number(size), 'int32');
      try {
        return b.executeSingleOutput(
          'DenseBincount',
          [
            { name: 'Tidx', type: b.binding.TF_ATTR_TYPE, value: dtypeCode(b, x.dtype) },
            { name: 'T', type: b.binding.TF_ATTR_TYPE, value: dtypeCode(b, weights.dtype) },
            { name: 'binary_output', type: b.binding.TF_ATTR_BOOL, value: Boolean(binaryOutput) },
          ],
          [x, $size, weights],
        );
      } finally {
        $size.dispose();
      }
    },
  },
];

/** Registers the kernels above on the 'tensorflow' backend (once; a no-op before it exists). */
export function registerTensorflowKernels(): void {
  if (!tf.findBackendFactory('tensorflow')) return;
  for (const k of KERNELS) {
    if (!tf.getKernel(k.kernelName, 'tensorflow')) tf.registerKernel(k);
  }
}
