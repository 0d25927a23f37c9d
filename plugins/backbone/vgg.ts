import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';
import { vgg, VGG_LAYERS, type VggDepth } from './cnn/vgg.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'vgg',
  description: 'VGG-11/13/16/19 in torchvision’s layout, with BatchNorm by default (vgg13_bn, as the FER papers use); 7×7 adaptive pool, 4096-wide classifier',
  options: options(
    {
      depth: choice(Object.keys(VGG_LAYERS).map(Number) as readonly VggDepth[], {
        default: 13,
        description: 'VGG-11, -13 (133.1 M weights with BatchNorm at 1000 classes), -16 or -19',
      }),
      batch_norm: Type.Boolean({ default: true, description: 'BatchNorm after every convolution (torchvision’s vgg*_bn)' }),
      dropout: Type.Number({ minimum: 0, maximum: 0.99, default: 0.5, description: 'Dropout after each of the two 4096-wide layers' }),
      ...inputOptionsSchema({ imageSize: 224 }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('vgg', o);
    const arch = vgg({ depth: o.depth as VggDepth, batchNorm: o.batch_norm, channels: input.channels, imageSize: input.imageSize, dropout: o.dropout });
    return convFactory('vgg', { ...o }, input, arch, ctx.seed);
  },
});
