import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options, Type } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { mobilenetV3, type MobileNetSize } from './cnn/mobilenet.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'mobilenet-v3',
  description: 'MobileNetV3 large or small in torchvision’s layout (inverted residuals, squeeze-excitation, hard-swish), any image size',
  options: options(
    {
      size: choice(['large', 'small'] as const satisfies readonly MobileNetSize[], {
        default: 'large',
        description: 'large (5.5 M weights at 1000 classes) or small (2.5 M)',
      }),
      dropout: Type.Number({ minimum: 0, maximum: 0.99, default: 0.2, description: 'Dropout before the classifier' }),
      ...inputOptionsSchema({ imageSize: 224 }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('mobilenet-v3', o);
    return convFactory('mobilenet-v3', { ...o }, input, mobilenetV3({ size: o.size, channels: input.channels, dropout: o.dropout }), ctx.seed);
  },
});
