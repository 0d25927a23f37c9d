// A `dataset` plugin: a made-up facial-expression set drawn on the fly, where the class is where
// a bright square (the "face") sits on a noisy background. A dataset read from disk has the same
// shape: load() returns both splits as dense arrays at the size the model takes, and pool()
// the unlabeled images pre-training learns from. Try it with its recipe:
//   ssfer plugins dataset --plugin squares.ts
//   ssfer run squares.yaml --scale smoke
import { definePlugin, options, Rng, Type, type FerData, type ImagePool, type Split } from 'ssfer';

/** `count` images of `size` px; image i shows class `labels[i]`, its square's box in `boxes`. */
function draw(count: number, size: number, classes: number, rng: Rng, labelOf: (i: number) => number): Split {
  const images = new Float32Array(count * size * size * 3);
  const labels = new Int32Array(count);
  const boxes = new Float32Array(count * 4);
  const side = Math.max(2, Math.round(size / 4));
  for (let i = 0; i < count; i++) {
    const label = labelOf(i);
    labels[i] = label;
    // Class k puts the square at the k-th of `classes` places around a circle, give or take a pixel.
    const angle = (2 * Math.PI * label) / classes;
    const cx = size / 2 + (size / 3) * Math.cos(angle) + rng.uniform(-1, 1);
    const cy = size / 2 + (size / 3) * Math.sin(angle) + rng.uniform(-1, 1);
    const [x1, y1] = [Math.max(0, Math.round(cx - side / 2)), Math.max(0, Math.round(cy - side / 2))];
    const [x2, y2] = [Math.min(size, x1 + side), Math.min(size, y1 + side)];
    boxes.set([x1, y1, x2, y2], i * 4);
    const brightness = rng.uniform(0.7, 1);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = x >= x1 && x < x2 && y >= y1 && y < y2;
        for (let c = 0; c < 3; c++) images[((i * size + y) * size + x) * 3 + c] = inside ? brightness : rng.uniform(0, 0.3);
      }
    }
  }
  // Every box is the dataset's own (as annotated faces are): FaceMix and face-boxes: auto use them as they are.
  return { size: count, images, labels, boxes, annotatedBoxes: new Uint8Array(count).fill(1) };
}

export default definePlugin({
  kind: 'dataset',
  name: 'squares',
  description: 'made-up expressions: the class is where a bright square sits on a noisy background',
  options: options({
    classes: Type.Integer({ minimum: 2, maximum: 8, default: 7, description: 'how many classes (the first of neutral, happiness, … are their names)' }),
    train_size: Type.Integer({ minimum: 1, default: 700, description: 'training images when the recipe asks for all of them (data.size.train null)' }),
    test_size: Type.Integer({ minimum: 1, default: 300, description: 'test images when the recipe asks for all of them' }),
  }),
  create: (o, ctx) => ({
    // Creating the source is cheap; nothing is drawn (or read from disk) before load().
    async load(request): Promise<FerData> {
      const size = request.imageSize;
      const names = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'].slice(0, o.classes);
      // Balanced classes in a shuffled order, each split from its own stream of the recipe's seed.
      const split = (count: number, name: string) => {
        const rng = Rng.derive(ctx.seed, 'squares', name);
        const order = rng.shuffle(Int32Array.from({ length: count }, (_, i) => i % o.classes));
        return draw(count, size, o.classes, rng, (i) => order[i]!);
      };
      return {
        name: 'squares',
        displayName: 'Squares',
        classes: names,
        imageSize: size,
        train: split(request.trainSize ?? o.train_size, 'train'),
        test: split(request.testSize ?? o.test_size, 'test'),
      };
    },
    // The unlabeled images a pre-training stage (MAE) learns from before fine-tuning.
    async pool(kind, count, imageSize): Promise<ImagePool> {
      const { images } = draw(count, imageSize, o.classes, Rng.derive(ctx.seed, 'squares', 'pool', kind), (i) => i % o.classes);
      return { kind, imageSize, size: count, images };
    },
    // What pool() depends on: cells whose pools are the same share one pre-training.
    poolKey: () => ({ dataset: 'squares', classes: o.classes, seed: ctx.seed }),
  }),
});
