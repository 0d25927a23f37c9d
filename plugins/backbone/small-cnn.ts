import { definePlugin } from '../../src/core/plugin.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema, type InputOptions } from './cnn/options.ts';
import { smallCnn } from './cnn/small.ts';

interface SmallCnnOptions extends InputOptions {
  widths: number[];
  convs_per_block: number;
  kernel: number;
  dropout: number;
}

export default definePlugin<SmallCnnOptions, BackboneFactory>({
  kind: 'backbone',
  name: 'small-cnn',
  description: 'sanity baseline: blocks of 3×3 conv → BatchNorm → ReLU (×2) and a 2×2 max pool, global average pool, dropout, linear head',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      widths: {
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        minItems: 1,
        default: [32, 64, 128],
        description: 'Channels of each block (one 2×2 max pool per block)',
      },
      convs_per_block: { type: 'integer', minimum: 1, default: 2, description: 'Convolutions in each block' },
      kernel: { type: 'integer', minimum: 1, default: 3, description: 'Convolution size (odd: the padding keeps the size)' },
      dropout: { type: 'number', minimum: 0, maximum: 0.99, default: 0.3, description: 'Dropout before the classifier' },
      ...inputOptionsSchema({ imageSize: 48 }),
    },
  },
  create(o, ctx) {
    const input = inputConfig('small-cnn', o);
    if (o.kernel % 2 !== 1) throw new Error(`small-cnn options: kernel must be odd so the padding keeps the size, got ${o.kernel}`);
    if (input.imageSize < 2 ** o.widths.length) {
      throw new Error(`small-cnn options: image_size ${input.imageSize} is pooled below 1 px by ${o.widths.length} blocks; use at least ${2 ** o.widths.length} px or fewer widths`);
    }
    const config = { ...o };
    return convFactory('small-cnn', config, input, smallCnn({ channels: input.channels, widths: o.widths, convsPerBlock: o.convs_per_block, kernel: o.kernel, dropout: o.dropout }), ctx.seed);
  },
});
