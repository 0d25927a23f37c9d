import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema } from './cnn/options.ts';
import { smallCnn } from './cnn/small.ts';

export default definePlugin({
  kind: 'backbone',
  name: 'small-cnn',
  description: 'sanity baseline: blocks of 3×3 conv → BatchNorm → ReLU (×2) and a 2×2 max pool, global average pool, dropout, linear head',
  options: options(
    {
      widths: Type.Array(Type.Integer({ minimum: 1 }), {
        minItems: 1,
        default: [32, 64, 128],
        description: 'Channels of each block (one 2×2 max pool per block)',
      }),
      convs_per_block: Type.Integer({ minimum: 1, default: 2, description: 'Convolutions in each block' }),
      kernel: Type.Integer({ minimum: 1, default: 3, description: 'Convolution size (odd: the padding keeps the size)' }),
      dropout: Type.Number({ minimum: 0, maximum: 0.99, default: 0.3, description: 'Dropout before the classifier' }),
      ...inputOptionsSchema({ imageSize: 48 }),
    },
    { additionalProperties: false },
  ),
  create(o, ctx): BackboneFactory {
    const input = inputConfig('small-cnn', o);
    if (o.kernel % 2 !== 1) throw new Error(`small-cnn options: kernel must be odd so the padding keeps the size, got ${o.kernel}`);
    if (input.imageSize < 2 ** o.widths.length) {
      throw new Error(
        `small-cnn options: image_size ${input.imageSize} is pooled below 1 px by ${o.widths.length} blocks; use at least ${2 ** o.widths.length} px or fewer widths`,
      );
    }
    const config = { ...o };
    return convFactory(
      'small-cnn',
      config,
      input,
      smallCnn({ channels: input.channels, widths: o.widths, convsPerBlock: o.convs_per_block, kernel: o.kernel, dropout: o.dropout }),
      ctx.seed,
    );
  },
});
