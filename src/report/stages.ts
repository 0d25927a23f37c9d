import { estimate, mcnemarExact, type Interval } from './stats.ts';

/** What the summary reads of a table entry (a TableCell of table.ts). */
export interface StageCell {
  readonly id: string;
  /** The cell whose figure the entry shows, where that differs from `id`. */
  readonly cell?: string;
  /** The figure shown, where it is not the test accuracy. */
  readonly figure?: string;
  readonly status: 'done' | 'failed' | 'pending';
  /** The test accuracy (%), the mean over the seeds. */
  readonly ours: number | null;
  readonly health?: Readonly<Record<string, number>>;
}

/**
 * What the stages did over a whole table: each `health` figure the cells report (a stage's own
 * figures, named `<stage>_<figure>`, see "Did each stage do its job?" in the README) as its mean
 * over the finished cells with its lowest and highest value, each stage's gain (`<stage>_gain`,
 * its test accuracy minus the accuracy before it) over the cells with how many it raised or
 * lowered, and how many cells are above their linear probe. Each cell's own figures stay in the
 * table's cells; this says at a glance whether a stage did its job across the table, e.g. whether
 * the semi stage gains on average.
 */
export interface StageSummary {
  /** Finished cells that report health (a cell shown in several entries counts once). */
  readonly cells: number;
  readonly figures: readonly HealthFigureSummary[];
  readonly gains: readonly GainSummary[];
  /** Entries showing a cell's test accuracy that are above the linear probe on the same labels; absent where no cell has a probe. */
  readonly above_probe?: { readonly above: number; readonly cells: number };
}

export interface HealthFigureSummary {
  /** The health figure, e.g. `semi_mask_rate_last`. */
  readonly name: string;
  /** Its stage: what its name says before the first `_` (`linear_probe` for the probe's figures). */
  readonly stage: string;
  /** How many of the cells report it. */
  readonly cells: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** A stage's gain over the cells, in percentage points of test accuracy. */
export interface GainSummary {
  readonly name: string;
  readonly cells: number;
  /** Mean gain over the cells (points). */
  readonly mean: number;
  /**
   * The 95 % Student-t interval of that mean, the cells taken as the measurements (points); null
   * with one cell. The cells are this table's datasets and budgets, not a sample of anything
   * wider: it says whether the gain is more than the spread among these cells.
   */
  readonly ci95: Interval | null;
  /** Cells the stage raised, lowered, and left where it was (within 0.005 points: an unchanged accuracy). */
  readonly higher: number;
  readonly lower: number;
  readonly unchanged: number;
  /** Two-sided sign test of higher against lower (the unchanged left out); 1 when none moved. */
  readonly sign_test_p: number;
}

/** Gains are differences of shares; below this (in points) a cell's accuracy did not move. */
const UNCHANGED_POINTS = 0.005;

function stageOf(name: string): string {
  if (name.startsWith('linear_probe_')) return 'linear_probe';
  const at = name.indexOf('_');
  return at > 0 ? name.slice(0, at) : name;
}

/** The table's stage summary, or undefined when no finished cell reports health. */
export function summarizeStages(cells: readonly StageCell[]): StageSummary | undefined {
  // Entries of a grid with figure axes show one cell several times: each cell counts once.
  const byCell = new Map<string, Readonly<Record<string, number>>>();
  for (const c of cells) if (c.status === 'done' && c.health) byCell.set(c.cell ?? c.id, c.health);
  if (byCell.size === 0) return undefined;
  const names = [...new Set([...byCell.values()].flatMap((h) => Object.keys(h)))];
  const valuesOf = (name: string) => [...byCell.values()].map((h) => h[name]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const figures: HealthFigureSummary[] = [];
  const gains: GainSummary[] = [];
  for (const name of names) {
    const values = valuesOf(name);
    if (values.length === 0) continue;
    figures.push({
      name,
      stage: stageOf(name),
      cells: values.length,
      mean: values.reduce((a, b) => a + b, 0) / values.length,
      min: Math.min(...values),
      max: Math.max(...values),
    });
    if (name.endsWith('_gain')) {
      const points = values.map((v) => 100 * v);
      const e = estimate(points);
      const higher = points.filter((p) => p > UNCHANGED_POINTS).length;
      const lower = points.filter((p) => p < -UNCHANGED_POINTS).length;
      gains.push({
        name,
        cells: points.length,
        mean: e.mean,
        ci95: e.ci95,
        higher,
        lower,
        unchanged: points.length - higher - lower,
        sign_test_p: mcnemarExact(higher, lower),
      });
    }
  }
  const probed = cells.filter((c) => c.status === 'done' && c.figure === undefined && c.ours !== null && typeof c.health?.linear_probe_accuracy === 'number');
  return {
    cells: byCell.size,
    figures,
    gains,
    ...(probed.length ? { above_probe: { above: probed.filter((c) => c.ours! > 100 * c.health!.linear_probe_accuracy!).length, cells: probed.length } } : {}),
  };
}

/** A figure's value as printed: shares (accuracies, mask rates) in %, gains in signed points, the rest (losses) to 3 decimals. */
function figureText(name: string, v: number): string {
  if (name.endsWith('_gain')) return `${v >= 0 ? '+' : '−'}${Math.abs(100 * v).toFixed(2)}`;
  if (name.includes('accuracy') || name.includes('mask_rate')) return (100 * v).toFixed(1);
  return v.toFixed(3);
}

function unitOf(name: string): string {
  if (name.endsWith('_gain')) return ' points';
  return name.includes('accuracy') || name.includes('mask_rate') ? ' %' : '';
}

const signedPoints = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`;
const pText = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toPrecision(2));

/** The summary as lines: a heading, one line per stage, then each gain's verdict and the probe count. */
export function stageSummaryLines(s: StageSummary): string[] {
  const lines = [
    `Stages over the ${s.cells} finished cell${s.cells === 1 ? '' : 's'} (each health figure's mean over the cells, its lowest and highest in parentheses; each cell's own in table.json):`,
  ];
  const stages = [...new Set(s.figures.map((f) => f.stage))];
  const width = Math.max(...stages.map((x) => x.length));
  for (const stage of stages) {
    const parts = s.figures
      .filter((f) => f.stage === stage)
      .map((f) => {
        const label = f.name.slice(stage.length + 1).replaceAll('_', ' ') || f.name;
        const of = f.cells < s.cells ? `, ${f.cells} cells` : '';
        return `${label} ${figureText(f.name, f.mean)}${unitOf(f.name)} (${figureText(f.name, f.min)} to ${figureText(f.name, f.max)}${of})`;
      });
    lines.push(`  ${stage.padEnd(width)}  ${parts.join(' · ')}`);
  }
  for (const g of s.gains) {
    const ci = g.ci95 ? `, 95 % t-interval over the cells [${signedPoints(g.ci95[0])}, ${signedPoints(g.ci95[1])}]` : '';
    lines.push(
      `  ${g.name}: ${signedPoints(g.mean)} points on average over ${g.cells} cell${g.cells === 1 ? '' : 's'}${ci}; ` +
        `higher in ${g.higher}, lower in ${g.lower}, unchanged in ${g.unchanged} (sign test p = ${pText(g.sign_test_p)})`,
    );
  }
  if (s.above_probe) lines.push(`  above the linear probe on the same labels: ${s.above_probe.above} of ${s.above_probe.cells} cells`);
  return lines;
}
