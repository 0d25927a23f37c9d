import { expect } from 'chai';
import type { UnitState, UnitStatus } from '../../../src/contracts/launcher.ts';
import { progressLine, since, type Since } from '../../../plugins/launcher/internal/common.ts';

function units(counts: Partial<Record<UnitState, number>>): UnitStatus[] {
  const out: UnitStatus[] = [];
  for (const [state, n] of Object.entries(counts) as Array<[UnitState, number]>)
    for (let i = 0; i < n; i++) out.push({ key: `cells/${state}${i}/seed-0`, label: `${state}${i}`, state, attempts: 1 });
  return out;
}

describe('launcher progress line', () => {
  it('gives a bar and an ETA from the units finished since the launch', () => {
    // Resumed with 2 units done; 10 more finished in the 600 s since, 2 run, 34 wait: 36 left at 60 s each.
    const from = { started: Date.now() - 600_000, doneBefore: 2 };
    const line = progressLine('processes (2 workers)', units({ done: 12, running: 2, waiting: 34 }), from);
    expect(line).to.equal('processes (2 workers): [###.........] 12/48 done · 2 running (running0, running1) · 0 failed · 34 waiting · 10m00s · ETA 36m00s');
  });

  it('shows no ETA before a unit finished, and counts failed units as not left', () => {
    const all = units({ done: 3, failed: 1, waiting: 4 });
    const from = since(all);
    expect(from.doneBefore).to.equal(3);
    expect(progressLine('slurm 7', all, from)).to.match(/^slurm 7: \[#####\.+\] 3\/8 done · 0 running · 1 failed · 4 waiting · 0s$/);
    // One unit finished 120 s after the launch: the 3 left take 360 s (the failed one is not among them).
    const later = units({ done: 4, failed: 1, waiting: 3 });
    expect(progressLine('slurm 7', later, { started: Date.now() - 120_000, doneBefore: 3 })).to.match(/ · 2m00s · ETA 6m00s$/);
  });

  it('takes the pace from the first finished unit on, once a round of units has finished after it', () => {
    // The main job's start: both workers' first units wait for the one MAE and finish together.
    const from: Since = { started: Date.now() - 150_000, doneBefore: 0 };
    const first = progressLine('processes (2 workers)', units({ done: 2, running: 2, waiting: 44 }), from);
    expect(from.first?.done).to.equal(2);
    // Until a round (2 units, as many as run) finished after it, the pace is the launch's: 75 s a unit for the 46 left, then 50 s for 45.
    expect(first).to.match(/ · 2m30s · ETA 57m30s$/);
    expect(progressLine('processes (2 workers)', units({ done: 3, running: 2, waiting: 43 }), from)).to.match(/ · ETA 37m30s$/);
    // Launched 400 s ago, the first 2 done 300 s in, 4 more in the 100 s since: 25 s a unit for
    // the 42 left (the launch's pace, 400 s for 6, would say 46m40s).
    const later = { started: Date.now() - 400_000, doneBefore: 0, first: { at: Date.now() - 100_000, done: 2 } };
    expect(progressLine('processes (2 workers)', units({ done: 6, running: 2, waiting: 40 }), later)).to.match(/ · 6m40s · ETA 17m30s$/);
  });
});
