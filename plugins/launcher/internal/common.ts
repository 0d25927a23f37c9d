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

/** Where a launcher's run started: the time, and how many units were done then (a resumed run's). */
export interface Since {
  readonly started: number;
  readonly doneBefore: number;
}

/** The launch's start: now, and the units already done. */
export function since(units: readonly UnitStatus[]): Since {
  return { started: Date.now(), doneBefore: units.filter((u) => u.state === 'done').length };
}

/**
 * `processes (2 workers): [###.........] 12/48 done · 2 running (a, b) · 0 failed · 34 waiting · 4m10s · ETA 11m50s`.
 * The ETA takes the units left at the pace of those finished since the launch (with as many
 * running side by side as then); none until one has finished.
 */
export function progressLine(what: string, units: readonly UnitStatus[], from: Since): string {
  const count = (s: UnitStatus['state']) => units.filter((u) => u.state === s).length;
  const running = units.filter((u) => u.state === 'running').map((u) => u.label);
  const secs = (Date.now() - from.started) / 1000;
  const done = count('done');
  const left = units.length - done - count('failed');
  const finished = done - from.doneBefore;
  const eta = finished > 0 && left > 0 ? ` · ETA ${duration((secs / finished) * left)}` : '';
  const names = running.length ? ` (${running.slice(0, 3).join(', ')}${running.length > 3 ? ', …' : ''})` : '';
  return `${what}: ${bar(units.length ? done / units.length : 1, 12)} ${done}/${units.length} done · ${running.length} running${names} · ${count('failed')} failed · ${count('waiting')} waiting · ${duration(secs)}${eta}`;
}
