import path from 'node:path';
import { expect } from 'chai';
import { RecipeError, formatDiagnostic } from '../../src/recipe/diagnostics.ts';
import { loadRecipeFile } from '../../src/recipe/load.ts';
import { parseOverride, resolveRecipe, seedOf } from '../../src/recipe/recipe.ts';
import { createRegistry, type PluginRegistry } from '../../src/core/registry.ts';
import { fixtures, projectRoot, writeFiles } from '../helpers.ts';

const recipes = path.join(fixtures, 'recipes');

async function problems(file: string, opts: { sets?: string[]; scale?: string; seeds?: string } = {}): Promise<string[]> {
  try {
    await resolveRecipe(file, { ...opts, registry });
  } catch (err) {
    if (err instanceof RecipeError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  throw new Error('expected the recipe to be refused');
}

let registry: PluginRegistry;
before(async () => {
  registry = await createRegistry();
});

describe('recipe loading: extends and merge', () => {
  it('deep-merges mappings, child values win, positions follow the value', () => {
    const l = loadRecipeFile(path.join(recipes, 'child.yaml'));
    expect(l.value.title).to.equal('fixture child');
    expect(l.value.seed).to.equal(7); // from the base
    const sup = (l.value.pipeline as any).supervised;
    expect(sup.lr).to.equal(0.002);
    expect(sup.epochs).to.equal(3);
    expect(sup.mixing.kappa.use).to.equal('iou');
    expect(l.values.get('pipeline.supervised.lr')).to.include({ line: 5, col: 9 });
    expect(path.basename(l.values.get('pipeline.supervised.lr')!.file)).to.equal('child.yaml');
    expect(path.basename(l.values.get('pipeline.supervised.epochs')!.file)).to.equal('base.yaml');
    expect(l.value).to.not.have.property('extends');
  });

  it('replaces lists instead of merging them', () => {
    const dir = writeFiles({
      'base.yaml': 'title: t\nplugins: [a.ts, b.ts]\n',
      'child.yaml': 'extends: base.yaml\nplugins: [c.ts]\n',
    });
    expect(loadRecipeFile(path.join(dir, 'child.yaml')).value.plugins).to.deep.equal(['c.ts']);
  });

  it('applies several bases in order, the later one winning', () => {
    const dir = writeFiles({
      'a.yaml': 'seed: 1\ntitle: a\n',
      'b.yaml': 'seed: 2\n',
      'c.yaml': 'extends: [a.yaml, b.yaml]\n',
    });
    const v = loadRecipeFile(path.join(dir, 'c.yaml')).value;
    expect(v).to.deep.equal({ seed: 2, title: 'a' });
  });

  it('refuses an extends cycle, naming the chain and the place', async () => {
    const msgs = await problems(path.join(recipes, 'cycle-a.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(/cycle-b\.yaml:3:5: extends\.0: extends cycle: .*cycle-a\.yaml → .*cycle-b\.yaml → .*cycle-a\.yaml/);
  });

  it('refuses a missing extends target at the line that names it', async () => {
    const dir = writeFiles({ 'r.yaml': 'title: x\nextends:\n  - ./nowhere.yaml\n' });
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs[0]).to.match(/r\.yaml:3:5: extends\.0: cannot read recipe '.*nowhere\.yaml' \(no such file\)/);
  });

  it('reports a YAML syntax error with line and column', async () => {
    const dir = writeFiles({ 'bad.yaml': 'title: x\npipeline:\n  supervised: {epochs: 3\nseed: 1\n' });
    const msgs = await problems(path.join(dir, 'bad.yaml'));
    expect(msgs[0]).to.match(/bad\.yaml:\d+:\d+: yaml: /);
  });

  it('refuses duplicate keys', async () => {
    const dir = writeFiles({ 'dup.yaml': 'title: x\nseed: 1\nseed: 2\n' });
    expect((await problems(path.join(dir, 'dup.yaml')))[0]).to.match(/dup\.yaml:3:1: yaml: .*unique/i);
  });
});

describe('recipe validation', () => {
  const base = path.join(recipes, 'base.yaml');
  const write = (extra: string) => writeFiles({ 'base.yaml': '', 'r.yaml': `extends: ${base}\n${extra}` });

  it('accepts a valid recipe and fills every default from the plugin schemas', async () => {
    const r = await resolveRecipe(base, { registry });
    expect(r.cells).to.have.length(1);
    const cfg = r.cells[0]!.config as any;
    expect(cfg.id).to.equal(undefined);
    expect(cfg.pipeline.supervised.mixing.alpha).to.equal(1); // facemix default
    expect(cfg.pipeline.supervised.label_smoothing).to.equal(0.1); // core default
    // slot default, with its nested detector slot's defaults
    expect(cfg.data.boxes).to.deep.equal({
      use: 'auto',
      detector: {
        use: 'face-api',
        model: 'ssd-mobilenet',
        min_confidence: 0.5,
        pad: 0.5,
        several_faces: 'most-confident',
        fallback: [25, 25, 220, 220],
        cache: null,
      },
    });
    expect(cfg.scale).to.equal('small');
  });

  it('suggests the closest plugin name for a typo and lists the known ones', async () => {
    const dir = write('pipeline:\n  supervised:\n    mixing:\n      kappa: { use: iuo }\n');
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.deep.equal([
      `${path.join(dir, 'r.yaml')}:5:21: pipeline.supervised.mixing.kappa.use: unknown kappa 'iuo' — did you mean 'iou'? known: fsim, iou, psnr, ssim`,
    ]);
  });

  it('refuses an unknown key at the key, with a suggestion', async () => {
    const dir = write('pipeline:\n  supervised:\n    epochz: 3\n');
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(/r\.yaml:4:5: pipeline\.supervised\.epochz: unknown key 'epochz' — did you mean 'epochs'\?/);
  });

  it('refuses an unknown key inside a plugin options block', async () => {
    const dir = write('model:\n  backbone: { use: vit, presett: tiny }\n');
    expect((await problems(path.join(dir, 'r.yaml')))[0]).to.match(/r\.yaml:3:25: model\.backbone\.presett: unknown key 'presett' — did you mean 'preset'\?/);
  });

  it('refuses an out-of-range number such as mask_ratio: 1.5', async () => {
    const dir = write('pipeline:\n  pretrain:\n    use: mae\n    mask_ratio: 1.5\n');
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(/r\.yaml:5:17: pipeline\.pretrain\.mask_ratio: must be < 1 \(got 1\.5\)/);
  });

  it('refuses a wrong type such as seed: banana', async () => {
    const dir = write('seed: banana\n');
    expect(await problems(path.join(dir, 'r.yaml'))).to.have.length(1);
    expect((await problems(path.join(dir, 'r.yaml')))[0]).to.match(/r\.yaml:2:7: seed: must be integer \(got "banana"\)/);
  });

  it('reports every problem at once', async () => {
    const dir = write('seed: banana\npipeline:\n  supervised:\n    epochz: 3\n    mixing: { use: facemix, kappa: { use: iuo } }\n');
    expect(await problems(path.join(dir, 'r.yaml'))).to.have.length(3);
  });

  it('points at the base file when the problem was written there', async () => {
    const dir = writeFiles({ 'a.yaml': 'title: t\npipeline:\n  supervised:\n    lr: -1\n', 'b.yaml': 'extends: a.yaml\nseed: 3\n' });
    expect((await problems(path.join(dir, 'b.yaml')))[0]).to.match(/a\.yaml:4:9: pipeline\.supervised\.lr: must be > 0/);
  });

  it('lets a recipe switch plugins without tripping on the old plugin’s options', async () => {
    const dir = write('pipeline:\n  supervised:\n    mixing: { use: none }\n');
    const r = await resolveRecipe(path.join(dir, 'r.yaml'), { registry });
    expect((r.cells[0]!.config as any).pipeline.supervised.mixing).to.deep.equal({ use: 'none' });
  });

  it('still reports a typo written beside a switched plugin', async () => {
    const dir = write('pipeline:\n  supervised:\n    mixing: { use: mixup, alphaa: 2 }\n');
    expect((await problems(path.join(dir, 'r.yaml')))[0]).to.match(/mixing\.alphaa: unknown key 'alphaa' — did you mean 'alpha'\?/);
  });

  it('accepts a bare plugin name as shorthand for { use: name }', async () => {
    const dir = write('pipeline:\n  supervised:\n    mixing: { use: facemix, kappa: ssim }\n');
    const r = await resolveRecipe(path.join(dir, 'r.yaml'), { registry });
    expect((r.cells[0]!.config as any).pipeline.supervised.mixing.kappa.use).to.equal('ssim');
  });

  it('takes the default plugin for a slot written without use:, with the written options over its defaults', async () => {
    const dir = write('pipeline:\n  supervised:\n    epochs: 3\n  pretrain:\n    use: mae\n    augment: { flip: 0 }\n');
    const cfg = (await resolveRecipe(path.join(dir, 'r.yaml'), { registry })).cells[0]!.config as any;
    expect(cfg.pipeline.supervised).to.include({ use: 'supervised', epochs: 3, few_labels_epochs: 1000 });
    expect(cfg.pipeline.supervised.mixing.use).to.equal('facemix');
    // mae's augment default is { use: weak, scale: [0.2, 1.0] }: the written flip goes over it.
    expect(cfg.pipeline.pretrain.augment).to.deep.equal({ use: 'weak', scale: [0.2, 1.0], ratio: [0.75, 1.3333], flip: 0 });
  });

  it('switches a slot written without use: to another plugin, dropping the default plugin’s options', async () => {
    const dir = writeFiles({
      'plugin.mjs':
        "export default { kind: 'finetune', name: 'frozen', description: 'trains nothing', options: { type: 'object', properties: {} }, create: () => ({ name: 'frozen', startsFrom: 'weights', run: async () => ({ summary: 'frozen' }) }) };\n",
      'r.yaml': 'title: t\npipeline:\n  supervised:\n    epochs: 3\n    mixing: { use: none }\n',
    });
    const r = await resolveRecipe(path.join(dir, 'r.yaml'), { pluginFiles: [path.join(dir, 'plugin.mjs')], sets: ['pipeline.supervised.use=frozen'] });
    expect((r.cells[0]!.config as any).pipeline.supervised).to.deep.equal({ use: 'frozen' });
  });

  it('applies a scale overlay', async () => {
    const small = await resolveRecipe(base, { registry });
    const smoke = await resolveRecipe(base, { registry, scale: 'smoke' });
    expect((small.cells[0]!.config as any).pipeline.supervised.epochs).to.equal(3);
    expect((smoke.cells[0]!.config as any).pipeline.supervised.epochs).to.equal(1);
    expect(smoke.scale).to.equal('smoke');
  });

  it('refuses an unknown scale', async () => {
    expect((await problems(base, { scale: 'huge' }))[0]).to.match(/<--scale huge>:1:1: scale: unknown scale 'huge'; choose one of smoke, small, paper/);
  });
});

describe('--set overrides', () => {
  const base = path.join(recipes, 'base.yaml');

  it('reads values as YAML, so numbers, booleans and lists are typed', () => {
    expect(parseOverride('pipeline.supervised.lr=1e-3').value).to.equal(0.001);
    expect(parseOverride('evaluation.use_ema=false').value).to.equal(false);
    expect(parseOverride('pipeline.supervised.betas=[0.9, 0.99]').value).to.deep.equal([0.9, 0.99]);
    expect(parseOverride('data.dataset.use=rafdb').value).to.equal('rafdb');
  });

  it('overrides the file and is validated like it', async () => {
    const r = await resolveRecipe(base, { registry, sets: ['pipeline.supervised.epochs=9', 'pipeline.supervised.mixing.kappa=ssim'] });
    expect((r.cells[0]!.config as any).pipeline.supervised.epochs).to.equal(9);
    expect((r.cells[0]!.config as any).pipeline.supervised.mixing.kappa.use).to.equal('ssim');
    const msgs = await problems(base, { sets: ['pipeline.supervised.epochs=many'] });
    expect(msgs).to.deep.equal(['<--set pipeline.supervised.epochs=many>:1:28: pipeline.supervised.epochs: must be integer (got "many")']);
  });

  it('applies before the grid: --set grid.rows changes the table (and drops the paper’s numbers), --set reference gives them', async () => {
    const child = path.join(recipes, 'child.yaml');
    const rows = 'grid.rows=[{name: lr, path: pipeline.supervised.lr, values: [0.01, 0.1, 1]}]';
    const r = await resolveRecipe(child, { registry, sets: [rows] });
    expect(r.cells.map((c) => c.id))
      .to.include('lr=0.01/dataset=rafdb/labels=0.05')
      .and.include('lr=1/dataset=affectnet8/labels=0.01');
    expect(r.cells.map((c) => (c.config as any).pipeline.supervised.lr)).to.deep.equal([0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 1, 1, 1]);
    expect(r.reference).to.equal(undefined);
    const given = await resolveRecipe(child, { registry, sets: [rows, 'reference.values=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]'] });
    expect(given.reference!.values[2]).to.deep.equal([7, 8, 9]);
  });

  it('refuses a value a grid axis sets, which would make the axis’s rows one configuration, naming the axis and where it is written', async () => {
    const child = path.join(recipes, 'child.yaml');
    const msgs = await problems(child, { sets: ['pipeline.supervised.mixing.kappa.use=iou', 'data.dataset.classes=8', 'pipeline.supervised.epochs=3'] });
    expect(msgs).to.have.length(2);
    expect(msgs[0]).to.match(
      /^<--set pipeline\.supervised\.mixing\.kappa\.use=iou>:1:38: pipeline\.supervised\.mixing\.kappa\.use: the grid's axis 'kappa' sets pipeline\.supervised\.mixing\.kappa\.use \(.*child\.yaml:\d+:\d+\): .*one and the same configuration/,
    );
    expect(msgs[1]).to.match(/^<--set data\.dataset\.classes=8>:1:22: data\.dataset\.classes: the grid's axis 'dataset' sets data\.dataset \(/);
  });

  it('refuses a malformed flag', async () => {
    expect((await problems(base, { sets: ['no-equals-sign'] }))[0]).to.match(/expected path=value/);
  });
});

describe('grid expansion', () => {
  it('expands rows × columns with dependent axes and stable readable ids', async () => {
    const r = await resolveRecipe(path.join(recipes, 'child.yaml'), { registry });
    expect(r.cells.map((c) => c.id)).to.deep.equal([
      'kappa=iou/dataset=rafdb/labels=0.05',
      'kappa=iou/dataset=rafdb/labels=0.25',
      'kappa=iou/dataset=affectnet8/labels=0.01',
      'kappa=ssim/dataset=rafdb/labels=0.05',
      'kappa=ssim/dataset=rafdb/labels=0.25',
      'kappa=ssim/dataset=affectnet8/labels=0.01',
    ]);
    expect(r.grid.columns.map((c) => c.labels.join(' '))).to.deep.equal(['RAF-DB 5%', 'RAF-DB 25%', 'AffectNet-8 1%']);
    const last = r.cells[5]!.config as any;
    expect(last.data.dataset).to.include({ use: 'affectnet', classes: 8, root: null });
    expect(last.data.labels.fraction).to.equal(0.01);
    expect(last.pipeline.supervised.mixing.kappa.use).to.equal('ssim');
    expect(r.reference!.values[1]).to.deep.equal([4, 5, null]);
  });

  it('refuses a reference whose shape does not match the grid', async () => {
    const dir = writeFiles({ 'r.yaml': `extends: ${path.join(recipes, 'child.yaml')}\nreference:\n  values:\n    - [1, 2, 3]\n` });
    expect((await problems(path.join(dir, 'r.yaml')))[0]).to.match(/r\.yaml:4:5: reference\.values: has 1 rows but the grid has 2/);
  });

  it('reports a grid value that the plugin refuses at the grid entry', async () => {
    const dir = writeFiles({
      'r.yaml': `extends: ${path.join(recipes, 'base.yaml')}\ngrid:\n  rows:\n    - name: k\n      path: pipeline.supervised.mixing.kappa.use\n      values: [iou, psnrr]\n`,
    });
    expect((await problems(path.join(dir, 'r.yaml')))[0]).to.match(
      /r\.yaml:6:21: pipeline\.supervised\.mixing\.kappa\.use: unknown kappa 'psnrr' — did you mean 'psnr'\?/,
    );
  });
});

describe('seeds and a baseline row', () => {
  const child = path.join(recipes, 'child.yaml');
  const withGrid = (extra: string) => writeFiles({ 'r.yaml': `extends: ${child}\n${extra}` });

  it('runs one seed unless the recipe or --seeds says more; --seeds wins over the recipe', async () => {
    expect((await resolveRecipe(child, { registry })).seeds).to.equal(1);
    const dir = withGrid('seeds: 3\n');
    const r = await resolveRecipe(path.join(dir, 'r.yaml'), { registry });
    expect(r.seeds).to.equal(3);
    expect(r.cells.every((c) => c.config.seeds === 3)).to.equal(true);
    expect((await resolveRecipe(path.join(dir, 'r.yaml'), { registry, seeds: '2' })).seeds).to.equal(2);
    expect((await resolveRecipe(path.join(dir, 'r.yaml'), { registry, seeds: '5', sets: ['seeds=4'] })).seeds).to.equal(5);
  });

  it('derives seed k as seed + k: seed 0 is the recipe seed itself', () => {
    expect([0, 1, 2].map((k) => seedOf(2024, k))).to.deep.equal([2024, 2025, 2026]);
    expect(seedOf(2 ** 32 - 1, 1)).to.equal(0);
  });

  it('refuses a wrong --seeds at the flag, and seeds that differ between cells at the grid value', async () => {
    expect(await problems(child, { seeds: 'many' })).to.deep.equal(['<--seeds many>:1:1: seeds: must be integer (got "many")']);
    expect(await problems(child, { seeds: '0' })).to.deep.equal([
      '<--seeds 0>:1:1: seeds: must be >= 1 (got 0): from 1 to 1000 seeds: each seed trains every cell once, and more than 1000 is a typo',
    ]);
    expect((await problems(child, { seeds: '5000' }))[0]).to.match(/^<--seeds 5000>:1:1: seeds: must be <= 1000 \(got 5000\)/);
    const dir = writeFiles({
      'r.yaml': `extends: ${path.join(recipes, 'base.yaml')}\ngrid:\n  rows:\n    - name: n\n      values:\n        - { value: a, set: { seeds: 2 } }\n        - { value: b, set: { seeds: 3 } }\n`,
    });
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(/r\.yaml:7:37: seeds: cell 'n=b' runs 3 seeds and 'n=a' 2; every cell runs the same seeds/);
  });

  it('refuses a launcher that differs between cells at the grid value, and a launcher option that does not exist at the flag', async () => {
    const dir = writeFiles({
      'r.yaml': `extends: ${path.join(recipes, 'base.yaml')}\ngrid:\n  rows:\n    - name: n\n      values:\n        - { value: a, set: { launcher.use: inline } }\n        - { value: b, set: { launcher: { use: processes, workers: 3 } } }\n`,
    });
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(
      /r\.yaml:7:40: launcher: cell 'n=b' would be trained by launcher \{"use":"processes","workers":3,.*the launcher trains the whole run: set it once/,
    );
    expect(await problems(child, { sets: ['launcher={use: processes, worker: 2}'] })).to.deep.equal([
      "<--set launcher={use: processes, worker: 2}>:1:10: launcher.worker: unknown key 'worker' — did you mean 'workers'? allowed here: use, workers, threads_per_worker, max_retries",
    ]);
  });

  it('finds the baseline row by its label, its id or its value', async () => {
    const labelled = writeFiles({
      'r.yaml': `extends: ${child}\ngrid:\n  rows:\n    - name: kappa\n      path: pipeline.supervised.mixing.kappa.use\n      values: [iou, ssim]\n      labels: { iou: IOU }\n  baseline: { row: IOU }\n`,
    });
    expect((await resolveRecipe(path.join(labelled, 'r.yaml'), { registry })).baseline).to.deep.equal({ row: 0, label: 'IOU' });
    for (const row of ['ssim', 'kappa=ssim']) {
      const dir = withGrid(`grid:\n  baseline: { row: ${row} }\n`);
      expect((await resolveRecipe(path.join(dir, 'r.yaml'), { registry })).baseline, row).to.deep.equal({ row: 1, label: 'ssim' });
    }
    expect((await resolveRecipe(child, { registry })).baseline).to.equal(null);
  });

  it('refuses a baseline that names no row at its file:line:col, listing the rows', async () => {
    const dir = withGrid('grid:\n  baseline: { row: fsim }\n');
    const msgs = await problems(path.join(dir, 'r.yaml'));
    expect(msgs).to.have.length(1);
    expect(msgs[0]).to.match(
      /r\.yaml:3:20: grid\.baseline\.row: 'fsim' names no row; name one by its label, its id or its value: iou \(kappa=iou\), ssim \(kappa=ssim\)$/,
    );
    const typo = withGrid('grid:\n  baseline: { rows: iou }\n');
    expect((await problems(path.join(typo, 'r.yaml'))).join('\n')).to.match(/r\.yaml:3:15: grid\.baseline\.rows: unknown key 'rows' — did you mean 'row'\?/);
    const noRows = writeFiles({ 'r.yaml': `extends: ${path.join(recipes, 'base.yaml')}\ngrid:\n  baseline: { row: x }\n` });
    expect((await problems(path.join(noRows, 'r.yaml')))[0]).to.match(/r\.yaml:3:20: grid\.baseline\.row: .*this grid has no row axes/);
  });
});

describe('analyses and figure axes', () => {
  const base = path.join(recipes, 'base.yaml');
  /** A recipe over the base fixture with the given lines. */
  const recipe = (text: string) => path.join(writeFiles({ 'r.yaml': `extends: ${base}\n${text}` }), 'r.yaml');
  const adversarial = `evaluation:
  analyses: [gradcam, { use: fgsm-regions, epsilons: [0, 0.05] }]
grid:
  metric: analysis.fgsm-regions.{region}.{eps}
  rows:
    - name: region
      values: [inside, outside]
    - name: labels
      path: data.labels.fraction
      values: [0.25, 0.5]
  columns:
    - name: eps
      values: [0, 0.05]
`;

  it('takes a list of analyses, each with its options checked and defaulted, a bare name meaning { use: name }', async () => {
    const r = await resolveRecipe(recipe(adversarial), { registry });
    const analyses = (r.cells[0]!.config as any).evaluation.analyses;
    expect(analyses[0]).to.deep.equal({ use: 'gradcam', per_class: 4, threshold: 0.3, target: 'predicted' });
    expect(analyses[1]).to.deep.include({ use: 'fgsm-regions', epsilons: [0, 0.05], threshold: 0.3 });
    expect(r.cells[0]!.slots.filter((s) => s.kind === 'analysis').map((s) => [s.path, s.use])).to.deep.equal([
      ['evaluation.analyses.0', 'gradcam'],
      ['evaluation.analyses.1', 'fgsm-regions'],
    ]);
    // No analysis by default.
    expect(((await resolveRecipe(base, { registry })).cells[0]!.config as any).evaluation.analyses).to.deep.equal([]);
  });

  it('makes one cell per value of the axes that set something; a figure axis only chooses the figure an entry shows', async () => {
    const r = await resolveRecipe(recipe(adversarial), { registry });
    expect(r.cells.map((c) => c.id)).to.deep.equal(['labels=0.25', 'labels=0.5']);
    // A cell's points hold the axes that set something; its row and column are its first entry's.
    expect(r.cells.map((c) => [c.row, c.column, c.rowPoint.labels])).to.deep.equal([
      [0, 0, ['0.25']],
      [1, 0, ['0.5']],
    ]);
    expect(r.grid.figureAxes).to.deep.equal(['region', 'eps']);
    expect(r.grid.entries).to.have.length(8);
    expect(r.grid.entries[3]).to.deep.equal({
      id: 'region=inside/labels=0.5/eps=0.05',
      row: 1,
      column: 1,
      cell: 'labels=0.5',
      figure: 'analysis.fgsm-regions.inside.0.05',
    });
    expect(r.grid.entries[6]).to.deep.include({ cell: 'labels=0.5', figure: 'analysis.fgsm-regions.outside.0' });
    expect(r.grid.percent).to.equal(true);
  });

  it('refuses a figure the cells do not report, naming the analysis to add or the figures there are', async () => {
    const missing = await problems(recipe(adversarial.replace('analyses: [gradcam, { use: fgsm-regions, epsilons: [0, 0.05] }]', 'analyses: [gradcam]')));
    expect(missing).to.have.length(1);
    expect(missing[0]).to.match(
      /r\.yaml:5:11: grid\.metric: grid\.metric 'analysis\.fgsm-regions\.\{region\}\.\{eps\}' shows figures of the analysis 'fgsm-regions', which cell labels=0\.25 does not run; add it to evaluation\.analyses \(the cell lists gradcam\)/,
    );
    const epsilon = await problems(recipe(adversarial.replace('epsilons: [0, 0.05]', 'epsilons: [0, 0.04]')));
    expect(epsilon[0]).to.match(
      /the analysis 'fgsm-regions' reports no figure inside\.0\.05, outside\.0\.05 with its options here; it reports inside\.0, outside\.0, inside\.0\.04/,
    );
    const root = await problems(recipe('grid:\n  metric: acuracy\n'));
    expect(root[0]).to.match(
      /grid\.metric: grid\.metric 'acuracy' shows 'acuracy', which is not a figure of a cell's metrics\.json; a figure's path starts with one of accuracy, /,
    );
  });

  it('refuses a placeholder that names no axis, and an axis that both chooses the figure and sets something', async () => {
    const noAxis = await problems(recipe(adversarial.replace('{eps}', '{epsilon}')));
    expect(noAxis.join('\n')).to.match(/r\.yaml:5:11: grid\.metric: \{epsilon\} names no axis of the grid \(axes: region, labels, eps\)/);
    const withPath = await problems(recipe(adversarial.replace('    - name: eps\n', '    - name: eps\n      path: seed\n')));
    expect(withPath.join('\n')).to.match(
      /grid\.columns\.0\.path: axis 'eps' is a figure axis \(grid\.metric names it as \{eps\}\): it chooses the figure an entry shows and sets nothing; remove path:/,
    );
    const withSet = await problems(recipe(adversarial.replace('values: [0, 0.05]\n', 'values: [0, { value: 0.05, set: { seed: 3 } }]\n')));
    expect(withSet.join('\n')).to.match(/grid\.columns\.0\.values\.1\.set: axis 'eps' is a figure axis/);
    const withoutSet = await problems(recipe('grid:\n  rows:\n    - name: k\n      values: [{ value: a, label: A }]\n'));
    expect(withoutSet[0]).to.match(
      /r\.yaml:5:16: grid\.rows\.0\.values\.0: needs set: \{ path: value \} \(what this value changes in the recipe\), or name the axis in grid\.metric as \{k\}/,
    );
  });

  it('refuses an analysis listed twice, an unknown one, and one whose backbone lacks what it needs', async () => {
    const twice = await problems(recipe('evaluation:\n  analyses: [params-flops, gradcam, params-flops]\n'));
    expect(twice).to.have.length(1);
    expect(twice[0]).to.match(
      /r\.yaml:3:37: evaluation\.analyses\.2\.use: analysis 'params-flops' is listed twice \(also at evaluation\.analyses\.0\); what an entry reports is keyed by its plugin's name, so list each once$/,
    );
    const unknown = await problems(recipe('evaluation:\n  analyses: [gradcm]\n'));
    expect(unknown[0]).to.match(
      /evaluation\.analyses\.0\.use: unknown analysis 'gradcm' — did you mean 'gradcam'\? known: fgsm-regions, gradcam, params-flops/,
    );
    const option = await problems(recipe('evaluation:\n  analyses: [{ use: fgsm-regions, threshold: 1.5 }]\n'));
    expect(option[0]).to.match(/r\.yaml:3:46: evaluation\.analyses\.0\.threshold: must be < 1/);
    const cnn = await problems(recipe('model:\n  backbone: { use: resnet, depth: 18, image_size: 32 }\nevaluation:\n  analyses: [params-flops, gradcam]\n'));
    expect(cnn).to.have.length(1);
    expect(cnn[0]).to.match(/evaluation\.analyses\.1\.use: analysis 'gradcam' needs a backbone that provides 'tokens', but model\.backbone is 'resnet'/);
  });
});

describe('every recipe in recipes/', () => {
  it('ablation-kappa plans to 48 cells with the paper reference beside each', async () => {
    const r = await resolveRecipe(path.join(projectRoot, 'recipes', 'ablation-kappa.yaml'), { registry, scale: 'smoke' });
    expect(r.cells).to.have.length(48);
    expect(r.cells[0]!.id).to.equal('kappa=psnr/dataset=rafdb/labels=0.05');
    expect(r.reference!.values[3]![0]).to.equal(80.96);
    expect(r.title).to.match(/^SSFER Table 14 — /);
  });

  // The paper's grid for each comparison table: rows, column labels, computed columns, rows only the paper has.
  const tables: { recipe: string; table: number; rows: string[]; columns: string[]; summary: string[]; others: number }[] = [
    {
      recipe: 'comparison-ssl-general',
      table: 3,
      rows: ['FixMatch', 'SSFER'],
      columns: ['RAF-DB', 'AffectNet-7'].flatMap((d) => [10, 25, 100, 250].map((n) => `${d} ${n} labels`)),
      summary: [],
      others: 10,
    },
    {
      recipe: 'comparison-ssl-fer',
      table: 4,
      rows: ['SSFER (ViT-Base)'],
      columns: ['RAF-DB', 'FERPlus-7'].flatMap((d) => [400, 1000, 4000].map((n) => `${d} ${n} labels`)),
      summary: [],
      others: 10,
    },
    {
      recipe: 'kfold',
      table: 5,
      rows: ['ViT-Base', 'ResNet-50', 'VGG13', 'MobileNetV3', 'SSFER-5%', 'SSFER-10%', 'SSFER-25%'],
      columns: ['RAF-DB', 'FERPlus'].flatMap((d) => [1, 2, 3, 4, 5].map((f) => `${d} Fold ${f}`)),
      summary: ['Average'],
      others: 1,
    },
    {
      recipe: 'label-noise',
      table: 8,
      rows: ['SSFER-5%', 'SSFER-10%', 'SSFER-25%'],
      columns: ['RAF-DB', 'FERPlus'].flatMap((d) => ['0%', '10%', '20%', '30%'].map((n) => `${d} ${n}`)),
      summary: ['Decline (↓)'],
      others: 6,
    },
    {
      recipe: 'other-tasks',
      table: 9,
      rows: ['Gender', 'Age'].flatMap((t) =>
        [...['MobileNetV3', 'ResNet-18', 'ResNet-50', 'VGG11', 'VGG13'], ...['5%', '10%', '25%'].map((f) => `SSFER-${f}`)].map((m) => `${t} ${m}`),
      ),
      columns: [1, 2, 3, 4, 5].map((f) => `Fold${f}`),
      summary: ['Average'],
      others: 10,
    },
    {
      recipe: 'comparison-supervised',
      table: 2,
      rows: ['SSFER-1%', 'SSFER-5%', 'SSFER-10%', 'SSFER-25%'],
      columns: ['RAF-DB', 'FERPlus', 'AffectNet-7', 'AffectNet-8'],
      summary: [],
      others: 27,
    },
  ];
  for (const t of tables) {
    it(`${t.recipe} lays out Table ${t.table}: ${t.rows.length} × ${t.columns.length} cells${t.summary.length ? ` + ${t.summary.join(', ')}` : ''}, ${t.others} paper-only rows`, async () => {
      const r = await resolveRecipe(path.join(projectRoot, 'recipes', `${t.recipe}.yaml`), { registry, scale: 'smoke' });
      expect(r.title).to.match(new RegExp(`^SSFER Table ${t.table} — `));
      expect(r.cells).to.have.length(t.rows.length * t.columns.length);
      expect(r.grid.rows.map((p) => p.labels.join(' '))).to.deep.equal(t.rows);
      expect(r.grid.columns.map((p) => p.labels.join(' '))).to.deep.equal(t.columns);
      expect(r.summary.map((s) => s.label)).to.deep.equal(t.summary);
      expect(r.reference!.others).to.have.length(t.others);
    });
  }

  it('params-flops lays out Table 6: nine backbones × params and FLOPs, one cell per backbone, nothing trained', async () => {
    const r = await resolveRecipe(path.join(projectRoot, 'recipes', 'params-flops.yaml'), { registry, scale: 'smoke' });
    expect(r.title).to.match(/^SSFER Table 6 — /);
    expect(r.cells).to.have.length(9);
    expect(r.grid.columns.map((p) => p.labels.join(' '))).to.deep.equal(['Params (M)', 'FLOPs (G)']);
    expect(r.grid.entries.slice(0, 2).map((e) => e.figure)).to.deep.equal(['analysis.params-flops.params_m', 'analysis.params-flops.gflops']);
    expect(r.grid.percent).to.equal(false);
    expect(r.reference!.values[5]).to.deep.equal([5.49, 1.1]); // ViT-Tiny
    for (const c of r.cells) {
      const config = c.config as any;
      expect(config.model.backbone.image_size).to.equal(224);
      expect(config.pipeline.pretrain.use).to.equal('none');
      expect(config.pipeline.supervised.epochs).to.equal(0);
      expect(config.pipeline.semi.use).to.equal('none');
      expect(config.evaluation.linear_probe.enabled).to.equal(false);
    }
  });

  it('adversarial lays out Table 7: regions × datasets by ε, four cells (the region and ε choose the figure)', async () => {
    const r = await resolveRecipe(path.join(projectRoot, 'recipes', 'adversarial.yaml'), { registry, scale: 'smoke' });
    expect(r.title).to.match(/^SSFER Table 7 — /);
    expect(r.cells.map((c) => c.id)).to.deep.equal(['dataset=rafdb', 'dataset=ferplus', 'dataset=affectnet7', 'dataset=affectnet8']);
    expect(r.grid.rows).to.have.length(8);
    expect(r.grid.columns.map((p) => p.labels.join(' '))).to.deep.equal(['Eps=0', 'Eps=0.02', 'Eps=0.04', 'Eps=0.06', 'Eps=0.08', 'Eps=0.10']);
    const entry = r.grid.entries.find((e) => e.row === 5 && e.column === 5)!;
    expect(entry).to.deep.include({ id: 'region=outside/dataset=ferplus/eps=0.1', cell: 'dataset=ferplus', figure: 'analysis.fgsm-regions.outside.0.1' });
    expect(r.reference!.values[5]![5]).to.equal(33.98);
    expect((r.cells[2]!.config as any).data.labels.fraction).to.equal(0.1);
  });

  it('the k-fold and noise recipes give every cell of a row the same sampler but for the varied option', async () => {
    const kfold = await resolveRecipe(path.join(projectRoot, 'recipes', 'kfold.yaml'), { registry, scale: 'smoke' });
    const labels = (id: string) => (kfold.cells.find((c) => c.id === id)!.config as any).data.labels;
    expect(labels('method=ssfer-10/dataset=ferplus/fold=3')).to.deep.equal({ use: 'kfold', folds: 5, fold: 3, fraction: 0.1, use_dataset_folds: true });
    expect((kfold.cells.find((c) => c.id === 'method=vit-base/dataset=rafdb/fold=0')!.config as any).pipeline.semi.use).to.equal('none');
    const noise = await resolveRecipe(path.join(projectRoot, 'recipes', 'label-noise.yaml'), { registry, scale: 'smoke' });
    expect((noise.cells.find((c) => c.id === 'method=ssfer-25/dataset=rafdb/noise=0.2')!.config as any).data.labels).to.deep.equal({
      use: 'noise',
      ratio: 0.2,
      sampler: { use: 'fraction', fraction: 0.25 },
    });
  });
});
