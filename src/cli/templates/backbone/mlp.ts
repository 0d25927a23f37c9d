// A `backbone` plugin: a multi-layer perceptron on the raw pixels (one hidden ReLU layer, then a
// linear classifier). The plugin is a factory: the core builds the model once it knows the
// number of classes (and builds copies of it, for EMA weights and teachers). Try it:
//   ssfer plugins backbone --plugin mlp.ts
//   ssfer run mlp.yaml --scale smoke
import {
  definePlugin,
  loadInto,
  options,
  ParamSet,
  Rng,
  stateOf,
  tf,
  Type,
  type Backbone,
  type BackboneFactory,
  type LoadStateOptions,
  type NamedTensors,
} from 'ssfer';

/** The pixels are centred on 0 before the first layer (the kept model's manifest says so). */
const MEAN = 0.5;

class Mlp implements Backbone {
  readonly kind = 'mlp';
  readonly channels = 3;
  // Weights under stable names, the classifier's under `head.` (a pre-trained encoder loads under a new head).
  private readonly params: ParamSet;

  constructor(
    readonly imageSize: number,
    readonly numClasses: number,
    readonly featureDim: number,
    seed: number,
    trainable: boolean,
  ) {
    const inputs = imageSize * imageSize * this.channels;
    // He-normal for the ReLU layer, Glorot-like for the classifier, drawn from the given seed.
    const rng = new Rng(seed);
    const normal = (n: number, std: number) => () => Float32Array.from({ length: n }, () => rng.gauss(0, std));
    this.params = new ParamSet('mlp', trainable);
    this.params.add('hidden.weight', [inputs, featureDim], normal(inputs * featureDim, Math.sqrt(2 / inputs)));
    this.params.add('hidden.bias', [featureDim], new Float32Array(featureDim));
    this.params.add('head.weight', [featureDim, numClasses], normal(featureDim * numClasses, Math.sqrt(1 / featureDim)));
    this.params.add('head.bias', [numClasses], new Float32Array(numClasses));
  }

  /** [B, H, W, 3] in [0, 1] → [B, featureDim]. */
  features(images: tf.Tensor4D): tf.Tensor2D {
    if (images.shape[1] !== this.imageSize || images.shape[2] !== this.imageSize) {
      throw new Error(`mlp: images are ${images.shape[1]}×${images.shape[2]}, the model takes ${this.imageSize}×${this.imageSize}`);
    }
    return tf.tidy(() => {
      const x = tf.sub(tf.reshape(images, [images.shape[0], -1]), MEAN);
      return tf.relu(tf.add(tf.matMul(x, this.params.get('hidden.weight')), this.params.get('hidden.bias'))) as tf.Tensor2D;
    });
  }

  classify(features: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(features, this.params.get('head.weight')), this.params.get('head.bias')) as tf.Tensor2D);
  }

  logits(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.classify(this.features(images)));
  }

  namedVariables(): ReadonlyMap<string, tf.Variable> {
    return this.params.entries();
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.entries().values()].filter((v) => v.trainable);
  }

  headVariables(): tf.Variable[] {
    return [this.params.get('head.weight'), this.params.get('head.bias')];
  }

  noWeightDecay(name: string): boolean {
    return name.endsWith('.bias');
  }

  state(): NamedTensors {
    return stateOf(this.params.entries());
  }

  loadState(record: NamedTensors, options?: LoadStateOptions) {
    return loadInto('mlp', this.params.entries(), record, options);
  }

  dispose(): void {
    this.params.dispose();
  }
}

export default definePlugin({
  kind: 'backbone',
  name: 'mlp',
  description: 'a multi-layer perceptron on the raw pixels: one hidden ReLU layer and a linear classifier',
  options: options({
    image_size: Type.Integer({
      minimum: 4,
      maximum: 128,
      default: 16,
      description: 'height = width of the images it takes (the data is drawn or resized to it)',
    }),
    hidden: Type.Integer({ minimum: 1, default: 64, description: 'width of the hidden layer' }),
  }),
  create: ({ image_size, hidden }, ctx): BackboneFactory => {
    const inputs = image_size * image_size * 3;
    return {
      name: 'mlp',
      // What the model is, for stage keys and the kept model's manifest.
      config: { imageSize: image_size, hidden, inputMean: [MEAN, MEAN, MEAN], inputStd: [1, 1, 1] },
      imageSize: image_size,
      build: (numClasses, seed = ctx.seed, options) => new Mlp(image_size, numClasses, hidden, seed, options?.trainable ?? true),
      parameterCount: (numClasses) => {
        const total = inputs * hidden + hidden + hidden * numClasses + numClasses;
        return { total, trainable: total };
      },
    };
  },
});
