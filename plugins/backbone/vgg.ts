import { definePlugin } from '../../src/core/plugin.ts';
import type { BackboneFactory } from '../../src/contracts/backbone.ts';
import { convFactory, inputConfig, inputOptionsSchema, type InputOptions } from './cnn/options.ts';
import { vgg, VGG_LAYERS, type VggDepth } from './cnn/vgg.ts';

interface VggOptions extends InputOptions {
  depth: number;
  batch_norm: boolean;
  dropout: number;
}

export default definePlugin<VggOptions, BackboneFactory>({
  kind: 'backbone',
  name: 'vgg',
  description: 'VGG-11/13/16/19 in torchvision’s layout, with BatchNorm by default (vgg13_bn, as the FER papers use); 7×7 adaptive pool, 4096-wide classifier',
  options: {
    type: 'object',
    additionalProperties: false,
    properties: {
      depth: { enum: Object.keys(VGG_LAYERS).map(Number), default: 13, description: 'VGG-11, -13 (133.1 M weights with BatchNorm at 1000 classes), -16 or -19' },
      batch_norm: { type: 'boolean', default: true, description: 'BatchNorm after every convolution (torchvision’s vgg*_bn)' },
      dropout: { type: 'number', minimum: 0, maximum: 0.99, default: 0.5, description: 'Dropout after each of the two 4096-wide layers' },
      ...inputOptionsSchema({ imageSize: 224 }),
    },
  },
  create(o, ctx) {
    const input = inputConfig('vgg', o);
    const arch = vgg({ depth: o.depth as VggDepth, batchNorm: o.batch_norm, channels: input.channels, imageSize: input.imageSize, dropout: o.dropout });
    return convFactory('vgg', { ...o }, input, arch, ctx.seed);
  },
});
