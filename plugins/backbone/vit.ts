import { definePlugin } from '../../src/core/plugin.ts';
import type { BackboneFactory, BuildOptions, ParameterCount } from '../../src/contracts/backbone.ts';
import { resolveVitConfig, VIT_PRESETS, vitParameterCount, type VitConfig, type VitOptions } from './vit/config.ts';
import { VisionTransformer } from './vit/model.ts';

export { VisionTransformer } from './vit/model.ts';
export { resolveVitConfig, vitParameterCount, VIT_PRESETS, type VitConfig, type VitOptions, type VitPreset } from './vit/config.ts';

const nullableInt = (description: string) => ({
  type: ['integer', 'null'],
  minimum: 1,
  default: null,
  description,
});

export interface VitFactory extends BackboneFactory<VisionTransformer> {
  readonly config: VitConfig;
}

export default definePlugin<VitOptions, VitFactory>({
  kind: 'backbone',
  name: 'vit',
  description: 'Vision Transformer (pre-norm, MAE-style): tiny/small/base/large presets or explicit sizes',
  provides: ['tokens'],
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      preset: {
        enum: Object.keys(VIT_PRESETS),
        default: 'base',
        description: 'Published size: tiny 192/12/3, small 384/12/6, base 768/12/12, large 1024/24/16 (width/depth/heads), MLP ratio 4',
      },
      dim: nullableInt('Token width; null takes the preset’s'),
      depth: nullableInt('Number of transformer blocks; null takes the preset’s'),
      heads: nullableInt('Attention heads (must divide dim); null takes the preset’s'),
      mlp_ratio: { type: ['number', 'null'], exclusiveMinimum: 0, default: null, description: 'MLP hidden width / dim; null takes the preset’s (4)' },
      image_size: { type: 'integer', minimum: 1, default: 224, description: 'Input height = width in pixels' },
      patch_size: { type: 'integer', minimum: 1, default: 16, description: 'Patch side in pixels (must divide image_size)' },
      channels: { type: 'integer', minimum: 1, default: 3, description: 'Image channels' },
      pos_embed: {
        enum: ['sincos', 'learned'],
        default: 'sincos',
        description: 'Position embedding: fixed 2-D sin-cos as MAE uses (not trained), or learned',
      },
      class_token: { type: 'boolean', default: true, description: 'Prepend a learnable class token' },
      pool: {
        enum: ['cls', 'mean'],
        default: 'cls',
        description: 'Features for the head: the class token, or the mean of the normalised patch tokens (MAE fine-tuning pools by mean)',
      },
      gelu: { enum: ['erf', 'tanh'], default: 'erf', description: 'GELU form: exact (erf) or the tanh approximation' },
      qkv_bias: { type: 'boolean', default: true, description: 'Bias on the query/key/value projection' },
      layer_norm_eps: { type: 'number', exclusiveMinimum: 0, default: 1e-6, description: 'LayerNorm epsilon (timm/MAE use 1e-6)' },
      dropout: { type: 'number', minimum: 0, maximum: 0.99, default: 0, description: 'Dropout after the position embedding, attention projection and MLP layers' },
      drop_path: { type: 'number', minimum: 0, maximum: 0.99, default: 0, description: 'Stochastic depth rate of the last block (linear from 0 over depth)' },
      input_mean: {
        type: 'array',
        items: { type: 'number' },
        minItems: 1,
        default: [0.485, 0.456, 0.406],
        description: 'Per-channel mean subtracted from the [0, 1] images before patchify (ImageNet’s, as timm and MAE use)',
      },
      input_std: {
        type: 'array',
        items: { type: 'number', exclusiveMinimum: 0 },
        minItems: 1,
        default: [0.229, 0.224, 0.225],
        description: 'Per-channel std the centred images are divided by',
      },
      head: {
        type: 'object',
        additionalProperties: false,
        default: { hidden: 0, init_std: null },
        description: 'Classifier on the pooled features',
        properties: {
          hidden: { type: 'integer', minimum: 0, default: 0, description: '0: linear head; otherwise the hidden width of an MLP head (Linear → GELU → Linear)' },
          init_std: {
            type: ['number', 'null'],
            exclusiveMinimum: 0,
            default: null,
            description: 'Truncated-normal std of the classifier weight (MAE fine-tuning: 2e-5); null: Xavier uniform',
          },
        },
      },
    },
  },
  create(options, ctx) {
    const config = resolveVitConfig(options);
    return {
      name: 'vit',
      config,
      imageSize: config.imageSize,
      build(numClasses: number, seed: number = ctx.seed, buildOptions?: BuildOptions) {
        return new VisionTransformer(config, numClasses, seed, buildOptions?.trainable ?? true);
      },
      parameterCount(numClasses: number): ParameterCount {
        return vitParameterCount(config, numClasses);
      },
    };
  },
});
