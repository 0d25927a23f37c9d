import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { resolveRecipe } from '../../src/recipe/recipe.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';

const bin = path.join(projectRoot, 'src', 'bin', 'ssfer.js');
const recipe = path.join(fixtures, 'recipes', 'tiny-analyses.yaml');

describe('the analysis kind, end to end (ssfer run on tiny synthetic faces)', function () {
  this.timeout(600_000);
  let dir: string;
  let out: string;
  let table: any;
  const metrics = (cell: string) => JSON.parse(fs.readFileSync(path.join(dir, 'cells', cell, 'seed-0', 'metrics.json'), 'utf8'));

  before(() => {
    out = tempDir();
    const r = spawnSync(process.execPath, [bin, 'run', recipe, '--json', '--backend', 'cpu', '--out', out], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    table = JSON.parse(r.stdout);
    const base = path.join(out, 'tiny-analyses');
    dir = path.join(base, fs.readdirSync(base)[0]!);
  });

  it('trains one cell per label fraction: the region and ε only choose the figure', () => {
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).cells).to.deep.equal(['labels=0.25', 'labels=0.5']);
    expect(fs.readdirSync(path.join(dir, 'cells')).sort()).to.deep.equal(['labels=0.25', 'labels=0.5']);
  });

  it('shows in the table the figure grid.metric names: each entry is its cell’s FGSM accuracy in %, the paper’s beside it', () => {
    expect(table.rows).to.deep.equal(['focused 25%', 'focused 50%', 'unfocused 25%', 'unfocused 50%']);
    expect(table.columnHeaders).to.deep.equal([['clean', 'ε 0.1']]);
    expect(table.cells).to.have.length(8);
    for (const c of table.cells) {
      expect(c.status, c.id).to.equal('done');
      const [, , eps] = c.id.split('/');
      const region = c.id.startsWith('region=inside') ? 'inside' : 'outside';
      const m = metrics(c.cell);
      const figure = m.analysis['fgsm-regions'][region][eps.slice('eps='.length)];
      expect(c.figure).to.equal(`analysis.fgsm-regions.${region}.${eps.slice('eps='.length)}`);
      expect(c.ours, c.id).to.equal(Math.round(figure * 10000) / 100);
      // Unattacked, the images are classified as the evaluation classified them: the analyses
      // study the evaluated weights (the EMA here) on the test images.
      if (eps === 'eps=0') expect(figure, c.id).to.equal(m.accuracy);
    }
    expect(table.cells.map((c: any) => c.paper)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(fs.readFileSync(path.join(dir, 'table.md'), 'utf8')).to.match(/\| unfocused 50% \| \d+\.\d\d \(7\.00\) \| \d+\.\d\d \(8\.00\) \|/);
  });

  it('keeps every analysis’s figures in metrics.json: the counts the closed formulas give, shares in [0, 1]', async () => {
    const m = metrics('labels=0.5');
    const r = await resolveRecipe(recipe);
    const backbone = r.registry.create('backbone', r.cells[0]!.config.model.backbone, { seed: 5, scale: 'small', recipeDir: '.' });
    const pf = m.analysis['params-flops'];
    expect(pf.parameters).to.equal(backbone.parameterCount(7).trainable);
    expect(pf.params_m).to.equal(pf.parameters / 1e6);
    // 16 px / 8: N = 4 patches of P = 192 values, T = 4 tokens + class token, D 16, MLP 64, one block, 7 classes.
    expect(Math.round(pf.gflops_weights * 1e9)).to.equal(4 * 192 * 16 + 1 * 5 * (4 * 16 * 16 + 2 * 16 * 64) + 16 * 7);
    expect(pf.gflops).to.be.above(pf.gflops_weights);
    const g = m.analysis.gradcam;
    expect(g.count).to.equal(m.test_count);
    expect(g.focused_share).to.be.within(0, 1);
    const f = m.analysis['fgsm-regions'];
    expect(f).to.include({ count: 21, threshold: 0.3 });
    expect(Object.keys(f.inside)).to.deep.equal(['0', '0.1']);
    // Both analyses take the maps of the same model and images: the same focused region.
    expect(f.focused_share).to.be.closeTo(g.focused_share, 1e-9);
  });

  it('writes each analysis’s pictures and files into the cell folder', () => {
    const cell = path.join(dir, 'cells', 'labels=0.25', 'seed-0');
    for (const png of ['gradcam.png', 'fgsm-regions.png']) expect(fs.readFileSync(path.join(cell, png)).subarray(1, 4).toString(), png).to.equal('PNG');
    const mean = JSON.parse(fs.readFileSync(path.join(cell, 'gradcam-mean.json'), 'utf8'));
    expect(mean.classes).to.have.length(7);
    expect(mean.counts.reduce((a: number, b: number) => a + b, 0)).to.equal(21);
    expect(mean.maps).to.have.length(7);
    for (const map of mean.maps) {
      expect(map).to.have.length(16 * 16);
      for (const v of map) expect(v).to.be.within(0, 1);
    }
  });

  it('builds the same table from the kept metrics.json when the finished run is resumed', () => {
    const r = spawnSync(process.execPath, [bin, 'run', recipe, '--json', '--backend', 'cpu', '--out', out, '--resume', dir], {
      cwd: projectRoot,
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).cells).to.deep.equal(table.cells);
  });
});
