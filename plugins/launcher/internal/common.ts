import type { UnitStatus } from '../../../src/contracts/launcher.ts';
import { Type } from '../../../src/core/schema.ts';
import { bar, duration } from '../../../src/core/format.ts';

/** The launchers' max_retries option. */
export const RETRIES = Type.Integer({
  minimum: 0,
  maximum: 100,
  default: 2,
  description: 'how many times a unit whose attempt failed or was killed is started again (it continues from its last epoch checkpoint)',
});

/**
 * Where a launcher's run started: the time, how many units were done then (a resumed run's), and
 * (set by progressLine) when it first saw a unit of this launch finished and how many were done.
 */
export interface Since {
  readonly started: number;
  readonly doneBefore: number;
  first?: { readonly at: number; readonly done: number };
}

/** The launch's start: now, and the units already done. */
export function since(units: readonly UnitStatus[]): Since {
  return { started: Date.now(), doneBefore: units.filter((u) => u.state === 'done').length };
}

/**
 * One line of a launch's progress: a bar, the units by state, the time since the launch and an
 * ETA, the units left at the pace of the units finished. The first units pay for what the later
 * ones share (each pre-training runs in the first unit that needs it, and the units started with
 * it wait for it), so once a round of units (as many as are running) has finished after the first
 * one, the pace is taken from that first finish on; before that, from the launch.
 */
export function progressLine(what: string, units: readonly UnitStatus[], from: Since): string {
  const count = (s: UnitStatus['state']) => units.filter((u) => u.state === s).length;
  const running = units.filter((u) => u.state === 'running').map((u) => u.label);
  const now = Date.now();
  const secs = (now - from.started) / 1000;
  const done = count('done');
  const left = units.length - done - count('failed');
  const finished = done - from.doneBefore;
  if (finished > 0 && !from.first) from.first = { at: now, done };
  const base = from.first && done - from.first.done >= Math.max(1, running.length) ? from.first : null;
  const pace = base ? (now - base.at) / 1000 / (done - base.done) : finished > 0 ? secs / finished : 0;
  const eta = finished > 0 && left > 0 ? ` · ETA ${duration(pace * left)}` : '';
  const names = running.length ? ` (${running.slice(0, 3).join(', ')}${running.length > 3 ? ', …' : ''})` : '';
  return `${what}: ${bar(units.length ? done / units.length : 1, 12)} ${done}/${units.length} done · ${running.length} running${names} · ${count('failed')} failed · ${count('waiting')} waiting · ${duration(secs)}${eta}`;
}
