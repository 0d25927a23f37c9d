import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';
import { vgg, VGG_LAYERS, type VggDepth } from './cnn/vgg.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'vgg',
  description:
    'VGG-11/13/16/19 in torchvision’s layout, with BatchNorm by default (vgg13_bn, as the FER papers use); 7×7 adaptive pool, 4096-wide classifier (both options)',
  options: options(
    {
      depth: choice(Object.keys(VGG_LAYERS).map(Number) as readonly VggDepth[], {
        default: 13,
        description: 'VGG-11, -13 (133.1 M weights with BatchNorm at 1000 classes), -16 or -19',
      }),
      batch_norm: Type.Boolean({ default: true, description: 'BatchNorm after every convolution (torchvision’s vgg*_bn)' }),
      dropout: Type.Number({ minimum: 0, maximum: 0.99, default: 0.5, description: 'Dropout after each of the classifier’s two hidden layers' }),
      pool_size: Type.Integer({
        minimum: 1,
        maximum: 32,
        default: 7,
        description:
          'side of the adaptive average pool before the classifier (torchvision: 7, so 25088 inputs; 1 pools globally, a small model for smoke runs)',
      }),
      hidden: Type.Integer({ minimum: 1, default: 4096, description: 'width of the classifier’s two hidden layers (torchvision: 4096)' }),
      ...inputOptionsSchema({ imageSize: 224 }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('vgg', o);
    const arch = vgg({
      depth: o.depth as VggDepth,
      batchNorm: o.batch_norm,
      channels: input.channels,
      imageSize: input.imageSize,
      dropout: o.dropout,
      poolSize: o.pool_size,
      hidden: o.hidden,
    });
    return convFactory('vgg', { ...o }, input, arch, ctx.seed);
  },
});
