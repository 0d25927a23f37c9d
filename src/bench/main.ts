import { parseArgs } from 'node:util';
import { BACKENDS, backendAvailable, selectBackend, type BackendName } from '../engine/backend.ts';
import { PEER_STEP_GFLOP, runVitStep, STEP_SHAPE, stepFlops, type StepBenchResult } from './vit-step.ts';
import { benchSgemm } from './sgemm.ts';
import { profileVitStep } from './profile.ts';

/**
 * `npm run bench [-- --json] [--backends cpu,wasm] [--steps N] [--warmup N]`: images/s of a ViT
 * training step on every backend that can run it. The pure-JS cpu backend takes tens of seconds a
 * step, so it gets fewer steps by default to keep the whole run within a few minutes.
 */

const USAGE = 'usage: npm run bench -- [--json] [--backends a,b] [--steps N] [--warmup N]';

// Two warm-up steps wherever a step is short: the second step of a fresh model still fills
// buffer pools and JIT caches (on native it runs ~20 % slower than the steady state).
const DEFAULT_STEPS: Record<BackendName, { warmup: number; steps: number }> = {
  tensorflow: { warmup: 3, steps: 10 },
  native: { warmup: 2, steps: 10 },
  wasm: { warmup: 2, steps: 5 },
  cpu: { warmup: 1, steps: 1 },
};

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < (flag === '--warmup' ? 0 : 1)) throw new Error(`${flag} must be a ${flag === '--warmup' ? 'non-negative' : 'positive'} integer, got '${value}'\n${USAGE}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      backends: { type: 'string' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const steps = positiveInt(values.steps, '--steps');
  const warmup = positiveInt(values.warmup, '--warmup');
  const wanted = values.backends ? values.backends.split(',').map((b) => b.trim()).filter(Boolean) : [...BACKENDS];
  for (const b of wanted) {
    if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`unknown backend '${b}'; choose from ${BACKENDS.join(', ')}\n${USAGE}`);
  }

  const flops = stepFlops();
  const json = values.json;
  const log = (line: string) => {
    if (!json) console.log(line);
  };
  log(
    `ViT training step: batch ${STEP_SHAPE.batch}, ${(STEP_SHAPE.imageSize / STEP_SHAPE.patchSize) ** 2} tokens × ${STEP_SHAPE.patchSize ** 2 * STEP_SHAPE.channels} values, ` +
      `dim ${STEP_SHAPE.dim}, depth ${STEP_SHAPE.depth}, heads ${STEP_SHAPE.heads}, MLP ${STEP_SHAPE.mlpRatio}×, ${STEP_SHAPE.classes} classes, AdamW`,
  );
  log(
    `analytic FLOP: forward ${(flops.forward / 1e9).toFixed(2)} G, step (×3) ${(flops.step / 1e9).toFixed(2)} G; ` +
      `effective GFLOP/s use the peer's ${PEER_STEP_GFLOP} G`,
  );

  if (Math.abs(flops.step / 1e9 - PEER_STEP_GFLOP) / PEER_STEP_GFLOP > 0.05) {
    console.error(`warning: the analytic step count ${(flops.step / 1e9).toFixed(2)} G is not the peer's ${PEER_STEP_GFLOP} G; the shapes differ`);
  }

  // The machine's reference: what OpenBLAS's sgemm reaches here.
  const sgemm = await benchSgemm();
  if (json) console.log(JSON.stringify(sgemm));
  else log(sgemm.gflops === null ? `sgemm: skipped (${sgemm.skipped})` : `sgemm ${sgemm.n}³ (OpenBLAS): ${sgemm.gflops.toFixed(1)} GFLOP/s`);

  const rows: StepBenchResult[] = [];
  const skipped: { backend: string; reason: string }[] = [];
  for (const name of wanted as BackendName[]) {
    const reason = await backendAvailable(name);
    if (reason) {
      skipped.push({ backend: name, reason });
      if (json) console.log(JSON.stringify({ bench: 'vit-train-step', backend: name, skipped: reason }));
      else log(`${name}: skipped (${reason})`);
      continue;
    }
    const plan = { warmup: warmup ?? DEFAULT_STEPS[name].warmup, steps: steps ?? DEFAULT_STEPS[name].steps };
    try {
      await selectBackend(name);
      log(`${name}: ${plan.warmup} warm-up + ${plan.steps} timed steps…`);
      const result = runVitStep({
        ...plan,
        onStep: (i, s) => log(`  ${i < 0 ? 'warm-up' : `step ${i + 1}`}: ${s.toFixed(2)} s`),
      });
      rows.push(result);
      if (json) console.log(JSON.stringify(result));
      if (result.tensors_after !== result.tensors_before) {
        const msg = `${name}: tensor count grew from ${result.tensors_before} to ${result.tensors_after} over the timed steps`;
        if (json) console.error(msg);
        else log(`  WARNING ${msg}`);
      }
    } catch (err) {
      const why = (err as Error).message.split('\n')[0]!;
      skipped.push({ backend: name, reason: why });
      if (json) console.log(JSON.stringify({ bench: 'vit-train-step', backend: name, skipped: why }));
      else log(`${name}: cannot run the step (${why})`);
    }
  }
  const by = (b: string) => rows.find((r) => r.backend === b);
  const native = by('native');
  if (native) {
    const summary = {
      bench: 'summary',
      native_vs_cpu: by('cpu') ? native.images_per_s / by('cpu')!.images_per_s : null,
      native_vs_wasm: by('wasm') ? native.images_per_s / by('wasm')!.images_per_s : null,
      native_share_of_sgemm: sgemm.gflops ? native.effective_gflops / sgemm.gflops : null,
    };
    if (json) console.log(JSON.stringify(summary));
    else
      log(
        `native: ${summary.native_vs_cpu?.toFixed(1) ?? '—'}× cpu, ${summary.native_vs_wasm?.toFixed(1) ?? '—'}× wasm, ` +
          `${summary.native_share_of_sgemm ? (100 * summary.native_share_of_sgemm).toFixed(0) : '—'} % of the sgemm figure`,
      );
    log('\nper-kernel time of one native step:');
    await profileVitStep({ backend: 'native', json, log: json ? (line) => console.log(line) : log });
  }
  if (json) return;
  console.log('');
  const header = ['backend', 'images/s', 'step s', 'eff. GFLOP/s', 'tensors before→after', 'loss first→last'];
  const table = rows.map((r) => [
    r.backend,
    r.images_per_s.toFixed(2),
    r.step_s.toFixed(2),
    r.effective_gflops.toFixed(2),
    `${r.tensors_before}→${r.tensors_after}`,
    `${r.loss_first.toFixed(3)}→${r.loss_last.toFixed(3)}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
  for (const s of skipped) console.log(`${s.backend}: not measured (${s.reason})`);
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exitCode = 1;
});
