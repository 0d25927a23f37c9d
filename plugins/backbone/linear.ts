import { definePlugin } from '../../src/core/plugin.ts';
import { choice, options } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { linearProbe } from './cnn/linear.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'linear',
  description: 'sanity baseline: a linear classifier (multinomial logistic regression) on the standardised raw pixels',
  options: options(
    {
      standardise: choice(['pixel', 'image', 'none'], {
        default: 'pixel',
        description:
          'pixel: each pixel and channel by its mean and std over the training images (as scikit-learn’s StandardScaler; running estimates); image: each image by its own mean and std; none: as given',
      }),
      ...inputOptionsSchema({ imageSize: 48, mean: [0, 0, 0], std: [1, 1, 1], sizeNote: 'the classifier has one weight per pixel, channel and class' }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('linear', o);
    return convFactory('linear', { ...o }, input, linearProbe({ imageSize: input.imageSize, channels: input.channels, standardise: o.standardise }), ctx.seed);
  },
});
