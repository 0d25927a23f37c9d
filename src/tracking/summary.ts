import type { Table } from '../report/table.ts';

/**
 * A run's table as the parent run's metrics, accuracies as shares (0–1) like the cells'
 * `test_accuracy`: how many cells finished and failed, the mean and best accuracy, each row's
 * mean, the table's summary columns (`summary/<label>/<row>/<group>`: Average, Decline…) and the
 * mean difference to the paper's numbers where both are known; and what the stages did over the
 * table (`health.<figure>`: each health figure's mean over the cells, as the cells log them;
 * `cells_above_linear_probe`), so runs compare on a stage's mean gain too.
 */
export function tableMetrics(table: Table): Record<string, number> {
  const done = table.cells.filter((c) => c.status === 'done' && c.ours !== null);
  const out: Record<string, number> = {
    cells_finished: done.length,
    cells_failed: table.cells.filter((c) => c.status === 'failed').length,
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  if (done.length) {
    out.mean_test_accuracy = mean(done.map((c) => c.ours! / 100));
    out.best_test_accuracy = Math.max(...done.map((c) => c.ours! / 100));
  }
  if (table.rows.length > 1)
    for (const row of table.rows) {
      const values = done.filter((c) => c.row === row).map((c) => c.ours! / 100);
      if (values.length) out[`row_mean_test_accuracy/${row}`] = mean(values);
    }
  const s = table.summary;
  if (s)
    table.rows.forEach((row, i) =>
      s.groups.forEach((g, gi) =>
        s.columns.forEach((col, ci) => {
          const v = s.cells[i]?.[gi]?.[ci]?.ours;
          if (v !== null && v !== undefined) out[`summary/${col.label}/${row}/${g.labels.join(' ') || 'all'}`] = v / 100;
        }),
      ),
    );
  for (const f of table.stages?.figures ?? []) out[`health.${f.name}`] = f.mean;
  if (table.stages?.above_probe) out.cells_above_linear_probe = table.stages.above_probe.above;
  const gaps = done.filter((c) => c.paper !== null).map((c) => (c.ours! - c.paper!) / 100);
  if (gaps.length) out.mean_difference_to_paper = mean(gaps);
  return out;
}
