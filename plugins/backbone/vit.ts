import { definePlugin } from '../../src/core/plugin.ts';
import type { BackboneFactory, BuildOptions, ParameterCount } from '../../src/contracts/backbone.ts';
import { resolveVitConfig, vitOptions, vitParameterCount, type VitConfig } from './vit/config.ts';
import { VisionTransformer } from './vit/model.ts';
import { vitGraph } from './vit/onnx.ts';

export { VisionTransformer } from './vit/model.ts';
export { resolveVitConfig, vitParameterCount, VIT_PRESETS, type VitConfig, type VitOptions, type VitPreset } from './vit/config.ts';

export interface VitFactory extends BackboneFactory<VisionTransformer> {
  readonly config: VitConfig;
}

export default definePlugin({
  kind: 'backbone',
  name: 'vit',
  description: 'Vision Transformer (pre-norm, MAE-style): tiny/small/base/large presets or explicit sizes',
  provides: ['tokens'],
  options: vitOptions,
  create(options, ctx): VitFactory {
    const config = resolveVitConfig(options);
    return {
      name: 'vit',
      config,
      imageSize: config.imageSize,
      build(numClasses: number, seed: number = ctx.seed, buildOptions?: BuildOptions) {
        return new VisionTransformer(config, numClasses, seed, buildOptions);
      },
      parameterCount(numClasses: number): ParameterCount {
        return vitParameterCount(config, numClasses);
      },
      onnxGraph: vitGraph,
    };
  },
});
