import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';
import { resnet, RESNET_LAYERS, type ResNetDepth } from './cnn/resnet.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'resnet',
  description: 'ResNet-18/34/50/101/152 in torchvision’s layout (BasicBlock / Bottleneck v1.5), any image size, global average pool',
  options: options(
    {
      depth: choice(Object.keys(RESNET_LAYERS).map(Number) as readonly ResNetDepth[], {
        default: 18,
        description: 'ResNet-18 (11.7 M weights at 1000 classes), -34, -50 (25.6 M), -101 or -152',
      }),
      zero_init_residual: Type.Boolean({ default: false, description: 'start each residual branch’s last BatchNorm scale at 0 (torchvision’s option)' }),
      ...inputOptionsSchema({ imageSize: 224 }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('resnet', o);
    const arch = resnet({ depth: o.depth as ResNetDepth, channels: input.channels, zeroInitResidual: o.zero_init_residual });
    return convFactory('resnet', { ...o }, input, arch, ctx.seed);
  },
});
