// The settings where the authors' code and ours could differ (docs/fidelity.md): each default is
// read back as a recipe resolves it, both from the plugins' own defaults (a recipe that names only
// the plugins) and from recipes/base/ssfer.yaml at the paper's scale.
import path from 'node:path';
import { expect } from 'chai';
import type { CellConfig } from '../src/recipe/schema.ts';
import { resolveRecipe } from '../src/recipe/recipe.ts';
import { projectRoot, writeFiles } from './helpers.ts';

/** A recipe that names the plugins and sets nothing else: the plugins' defaults fill the rest. */
async function pluginDefaults(): Promise<CellConfig> {
  const dir = writeFiles({
    'recipe.yaml': `title: plugin defaults
data:
  dataset: { use: synthetic-faces }
model:
  backbone: { use: vit }
pipeline:
  pretrain: { use: mae }
  supervised: { use: supervised, mixing: { use: facemix }, augment: { use: weak } }
  semi: { use: ema-teacher, weak: { use: weak }, strong: { use: strong } }
`,
  });
  return (await resolveRecipe(path.join(dir, 'recipe.yaml'), { scale: 'paper' })).cells[0]!.config;
}

const baseRecipe = async (): Promise<CellConfig> =>
  (await resolveRecipe(path.join(projectRoot, 'recipes', 'base', 'ssfer.yaml'), { scale: 'paper' })).cells[0]!.config;

/** The options of a plugin slot as resolved, whatever its kind. */
const opts = (slot: unknown) => slot as Record<string, unknown>;

describe('fidelity to the authors’ code: the resolved defaults', function () {
  this.timeout(60_000);
  let configs: { name: string; config: CellConfig }[];
  before(async () => {
    configs = [
      { name: 'plugin defaults', config: await pluginDefaults() },
      { name: 'recipes/base/ssfer.yaml (paper)', config: await baseRecipe() },
    ];
  });
  const each = (check: (c: CellConfig, name: string) => void) => () => configs.forEach(({ config, name }) => check(config, name));

  it(
    'semi stage: a constant rate 1.5e-4 (no milestones), AdamW betas (0.9, 0.95), starting from the student’s weights',
    each((c, name) => {
      const semi = opts(c.pipeline.semi);
      expect(semi.lr, name).to.equal(1.5e-4);
      expect(semi.milestones, name).to.deep.equal([]);
      expect(semi.warmup_epochs, name).to.equal(0);
      expect(semi.betas, name).to.deep.equal([0.9, 0.95]);
      expect(semi.starts_from, name).to.equal('weights');
    }),
  );

  it(
    'label smoothing 0.1 on the mixed targets only; plain cross-entropy on the real images (L_i, L_j, no mixing)',
    each((c, name) => {
      const sup = opts(c.pipeline.supervised);
      expect(sup.label_smoothing, name).to.equal(0.1);
      expect(sup.real_label_smoothing, name).to.equal(0);
    }),
  );

  it(
    'random resized crop scale (0.2, 1.0) and ratio (3/4, 4/3) in the supervised, weak and strong transforms',
    each((c, name) => {
      const semi = opts(c.pipeline.semi);
      for (const [view, slot] of [
        ['supervised', opts(c.pipeline.supervised).augment],
        ['weak', semi.weak],
        ['strong', semi.strong],
      ] as const) {
        expect(opts(slot).scale, `${name}: ${view}`).to.deep.equal([0.2, 1.0]);
        expect(opts(slot).ratio, `${name}: ${view}`).to.deep.equal([0.75, 1.3333]);
      }
    }),
  );

  it(
    'supervised schedule: timm’s cosine per epoch over half the epochs (t_initial null), 5 warm-up epochs from 5e-5 to the paper’s 1e-4, minimum 1e-5',
    each((c, name) => {
      const sup = opts(c.pipeline.supervised);
      expect(sup.schedule, name).to.equal('timm-epoch');
      expect(sup.cosine_epochs, name).to.equal(null);
      expect([sup.warmup_epochs, sup.warmup_lr, sup.lr, sup.min_lr], name).to.deep.equal([5, 5e-5, 1e-4, 1e-5]);
      expect(sup.betas, name).to.deep.equal([0.9, 0.95]);
    }),
  );

  it(
    'RandAugment: timm’s list, 2 operations at magnitude 9 ± 0.5 of 10, increasing, probability 0.5, uncovered pixels the face mean in 8 bits',
    each((c, name) => {
      const strong = opts(opts(c.pipeline.semi).strong);
      expect(strong.op_set, name).to.equal('timm');
      expect([strong.ops, strong.magnitude, strong.magnitude_std, strong.magnitude_max, strong.prob, strong.increasing], name).to.deep.equal([
        2,
        9,
        0.5,
        10,
        0.5,
        true,
      ]);
      expect(strong.fill, name).to.deep.equal([150 / 255, 117 / 255, 103 / 255]);
    }),
  );

  it(
    'ViT input normalisation: the authors’ face mean and std',
    each((c, name) => {
      const vit = opts(c.model.backbone);
      expect(vit.input_mean, name).to.deep.equal([0.588, 0.459, 0.402]);
      expect(vit.input_std, name).to.deep.equal([0.228, 0.202, 0.19]);
    }),
  );

  it(
    'ViT position embedding: sin-cos at the start, trained while fine-tuning (timm’s pos_embed loaded with the MAE’s values)',
    each((c, name) => {
      const vit = opts(c.model.backbone);
      expect(vit.pos_embed, name).to.equal('sincos');
      expect(vit.pos_embed_trainable, name).to.equal(true);
    }),
  );

  it(
    'kept where the paper says otherwise: normalised-pixel MAE targets (the code: raw pixels), supervised peak rate 1e-4 (the code: 1.5e-4)',
    each((c, name) => {
      expect(opts(c.pipeline.pretrain).norm_pix, name).to.equal(true);
      expect(opts(c.pipeline.supervised).lr, name).to.equal(1e-4);
    }),
  );

  it('Table 7’s analyses: the focused region is CAM > 0.3 of the predicted class, FGSM at ε 0, 0.02 … 0.10; the paper’s own recipe says the same', async () => {
    const dir = writeFiles({ 'recipe.yaml': 'title: analysis defaults\nevaluation:\n  analyses: [gradcam, fgsm-regions]\n' });
    const recipes = [
      (await resolveRecipe(path.join(dir, 'recipe.yaml'), { scale: 'paper' })).cells[0]!.config,
      (await resolveRecipe(path.join(projectRoot, 'recipes', 'adversarial.yaml'), { scale: 'paper' })).cells[0]!.config,
    ];
    for (const config of recipes) {
      const [gradcam, fgsm] = config.evaluation.analyses.map(opts);
      expect(gradcam).to.include({ use: 'gradcam', threshold: 0.3, target: 'predicted' });
      expect(fgsm).to.include({ use: 'fgsm-regions', threshold: 0.3 });
      expect(fgsm!.epsilons).to.deep.equal([0, 0.02, 0.04, 0.06, 0.08, 0.1]);
    }
  });
});
