import type { UnitStatus } from '../../../src/contracts/launcher.ts';
import { Type } from '../../../src/core/schema.ts';

/** The launchers' max_retries option. */
export const RETRIES = Type.Integer({
  minimum: 0,
  maximum: 100,
  default: 2,
  description: 'how many times a unit whose attempt failed or was killed is started again (it continues from its last epoch checkpoint)',
});

/** `processes (2 workers): 3/48 done · 2 running (a, b) · 0 failed · 43 waiting · 4m10s` */
export function progressLine(what: string, units: readonly UnitStatus[], started: number): string {
  const count = (s: UnitStatus['state']) => units.filter((u) => u.state === s).length;
  const running = units.filter((u) => u.state === 'running').map((u) => u.label);
  const secs = Math.round((Date.now() - started) / 1000);
  return `${what}: ${count('done')}/${units.length} done · ${count('running')} running${running.length ? ` (${running.slice(0, 3).join(', ')}${running.length > 3 ? ', …' : ''})` : ''} · ${count('failed')} failed · ${count('waiting')} waiting · ${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s`;
}
