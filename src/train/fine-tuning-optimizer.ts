import type { Backbone } from '../contracts/backbone.ts';
import { Type } from '../core/schema.ts';
import { AdamW } from './optimizer.ts';
import type { TrainingStageOptions } from './stage-options.ts';

/** The fine-tuning stages' `layer_decay` option (see `layerDecayScale`). */
export const layerDecayOption = () =>
  Type.Number({
    minimum: 0,
    maximum: 1,
    default: 1,
    description:
      'layer-wise learning-rate decay: block i of L trains at lr·d^(L − i), the embeddings at lr·d^(L + 1), the head at lr (BEiT, MAE fine-tuning: 0.75); 1: one rate (the authors); 0: only the head and the final norm train, on frozen features (a linear probe of the pre-training, as MAE’s linear probing)',
  });

/**
 * Layer-wise learning-rate decay (BEiT; MAE's fine-tuning, 0.75 for ViT-B; USB's ViTs): a weight
 * at layer l of L trains at lr·decay^(L − l), so the head keeps the stage's rate and the
 * embeddings get the smallest. Undefined (one rate) at decay 1; a backbone that does not number
 * its layers (`layerOf`) cannot take a lower one.
 */
export function layerDecayScale(model: Backbone, decay: number, stage: string): ((name: string) => number) | undefined {
  if (decay === 1) return undefined;
  const layerOf = model.layerOf?.bind(model);
  if (!layerOf)
    throw new Error(
      `${stage}: layer_decay ${decay} needs a backbone that numbers its layers (layerOf); the ${model.kind} backbone does not: set layer_decay to 1`,
    );
  return (name) => {
    const { layer, layers } = layerOf(name);
    return Math.pow(decay, layers - layer);
  };
}

/** The options of a fine-tuning stage its optimizer reads. */
export type FineTuningOptimizerOptions = Pick<TrainingStageOptions, 'betas' | 'weight_decay'> & { readonly layer_decay: number };

/**
 * AdamW over a fine-tuning stage's trainable weights: the backbone's decay exemptions and the
 * stage's layer decay. The weights whose rate the decay makes 0 (every layer below the top at
 * `layer_decay` 0) are left out: frozen, with no moments and no gradient computed for them.
 */
export function fineTuningOptimizer(model: Backbone, o: FineTuningOptimizerOptions, stage: string): AdamW {
  const lrScale = layerDecayScale(model, o.layer_decay, stage);
  const trained = [...model.namedVariables()].filter(([name, v]) => v.trainable && (lrScale === undefined || lrScale(name) > 0));
  if (trained.length === 0) throw new Error(`${stage}: no weight of the ${model.kind} backbone would train at layer_decay ${o.layer_decay}`);
  return new AdamW(new Map(trained), {
    beta1: o.betas[0],
    beta2: o.betas[1],
    weightDecay: o.weight_decay,
    noDecay: (name) => model.noWeightDecay(name),
    lrScale,
  });
}
