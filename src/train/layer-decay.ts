import type { Backbone } from '../contracts/backbone.ts';

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
