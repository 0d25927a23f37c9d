import path from 'node:path';
import { expect } from 'chai';
import { createRegistry, type PluginRegistry } from '../../src/core/registry.ts';
import { RecipeError, formatDiagnostic } from '../../src/recipe/diagnostics.ts';
import { resolveRecipe, type ResolvedRecipe } from '../../src/recipe/recipe.ts';
import { columnGroups, splitPrinted } from '../../src/recipe/grid.ts';
import { buildTable, summarize, tableMarkdown, tableText, type SeedResult, type Table } from '../../src/report/table.ts';
import { projectRoot, writeFiles } from '../helpers.ts';

let registry: PluginRegistry;
before(async () => {
  registry = await createRegistry();
});

const recipe = (name: string) => resolveRecipe(path.join(projectRoot, 'recipes', `${name}.yaml`), { registry, scale: 'smoke' });

/** Every cell finished, accuracy = (90 − 10·row − column)/100, so summaries are easy to compute by hand. */
function finished(r: ResolvedRecipe, skip: readonly string[] = []): Map<string, SeedResult[]> {
  return new Map(r.cells.filter((c) => !skip.includes(c.id)).map((c) => [c.id, [{ accuracy: (90 - 10 * c.row - c.column) / 100 }]]));
}

describe('report: summary columns', () => {
  it('mean and first-minus-last over a group, null where a value they need is missing', () => {
    expect(summarize('mean', [85.74, 86.02, 84.92, 85.94, 83.86])).to.equal(85.3);
    expect(summarize('mean', [1, null, 3])).to.equal(null);
    expect(summarize('first-minus-last', [80.96, 78.85, 76.92, 74.73])).to.equal(6.23);
    expect(summarize('first-minus-last', [80.96, null, 76.92, 74.73])).to.equal(6.23);
    expect(summarize('first-minus-last', [null, 1, 2])).to.equal(null);
    expect(summarize('mean', [])).to.equal(null);
  });

  it('groups columns by every column axis but the innermost, and reads printed rows group by group', async () => {
    const r = await recipe('label-noise');
    const groups = columnGroups(r.grid);
    expect(groups).to.deep.equal([
      { labels: ['RAF-DB'], columns: [0, 1, 2, 3] },
      { labels: ['FERPlus'], columns: [4, 5, 6, 7] },
    ]);
    expect(splitPrinted([1, 2, 3, 4, 10, 5, 6, 7, 8, 20], groups, 1)).to.deep.equal({ values: [1, 2, 3, 4, 5, 6, 7, 8], summary: [[10], [20]] });
    // One column axis: one group.
    expect(columnGroups((await recipe('other-tasks')).grid)).to.deep.equal([{ labels: [], columns: [0, 1, 2, 3, 4] }]);
  });

  it("reproduces the paper's own Average and Decline columns from its numbers (Tables 5, 8, 9)", async () => {
    const mismatches: string[] = [];
    for (const name of ['kfold', 'label-noise', 'other-tasks']) {
      const r = await recipe(name);
      const groups = columnGroups(r.grid);
      const ref = r.reference!;
      const rows = [...ref.values.map((values, i) => ({ label: r.grid.rows[i]!.labels.join(' '), values, summary: ref.summary![i]! })), ...(ref.others ?? [])];
      expect(rows.length).to.be.greaterThan(5);
      for (const row of rows) {
        groups.forEach((g, gi) => {
          const ours = summarize(
            r.summary[0]!.of,
            g.columns.map((j) => row.values[j]!),
          )!;
          const printed = row.summary[gi]![0]!;
          // The paper averages unrounded accuracies: its printed Average may differ by 0.01.
          if (Math.abs(ours - printed) > 0.0100001) mismatches.push(`${name}: ${row.label} ${g.labels.join(' ')}`.trim() + `: ${ours} vs ${printed}`);
        });
      }
    }
    // The one inconsistency in the paper: Table 9 prints 52.81 beside folds that average 52.69.
    expect(mismatches).to.deep.equal(['other-tasks: Age SSFER-5%: 52.69 vs 52.81']);
  });

  it('builds the computed entries per row and group, with the paper value beside ours', async () => {
    const r = await recipe('label-noise');
    const t = buildTable(r, finished(r, ['method=ssfer-25/dataset=ferplus/noise=0.2']), { backend: 'cpu', notes: [] });
    expect(t.summary!.columns).to.deep.equal([{ label: 'Decline (↓)', of: 'first-minus-last' }]);
    // Row 0, RAF-DB: columns 0..3 → 90 − 0 minus 90 − 3 = 3; FERPlus: columns 4..7 → 86 − 83 = 3.
    expect(t.summary!.cells[0]).to.deep.equal([[{ ours: 3, paper: 6.23 }], [{ ours: 3, paper: 5.55 }]]);
    // A missing cell in the middle does not matter to first-minus-last.
    expect(t.summary!.cells[2]![1]).to.deep.equal([{ ours: 3, paper: 2.78 }]);
    expect(t.paperOnly!.map((p) => p.label)).to.include('SCN✓');
    expect(t.paperOnly![1]!.summary).to.deep.equal([[9.57], [5.54]]);
    // What table.json holds.
    const json = JSON.parse(JSON.stringify(t)) as Table;
    expect(json.summary!.cells[0]![0]![0]).to.deep.equal({ ours: 3, paper: 6.23 });
  });

  it('prints each group followed by its summary columns, and the paper-only rows under ours', async () => {
    const r = await recipe('kfold');
    const t = buildTable(r, finished(r, ['method=ssfer-5/dataset=rafdb/fold=2']), { backend: 'cpu', notes: [] });
    const md = tableMarkdown(t).split('\n');
    const header = md.find((l) => l.startsWith('| Method |'))!;
    expect(header).to.equal(
      '| Method | RAF-DB Fold 1 | RAF-DB Fold 2 | RAF-DB Fold 3 | RAF-DB Fold 4 | RAF-DB Fold 5 | RAF-DB Average | FERPlus Fold 1 | FERPlus Fold 2 | FERPlus Fold 3 | FERPlus Fold 4 | FERPlus Fold 5 | FERPlus Average |',
    );
    // Row 0 (ViT-Base): RAF-DB 90 89 88 87 86 → 88; FERPlus 85 … 81 → 83.
    expect(md.find((l) => l.startsWith('| ViT-Base |'))).to.equal(
      '| ViT-Base | 90.00 (85.74) | 89.00 (86.02) | 88.00 (84.92) | 87.00 (85.94) | 86.00 (83.86) | 88.00 (85.30) | 85.00 (84.68) | 84.00 (85.06) | 83.00 (85.10) | 82.00 (85.45) | 81.00 (85.40) | 83.00 (85.14) |',
    );
    // SSFER-5% (row 4) lacks RAF-DB fold 3: no RAF-DB average, the FERPlus one stands.
    const ssfer5 = md.find((l) => l.startsWith('| SSFER-5% |'))!.split(' | ');
    expect(ssfer5[3]).to.equal('— (76.86)');
    expect(ssfer5[6]).to.equal('— (77.47)');
    expect(ssfer5[12]).to.equal('43.00 (79.71) |');
    // The CNN baselines are rows of ours, with the paper's numbers beside them.
    expect(md.find((l) => l.startsWith('| ResNet-50 |'))).to.equal(
      '| ResNet-50 | 80.00 (75.60) | 79.00 (75.56) | 78.00 (75.35) | 77.00 (74.25) | 76.00 (76.32) | 78.00 (75.42) | 75.00 (79.69) | 74.00 (80.78) | 73.00 (79.97) | 72.00 (79.55) | 71.00 (79.94) | 73.00 (79.99) |',
    );
    const paperOnly = md.indexOf('Paper only (methods not run here):');
    expect(paperOnly).to.be.greaterThan(md.findIndex((l) => l.startsWith('| SSFER-25% |')));
    expect(md[paperOnly + 2]).to.equal(header);
    expect(md.find((l) => l.startsWith('| ViT-Large |'))).to.equal(
      '| ViT-Large | — (86.43) | — (87.28) | — (86.39) | — (86.52) | — (85.90) | — (86.50) | — (84.80) | — (85.57) | — (85.09) | — (85.41) | — (85.66) | — (85.31) |',
    );

    const text = tableText(t).split('\n');
    const top = text.findIndex((l) => l.includes('RAF-DB'));
    expect(text[top]!.trim().split(/\s{2,}/)).to.deep.equal(['RAF-DB', 'FERPlus']);
    expect(text[top + 1]!.trim().split(/\s{2,}/)).to.deep.equal([
      'Method',
      'Fold 1',
      'Fold 2',
      'Fold 3',
      'Fold 4',
      'Fold 5',
      'Average',
      'Fold 1',
      'Fold 2',
      'Fold 3',
      'Fold 4',
      'Fold 5',
      'Average',
    ]);
    expect(
      text
        .find((l) => l.startsWith('MobileNetV3'))!
        .trim()
        .split(/\s{2,}/),
    ).to.have.length(13);
    expect(text).to.include('Paper only (methods not run here):');
  });

  it('leaves tables without summary columns or paper-only rows as they were', async () => {
    const r = await recipe('ablation-kappa');
    const t = buildTable(r, finished(r), { backend: 'cpu', notes: [] });
    expect(t).to.not.have.property('summary');
    expect(t).to.not.have.property('paperOnly');
    expect(
      tableMarkdown(t)
        .split('\n')
        .find((l) => l.startsWith('| Method |'))!
        .split(' | '),
    ).to.have.length(13);
  });
});

describe('report: seeds and paired differences', () => {
  /** Table 14 with IOU as its baseline row, at 3 seeds. */
  async function kappa(seeds = 3): Promise<ResolvedRecipe> {
    const dir = writeFiles({ 'r.yaml': `extends: ${path.join(projectRoot, 'recipes', 'ablation-kappa.yaml')}\ngrid:\n  baseline: { row: IOU }\n` });
    return resolveRecipe(path.join(dir, 'r.yaml'), { registry, scale: 'smoke', seeds: String(seeds) });
  }
  /** Column 0 (RAF-DB 5 %) by hand, per seed; every other cell 50 % at every seed. */
  const column0: Record<string, number[]> = {
    'kappa=iou': [80, 82, 84], // mean 82, s 2
    'kappa=psnr': [81, 83.5, 84.5], // − IOU: 1, 1.5, 0.5 → mean 1, s 0.5
    'kappa=ssim': [81.1, 83, 85.2], // − IOU: 1.1, 1.0, 1.2 → mean 1.1, s 0.1
    'kappa=fsim': [70, 90, 75],
  };
  function results(r: ResolvedRecipe, change: (id: string, seeds: SeedResult[]) => SeedResult[] = (_, x) => x): Map<string, SeedResult[]> {
    return new Map(
      r.cells.map((c) => {
        const row = c.id.split('/')[0]!;
        const values = c.column === 0 ? column0[row]! : [50, 50, 50];
        const seeds = values.slice(0, r.seeds).map((v, k) => ({ accuracy: v / 100, health: { semi_gain: 0.01 * (k + 1) } }));
        return [c.id, change(c.id, seeds)];
      }),
    );
  }
  const t975 = (df: number) => ({ 2: 4.302652729749462 })[df]!; // scipy.stats.t.ppf(0.975, 2)

  it('gives each cell the mean, sample std, each seed’s value and the 95 % t-interval; health is the mean over the seeds', async () => {
    const r = await kappa();
    const t = buildTable(r, results(r), { backend: 'cpu', notes: [] });
    expect(t.seeds).to.equal(3);
    expect(t.baseline).to.deep.equal({ row: 'IOU' });
    const iou = t.cells.find((c) => c.id === 'kappa=iou/dataset=rafdb/labels=0.05')!;
    const half = (t975(2) * 2) / Math.sqrt(3); // 4.968…
    expect(iou).to.deep.include({ ours: 82, ours_std: 2, ours_runs: [80, 82, 84], paper: 80.96, status: 'done', diff: null, diff_ci95: null });
    expect(iou.ci95).to.deep.equal([Math.round((82 - half) * 100) / 100, Math.round((82 + half) * 100) / 100]);
    expect(iou.ci95).to.deep.equal([77.03, 86.97]);
    expect(iou.health!.semi_gain).to.be.closeTo(0.02, 1e-15); // (0.01 + 0.02 + 0.03) / 3
    // FSIM 70, 90, 75: mean 78.33, s 10.41, so the t-interval reaches 104.2 %; an accuracy stops at 100.
    const fsim = t.cells.find((c) => c.id === 'kappa=fsim/dataset=rafdb/labels=0.05')!;
    const s = Math.sqrt(((70 - 235 / 3) ** 2 + (90 - 235 / 3) ** 2 + (75 - 235 / 3) ** 2) / 2);
    const wide = (t975(2) * s) / Math.sqrt(3);
    expect(235 / 3 + wide).to.be.above(100);
    expect(fsim.ci95).to.deep.equal([Math.round((235 / 3 - wide) * 100) / 100, 100]);
  });

  it('takes each row’s paired difference to the baseline row in the same column and seed, and marks an interval that excludes 0', async () => {
    const r = await kappa();
    const t = buildTable(r, results(r), { backend: 'cpu', notes: [] });
    const cell = (row: string) => t.cells.find((c) => c.id === `kappa=${row}/dataset=rafdb/labels=0.05`)!;
    // PSNR − IOU = 1, 1.5, 0.5: 1 ± t·0.5/√3 = [−0.24, 2.24], although PSNR is above IOU at every seed.
    expect(cell('psnr')).to.deep.include({ diff: 1, diff_ci95: [-0.24, 2.24] });
    // SSIM − IOU = 1.1, 1.0, 1.2: 1.1 ± t·0.1/√3 = [0.85, 1.35]; the cells' own intervals overlap widely.
    expect(cell('ssim')).to.deep.include({ diff: 1.1, diff_ci95: [0.85, 1.35] });
    expect(cell('ssim').ci95![0]).to.be.below(cell('iou').ci95![1]);
    // A column where every row is 50 % at every seed: difference 0, interval [0, 0].
    expect(t.cells.find((c) => c.id === 'kappa=psnr/dataset=rafdb/labels=0.1')).to.deep.include({ diff: 0, diff_ci95: [0, 0] });

    const text = tableText(t).split('\n');
    expect(text[1]).to.equal(
      'scale smoke · seeds 2024…2026 · backend cpu · entries: mean ± std over 3 seeds (paper), accuracy (%); their 95 % t-intervals are in table.json',
    );
    expect(
      text
        .find((l) => l.startsWith('IOU'))!
        .trim()
        .split(/\s{2,}/)[1],
    ).to.equal('82.00 ± 2.00 (80.96)');
    const heading = text.findIndex((l) => l.startsWith('Paired difference to IOU'));
    expect(text[heading]).to.equal(
      'Paired difference to IOU (same column, same seed; percentage points), mean over 3 seeds [95 % t-interval]; * the interval excludes 0:',
    );
    const diffRow = (label: string) =>
      text
        .slice(heading)
        .find((l) => l.startsWith(label))!
        .trim()
        .split(/\s{2,}/);
    expect(diffRow('PSNR')[1]).to.equal('+1.00 [-0.24, 2.24]');
    expect(diffRow('SSIM')[1]).to.equal('+1.10 [0.85, 1.35]*');
    expect(diffRow('FSIM')[1]).to.equal('-3.67 [-28.80, 21.46]'); // −10, 8, −9: mean −3.67, s 10.12
    expect(diffRow('IOU').slice(1)).to.deep.equal(Array(12).fill('baseline'));
    const md = tableMarkdown(t).split('\n');
    expect(md[2]).to.equal(
      'Scale `smoke`, seeds 2024…2026, backend `cpu`. Each entry: mean ± std over 3 seeds (paper), accuracy (%); their 95 % t-intervals are in table.json.',
    );
    const mdHeading = md.findIndex((l) => l.startsWith('Paired difference to IOU'));
    expect(md[mdHeading + 2]).to.equal(md.find((l) => l.startsWith('| Method |')));
    expect(
      md
        .slice(mdHeading)
        .find((l) => l.startsWith('| SSIM |'))!
        .split(' | ')[1],
    ).to.equal('+1.10 [0.85, 1.35]*');
  });

  it('gives no mean for a cell until every seed finished, names the failed seed, and pairs only finished cells', async () => {
    const r = await kappa();
    const t = buildTable(
      r,
      results(r, (id, seeds) =>
        id === 'kappa=ssim/dataset=rafdb/labels=0.05'
          ? [seeds[0]!, { error: 'boom' }, seeds[2]!]
          : id === 'kappa=iou/dataset=rafdb/labels=0.1'
            ? [seeds[0]!, null, null]
            : seeds,
      ),
      { backend: 'cpu', notes: [] },
    );
    expect(t.cells.find((c) => c.id === 'kappa=ssim/dataset=rafdb/labels=0.05')).to.deep.include({
      ours: null,
      ours_std: null,
      ours_runs: [81.1, null, 85.2],
      ci95: null,
      diff: null,
      diff_ci95: null,
      status: 'failed',
      error: 'seed 1: boom',
    });
    const pending = t.cells.find((c) => c.id === 'kappa=iou/dataset=rafdb/labels=0.1')!;
    expect(pending).to.deep.include({ ours: null, ours_runs: [50, null, null], status: 'pending' });
    expect(pending).to.not.have.property('health');
    // The rows of a column whose baseline has not finished have no difference.
    expect(t.cells.find((c) => c.id === 'kappa=psnr/dataset=rafdb/labels=0.1')).to.deep.include({ ours: 50, diff: null, diff_ci95: null });
  });

  it('with one seed: the entries of a table before seeds, no intervals, and the differences without them', async () => {
    const r = await kappa(1);
    const t = buildTable(r, results(r), { backend: 'cpu', notes: [] });
    const ssim = t.cells.find((c) => c.id === 'kappa=ssim/dataset=rafdb/labels=0.05')!;
    expect(ssim).to.deep.include({ ours: 81.1, ours_std: null, ours_runs: [81.1], ci95: null, diff: 1.1, diff_ci95: null });
    expect(ssim.health).to.deep.equal({ semi_gain: 0.01 });
    const text = tableText(t).split('\n');
    expect(text[1]).to.equal('scale smoke · seed 2024 · backend cpu · entries: ours (paper), accuracy (%)');
    expect(
      text
        .find((l) => l.startsWith('SSIM'))!
        .trim()
        .split(/\s{2,}/)[1],
    ).to.equal('81.10 (79.46)');
    expect(text).to.include(
      'Paired difference to IOU (same column, same seed; percentage points), one seed, so no interval: run more seeds (--seeds N) to tell a difference from noise:',
    );
    expect(
      text
        .find((l) => l.startsWith('SSIM') && l.includes('+1.10'))!
        .trim()
        .split(/\s{2,}/)[1],
    ).to.equal('+1.10');
    // A table.json of a version before seeds (compare reads them back from MLflow) prints as it did.
    const old = JSON.parse(JSON.stringify({ ...t, cells: t.cells.map(({ ours_std: _s, ours_runs: _r, ci95: _c, ...rest }) => rest) }));
    delete old.seeds;
    delete old.baseline;
    const oldText = tableText(old).split('\n');
    expect(oldText[1]).to.equal('scale smoke · seed 2024 · backend cpu · entries: ours (paper), accuracy (%)');
    expect(
      oldText
        .find((l) => l.startsWith('SSIM'))!
        .trim()
        .split(/\s{2,}/)[1],
    ).to.equal('81.10 (79.46)');
  });
});

describe('report: what the stages did over the table', () => {
  /**
   * Table 14 at one seed, every cell finished with accuracy (90 − 10·row − column) %, a linear
   * probe of 50 % and a supervised loss of 2 + row; only the IOU row's cells report a semi gain:
   * +3 points in its first two columns, −1 in the other ten.
   */
  async function table(): Promise<Table> {
    const r = await recipe('ablation-kappa');
    const results = new Map<string, SeedResult[]>(
      r.cells.map((c) => {
        const health: Record<string, number> = { supervised_loss_first: 2 + c.row, linear_probe_accuracy: 0.5 };
        if (c.row === 0) health.semi_gain = c.column < 2 ? 0.03 : -0.01;
        return [c.id, [{ accuracy: (90 - 10 * c.row - c.column) / 100, health }]];
      }),
    );
    return buildTable(r, results, { backend: 'cpu', notes: [] });
  }

  it('gives each health figure its mean, lowest and highest over the cells, and each gain its interval, counts and sign test', async () => {
    const s = (await table()).stages!;
    expect(s.cells).to.equal(48);
    expect(s.figures.find((f) => f.name === 'supervised_loss_first')).to.deep.equal({
      name: 'supervised_loss_first',
      stage: 'supervised',
      cells: 48,
      mean: 3.5,
      min: 2,
      max: 5,
    });
    expect(s.figures.find((f) => f.name === 'linear_probe_accuracy')!.stage).to.equal('linear_probe');
    const gain = s.gains.find((g) => g.name === 'semi_gain')!;
    // Reference: scipy — x = [3, 3, −1 × 10]: mean −1/3, t.ppf(0.975, 11)·std/√12 → [−1.32260, 0.65594];
    // binomtest(2, 12).pvalue = 0.03857421875.
    expect(gain.cells).to.equal(12);
    expect(gain.mean).to.be.closeTo(-1 / 3, 1e-12);
    expect(gain.ci95![0]).to.be.closeTo(-1.3226025948116131, 1e-9);
    expect(gain.ci95![1]).to.be.closeTo(0.6559359281449464, 1e-9);
    expect(gain).to.deep.include({ higher: 2, lower: 10, unchanged: 0 });
    expect(gain.sign_test_p).to.be.closeTo(0.03857421875, 1e-12);
    // 60 − column > 50 % only for columns 0–9 of the last row: 46 of 48 above the probe.
    expect(s.above_probe).to.deep.equal({ above: 46, cells: 48 });
  });

  it('prints one line per stage, the gain and the probe count under the table, and none where no cell reports health', async () => {
    const t = await table();
    const text = tableText(t).split('\n');
    const at = text.findIndex((l) => l.startsWith('Stages over the 48 finished cells'));
    expect(at).to.be.above(0);
    expect(text.slice(at + 1, at + 6)).to.deep.equal([
      '  supervised    loss first 3.500 (2.000 to 5.000)',
      '  linear_probe  accuracy 50.0 % (50.0 to 50.0)',
      '  semi          gain −0.33 points (−1.00 to +3.00, 12 cells)',
      '  semi_gain: −0.33 points on average over 12 cells, 95 % t-interval over the cells [−1.32, +0.66]; higher in 2, lower in 10, unchanged in 0 (sign test p = 0.039)',
      '  above the linear probe on the same labels: 46 of 48 cells',
    ]);
    expect(tableMarkdown(t)).to.include('\n- above the linear probe on the same labels: 46 of 48 cells\n');
    expect((JSON.parse(JSON.stringify(t)) as Table).stages!.above_probe).to.deep.equal({ above: 46, cells: 48 });
    const r = await recipe('ablation-kappa');
    const plain = buildTable(r, finished(r), { backend: 'cpu', notes: [] });
    expect(plain).to.not.have.property('stages');
    expect(tableText(plain)).to.not.include('Stages over');
  });
});

describe('recipe: summary columns and paper-only rows', () => {
  async function problems(yaml: string): Promise<string[]> {
    const dir = writeFiles({ 'r.yaml': yaml });
    try {
      await resolveRecipe(path.join(dir, 'r.yaml'), { registry, scale: 'smoke' });
    } catch (err) {
      if (err instanceof RecipeError) return err.diagnostics.map(formatDiagnostic);
      throw err;
    }
    return [];
  }
  const base = `extends: ${path.join(projectRoot, 'recipes', 'base', 'ssfer.yaml')}\ntitle: t\n`;
  const grid = `grid:
  rows:
    - { name: k, path: pipeline.supervised.mixing.kappa.use, values: [iou, ssim] }
  columns:
    - { name: dataset, values: [{ value: rafdb, set: { data.dataset.use: rafdb } }, { value: ferplus, set: { data.dataset.use: ferplus } }] }
    - { name: f, path: data.labels.fraction, values: [0.05, 0.1] }
  summary:
    - { label: Average, of: mean }
`;

  it('reads reference rows in the printed layout: each group, then its summaries', async () => {
    const dir = writeFiles({
      'r.yaml': `${base}${grid}reference:\n  values:\n    - [1, 2, 1.5, 3, 4, 3.5]\n    - [5, 6, null, 7, 8, 7.5]\n  others:\n    - { label: X, values: [9, 9, 9, 9, 9, 9] }\n`,
    });
    const r = await resolveRecipe(path.join(dir, 'r.yaml'), { registry, scale: 'smoke' });
    expect(r.summary).to.deep.equal([{ label: 'Average', of: 'mean' }]);
    expect(r.reference!.values).to.deep.equal([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(r.reference!.summary).to.deep.equal([
      [[1.5], [3.5]],
      [[null], [7.5]],
    ]);
    expect(r.reference!.others).to.deep.equal([{ label: 'X', values: [9, 9, 9, 9], summary: [[9], [9]] }]);
  });

  it('refuses rows that are not laid out as printed, and a summary without column axes', async () => {
    const wrong = await problems(
      `${base}${grid}reference:\n  values:\n    - [1, 2, 3, 4]\n    - [5, 6, 7, 8, 9, 10]\n  others:\n    - { label: X, values: [9] }\n`,
    );
    expect(wrong).to.have.length(2);
    expect(wrong[0]).to.match(
      /r\.yaml:\d+:\d+: reference\.values\.0: has 4 numbers but the table has 6 columns as printed \(4 grid columns, and 1 summary column after each of 2 groups\)/,
    );
    expect(wrong[1]).to.match(/reference\.others\.0\.values: has 1 numbers but the table has 6 columns/);
    const noColumns = await problems(
      `${base}grid:\n  rows:\n    - { name: k, path: pipeline.supervised.mixing.kappa.use, values: [iou] }\n  summary:\n    - { label: Average, of: mean }\n`,
    );
    expect(noColumns[0]).to.match(/grid\.summary: summary columns are computed over column axes, and this grid has none/);
    const badKind = await problems(`${base}${grid.replace('of: mean', 'of: median')}`);
    expect(badKind[0]).to.match(/grid\.summary\.0\.of: must be one of "mean", "first-minus-last"/);
  });
});

describe('report: figures other than the accuracy', () => {
  it('shows the figure grid.metric names, as written when it is not a share, one entry per figure of a cell', async () => {
    const r = await recipe('params-flops');
    const results = new Map(
      r.cells.map((c, i) => [c.id, [{ accuracy: 1 / 7, analysis: { 'params-flops': { params_m: 5.487943 + i, gflops: 1.082490055 + i } } }]]),
    );
    const t = buildTable(r, results, { backend: 'cpu', notes: [] });
    expect(t.cells).to.have.length(18);
    expect(new Set(t.cells.map((c) => c.id)).size).to.equal(18);
    const tiny = t.cells.filter((c) => c.row === 'ViT-Tiny');
    expect(tiny.map((c) => [c.id, c.cell, c.figure, c.column, c.ours, c.paper])).to.deep.equal([
      ['model=vit-tiny/figure=params_m', 'model=vit-tiny', 'analysis.params-flops.params_m', 'Params (M)', 10.49, 5.49],
      ['model=vit-tiny/figure=gflops', 'model=vit-tiny', 'analysis.params-flops.gflops', 'FLOPs (G)', 6.08, 1.1],
    ]);
    expect(t.metric).to.equal('Params (M) and FLOPs (G)');
    const text = tableText(t);
    expect(text).to.match(/ViT-Tiny +10\.49 \(5\.49\) +6\.08 \(1\.10\)/);
    expect(text).to.match(/POSTER\+\+ +— \(43\.70\) +— \(8\.40\)/);
    expect(t.notes).to.deep.equal([]);
  });

  it('turns a figure the cell lacks, or a "share" outside [0, 1], into a failed entry that says why, never a number', async () => {
    const r = await recipe('adversarial');
    const inside = { '0': 0.5, '0.02': 0.25, '0.04': 0.2, '0.06': 0.15, '0.08': 0.1, '0.1': 0.05 };
    const cells = {
      'dataset=rafdb': { accuracy: 0.5, analysis: { 'fgsm-regions': { inside, outside: { ...inside, '0.02': 0.3 } } } },
      'dataset=ferplus': { accuracy: 0.5, analysis: { 'fgsm-regions': { inside, outside: { ...inside, '0.1': 5 } } } },
      'dataset=affectnet7': { accuracy: 0.5, analysis: { gradcam: {} } },
    };
    const results = new Map<string, SeedResult[]>(Object.entries(cells).map(([id, m]) => [id, [m]]));
    const t = buildTable(r, results, { backend: 'cpu', notes: ['a note'] });
    const at = (row: number, column: number) => t.cells[row * 6 + column]!;
    expect([at(0, 0).ours, at(0, 1).ours, at(4, 1).ours, at(4, 5).ours]).to.deep.equal([50, 25, 30, 5]);
    expect(at(0, 1)).to.deep.include({
      id: 'region=inside/dataset=rafdb/eps=0.02',
      row: 'emotion focused regions SSFER-25% RAF-DB',
      column: 'Eps=0.02',
      paper: 32.46,
    });
    expect(at(5, 5)).to.deep.include({ status: 'failed', ours: null });
    expect(at(5, 5).error).to.match(/'analysis\.fgsm-regions\.outside\.0\.1' is 5, not a share in \[0, 1\]; set grid\.percent: false/);
    expect(at(2, 0).error).to.equal("the cell's metrics.json has no figure 'analysis.fgsm-regions.inside.0'");
    expect(at(3, 0).status).to.equal('pending');
    expect(t.notes[0]).to.equal('a note');
    expect(t.notes).to.include("region=inside/dataset=affectnet7/eps=0: the cell's metrics.json has no figure 'analysis.fgsm-regions.inside.0'");
    expect(tableText(t)).to.match(/emotion unfocused regions SSFER-25% FERPlus +50\.00 \(85\.82\).* failed \(33\.98\)/);
  });
});
