// A `sampler` plugin: which training images keep their labels. This one keeps the same number of
// labels in every class, drawn at random (from the random stream the core hands it); every other
// training image joins the unlabeled pool of the semi-supervised stage. Try it with its recipe:
//   ssfer plugins sampler --plugin balanced.ts
//   ssfer run balanced.yaml --scale smoke
import { definePlugin, indicesByClass, options, Type } from 'ssfer';

export default definePlugin({
  kind: 'sampler',
  name: 'balanced',
  description: 'keeps the labels of the same number of random images in every class; the rest is the unlabeled pool',
  options: options({
    per_class: Type.Integer({ minimum: 1, default: 25, description: 'labels kept per class (a class with fewer images keeps all of them)' }),
  }),
  create: ({ per_class }) => ({
    name: 'balanced',
    // How tables describe the label budget.
    budget: `${per_class} labels/class`,
    split(labels, numClasses, rng) {
      const labeled: number[] = [];
      const unlabeled: number[] = [];
      for (const indices of indicesByClass(labels, numClasses)) {
        rng.shuffle(indices);
        labeled.push(...indices.slice(0, per_class));
        unlabeled.push(...indices.slice(per_class));
      }
      // Sorted, so the split does not depend on the order of the classes.
      return { labeled: Int32Array.from(labeled).sort(), unlabeled: Int32Array.from(unlabeled).sort() };
    },
  }),
});
