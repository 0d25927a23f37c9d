/**
 * Names of the kernels this project adds to tfjs: the native backend registers them
 * (src/native/kernels.ts), and the layers, the engine's fused ops and the optimizers ask the
 * backend for them by these names (falling back to plain ops where it lacks them).
 */

/** The fused AdamW step of one weight. */
export const ADAMW_KERNEL = 'SsferAdamW';
/** AdamW for many weights in one call, in place where nothing else sees them. */
export const ADAMW_IN_PLACE_KERNEL = 'SsferAdamWInPlace';
/** Many weight averages (EMA) moved in one call, in place where nothing else sees them. */
export const EMA_IN_PLACE_KERNEL = 'SsferEmaInPlace';

/** LayerNorm and exact GELU, forward and backward. */
export const LAYER_NORM_KERNEL = 'SsferLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'SsferLayerNormGrad';
export const GELU_KERNEL = 'SsferGelu';
export const GELU_GRAD_KERNEL = 'SsferGeluGrad';

/** The linear layer, and softmax cross-entropy, forward and backward. */
export const LINEAR_KERNEL = 'SsferLinear';
export const LINEAR_GRAD_KERNEL = 'SsferLinearGrad';
export const CROSS_ENTROPY_KERNEL = 'SsferSoftmaxCrossEntropy';
export const CROSS_ENTROPY_GRAD_KERNEL = 'SsferSoftmaxCrossEntropyGrad';

/** The pre-norm ViT block, forward and backward. */
export const VIT_BLOCK_KERNEL = 'SsferVitBlock';
export const VIT_BLOCK_GRAD_KERNEL = 'SsferVitBlockGrad';
