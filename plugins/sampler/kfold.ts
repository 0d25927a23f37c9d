import { definePlugin } from '../../src/core/plugin.ts';
import { options, Type } from '../../src/core/schema.ts';
import { Rng } from '../../src/core/rng.ts';
import { checkOfficialFolds, stratifiedFolds } from './internal/folds.ts';
import { fractionQuota, stratifiedPick } from '../../src/data/stratify.ts';

export default definePlugin({
  kind: 'sampler',
  name: 'kfold',
  description: 'K-fold cross-validation on the training set: one fold is evaluated on, a label fraction of the others is trained on (Tables 5 and 9)',
  options: options({
    folds: Type.Integer({ minimum: 2, default: 5, description: 'K' }),
    fold: Type.Integer({ minimum: 0, default: 0, description: 'which fold is held out for evaluation (0-based, below folds)' }),
    fraction: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 1,
      description: 'share of the training folds that keep labels, per class (the rest is the unlabeled pool)',
    }),
    use_dataset_folds: Type.Boolean({
      default: true,
      description: "use the dataset's official folds when it defines them (Adience); otherwise seeded folds stratified by class",
    }),
  }),
  create({ folds, fold, fraction, use_dataset_folds }, ctx) {
    if (fold >= folds) throw new Error(`sampler kfold: fold ${fold} is outside 0..${folds - 1} (folds: ${folds}); fold counts from 0`);
    return {
      name: 'kfold',
      budget: `fold ${fold + 1}/${folds}, ${+(fraction * 100).toFixed(4)}%`,
      split(labels, numClasses, rng, info) {
        // The caller's stream varies with every option of the slot, fold included; the partition
        // must not, or the K cells of one table would not share one partition into folds.
        const ids =
          use_dataset_folds && info?.folds
            ? checkOfficialFolds(info.folds, labels.length, folds)
            : stratifiedFolds(labels, numClasses, folds, Rng.derive(ctx.seed, 'kfold', folds));
        const heldOut: number[] = [];
        const training: number[] = [];
        ids.forEach((f, i) => (f === fold ? heldOut : training).push(i));
        if (heldOut.length === 0) throw new Error(`sampler kfold: fold ${fold} holds no training image; use fewer folds or more images`);
        return { ...stratifiedPick(labels, numClasses, rng, fractionQuota(fraction), training), heldOut: Int32Array.from(heldOut) };
      },
    };
  },
});
