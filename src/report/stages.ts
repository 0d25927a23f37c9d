import { estimate, mcnemarExact, type Interval } from './stats.ts';

/** A finished cell as the summary reads it: its health figures (the means over its seeds) and its probe comparison. */
export interface StageCell {
  readonly health: Readonly<Record<string, number>>;
  readonly probe: ProbeComparison | null;
}

/** A cell's mean test accuracy over its seeds and its linear probe's mean over the same seeds (shares). */
export interface ProbeComparison {
  readonly accuracy: number;
  readonly probe: number;
}

/**
 * The comparison both the table notes and the stage summary judge a cell by: its mean accuracy
 * over the seeds against its linear probe's mean over the same seeds, so one unlucky seed does
 * not decide it; null when there is no seed, or a seed has not finished or has no probe. A cell
 * is above its probe when `accuracy > probe`.
 */
export function probeComparison(
  runs: readonly ({ readonly accuracy: number; readonly health?: Readonly<Record<string, number>> } | null)[],
): ProbeComparison | null {
  if (runs.length === 0 || runs.some((m) => m === null || m.health?.linear_probe_accuracy === undefined)) return null;
  const done = runs as readonly { readonly accuracy: number; readonly health: Readonly<Record<string, number>> }[];
  const mean = (f: (m: (typeof done)[number]) => number) => done.reduce((s, m) => s + f(m), 0) / done.length;
  return { accuracy: mean((m) => m.accuracy), probe: mean((m) => m.health.linear_probe_accuracy!) };
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
  /** Cells above their linear probe on the same labels (see probeComparison), of those that have one; absent where none has. */
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

const isGain = (name: string) => name.endsWith('_gain');
/** Accuracies and mask rates are shares of images. */
const isShare = (name: string) => name.includes('accuracy') || name.includes('mask_rate');
const signedPoints = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`;
const pText = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toPrecision(2));

function stageOf(name: string): string {
  if (name.startsWith('linear_probe_')) return 'linear_probe';
  const at = name.indexOf('_');
  return at > 0 ? name.slice(0, at) : name;
}

/** The table's stage summary over its finished cells (each cell once), or undefined when none reports health. */
export function summarizeStages(cells: readonly StageCell[]): StageSummary | undefined {
  if (cells.length === 0) return undefined;
  const names = [...new Set(cells.flatMap((c) => Object.keys(c.health)))];
  const valuesOf = (name: string) => cells.map((c) => c.health[name]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
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
    if (isGain(name)) {
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
  const probed = cells.flatMap((c) => (c.probe ? [c.probe] : []));
  return {
    cells: cells.length,
    figures,
    gains,
    ...(probed.length ? { above_probe: { above: probed.filter((c) => c.accuracy > c.probe).length, cells: probed.length } } : {}),
  };
}

/** A figure's value as printed: gains in signed points, shares in %, the rest (losses) to 3 decimals. */
function figureText(name: string, v: number): string {
  if (isGain(name)) return signedPoints(100 * v);
  return isShare(name) ? (100 * v).toFixed(1) : v.toFixed(3);
}

function unitOf(name: string): string {
  if (isGain(name)) return ' points';
  return isShare(name) ? ' %' : '';
}

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
