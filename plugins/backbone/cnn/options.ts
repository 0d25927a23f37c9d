import type { BackboneFactory, BuildOptions, ParameterCount } from '../../../src/contracts/backbone.ts';
import { Type, type Static, type TObject } from '../../../src/core/schema.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../vit/config.ts';
import { checkInputConfig, ConvNet, countParameters, type Architecture, type InputConfig } from './model.ts';

/** Schema of the options every convolutional backbone shares; `imageSize` and the normalisation defaults differ per plugin. */
export function inputOptionsSchema(defaults: { imageSize: number; mean?: readonly number[]; std?: readonly number[]; sizeNote?: string }) {
  return {
    image_size: Type.Integer({
      minimum: 1,
      default: defaults.imageSize,
      description: `Input height = width in pixels (${defaults.sizeNote ?? 'the network is fully convolutional and pools globally, so any size it does not pool below 1 px'})`,
    }),
    channels: Type.Integer({ minimum: 1, default: 3, description: 'Image channels' }),
    input_mean: Type.Array(Type.Number(), {
      minItems: 1,
      default: [...(defaults.mean ?? IMAGENET_MEAN)],
      description: 'Per-channel mean subtracted from the [0, 1] images',
    }),
    input_std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
      minItems: 1,
      default: [...(defaults.std ?? IMAGENET_STD)],
      description: 'Per-channel std the centred images are divided by',
    }),
  };
}

/** The options every convolutional backbone shares, as a recipe writes them. */
export type InputOptions = Static<TObject<ReturnType<typeof inputOptionsSchema>>>;

export function inputConfig(kind: string, o: InputOptions): InputConfig {
  const c = { imageSize: o.image_size, channels: o.channels, inputMean: o.input_mean, inputStd: o.input_std };
  checkInputConfig(kind, c);
  return c;
}

/** The factory a convolutional `backbone` plugin returns. */
export function convFactory<P>(
  name: string,
  config: Readonly<Record<string, unknown>>,
  input: InputConfig,
  arch: Architecture<P>,
  defaultSeed: number,
): BackboneFactory<ConvNet<P>> {
  return {
    name,
    config,
    imageSize: input.imageSize,
    build(numClasses: number, seed: number = defaultSeed, options?: BuildOptions) {
      return new ConvNet(arch, input, numClasses, seed, options?.trainable ?? true);
    },
    parameterCount(numClasses: number): ParameterCount {
      return countParameters(arch, numClasses);
    },
  };
}
