import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';

import { BACKENDS, backendAvailable, selectBackend, tensorflowUsesGpu, type BackendName } from '../engine/backend.ts';
import { createVitTrainStep, peakRssMib, peerStepGflop, runVitStep, STEP_PRESETS, stepFlops, type StepBenchResult, type StepPreset } from './vit-step.ts';
import { benchSgemm } from './sgemm.ts';
import { profileVitStep } from './profile.ts';

/**
 * `npm run bench [-- --json] [--preset bench|smoke|bench,smoke] [--backends cpu,wasm] [--steps N]
 * [--warmup N] [--soak N]`: images/s and peak memory of a ViT training step on every backend that
 * can run it, at the shape of the peer benchmarks (`bench`) and of the smoke scale's model
 * (`smoke`). Each backend and shape runs in its own process, so each line's peak RSS is its own.
 * The pure-JS cpu backend takes tens of seconds a step at the bench shape, so it gets fewer steps
 * by default. `--soak N` instead trains N steps and fails unless memory stays flat.
 */

const USAGE = 'usage: npm run bench -- [--json] [--preset bench|smoke|bench,smoke] [--backends a,b] [--steps N] [--warmup N] [--soak N]';

// Two warm-up steps wherever a step is short: the second step of a fresh model still fills
// buffer pools and JIT caches (on native it runs ~20 % slower than the steady state).
const DEFAULT_STEPS: Record<StepPreset, Record<BackendName, { warmup: number; steps: number }>> = {
  bench: {
    tensorflow: { warmup: 3, steps: 10 },
    native: { warmup: 2, steps: 10 },
    wasm: { warmup: 2, steps: 5 },
    cpu: { warmup: 1, steps: 1 },
  },
  smoke: {
    tensorflow: { warmup: 5, steps: 100 },
    native: { warmup: 5, steps: 100 },
    wasm: { warmup: 3, steps: 20 },
    cpu: { warmup: 1, steps: 3 },
  },
};

/**
 * Soak: memory is flat when the highest RSS of the second half of the run is within this of the
 * highest of the first half (the garbage collector makes RSS a sawtooth), and the tensor count
 * does not change.
 */
const SOAK_SLACK_MIB = 32;
const SOAK_SLACK_SHARE = 0.05;

interface SoakResult {
  readonly bench: 'vit-soak';
  readonly backend: string;
  readonly preset: StepPreset;
  readonly steps: number;
  /** [step, RSS MiB, tensors] every tenth of the run. */
  readonly samples: [number, number, number][];
  readonly rss_growth_mib: number;
  readonly tensors_growth: number;
  readonly flat: boolean;
  readonly peak_rss_mib: number;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const min = flag === '--warmup' ? 0 : 1;
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be a ${min === 0 ? 'non-negative' : 'positive'} integer, got '${value}'`);
  return n;
}

class UsageError extends Error {}

function parse() {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      preset: { type: 'string', default: 'bench' },
      backends: { type: 'string' },
      steps: { type: 'string' },
      warmup: { type: 'string' },
      soak: { type: 'string' },
      help: { type: 'boolean', default: false },
      // Internal: run one backend and preset in this process and print its JSON line.
      child: { type: 'string' },
    },
    strict: true,
  });
  const presets = values
    .preset!.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of presets) {
    if (!(p in STEP_PRESETS)) throw new UsageError(`unknown preset '${p}'; choose from ${Object.keys(STEP_PRESETS).join(', ')}`);
  }
  const backends = values.backends
    ? values.backends
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean)
    : [...BACKENDS];
  for (const b of backends) {
    if (!(BACKENDS as readonly string[]).includes(b)) throw new UsageError(`unknown backend '${b}'; choose from ${BACKENDS.join(', ')}`);
  }
  return {
    json: values.json!,
    help: values.help!,
    presets: presets as StepPreset[],
    backends: backends as BackendName[],
    steps: positiveInt(values.steps, '--steps'),
    warmup: positiveInt(values.warmup, '--warmup'),
    soak: positiveInt(values.soak, '--soak'),
    child: values.child,
  };
}

type Options = ReturnType<typeof parse>;

/** The child: one backend, one preset; prints one JSON line (a result, a soak, or why it was skipped). */
async function child(o: Options): Promise<void> {
  const [name, preset] = o.child!.split(':') as [BackendName, StepPreset];
  const reason = await backendAvailable(name);
  if (reason) {
    console.log(JSON.stringify({ bench: 'vit-train-step', backend: name, preset, skipped: reason }));
    return;
  }
  await selectBackend(name);
  const device = name === 'tensorflow' ? (tensorflowUsesGpu() ? 'gpu' : 'cpu') : undefined;
  const plan = { warmup: o.warmup ?? DEFAULT_STEPS[preset][name].warmup, steps: o.steps ?? DEFAULT_STEPS[preset][name].steps };
  if (o.soak) {
    console.log(JSON.stringify(soak(name, preset, plan.warmup, o.soak)));
    return;
  }
  const onStep = o.json ? undefined : (i: number, s: number) => console.error(`  ${name}/${preset} ${i < 0 ? 'warm-up' : `step ${i + 1}`}: ${s.toFixed(3)} s`);
  const result = runVitStep({ ...plan, preset, onStep });
  console.log(JSON.stringify(device ? { ...result, device } : result));
}

function soak(name: string, preset: StepPreset, warmup: number, steps: number): SoakResult {
  const train = createVitTrainStep(STEP_PRESETS[preset]);
  try {
    for (let i = 0; i < warmup; i++) train.step();
    const samples: [number, number, number][] = [];
    const every = Math.max(1, Math.floor(steps / 10));
    for (let i = 1; i <= steps; i++) {
      train.step();
      if (i % every === 0 || i === steps) samples.push([i, Math.round(process.memoryUsage().rss / 2 ** 20), tf.memory().numTensors]);
    }
    const half = Math.ceil(samples.length / 2);
    const rss0 = Math.max(...samples.slice(0, half).map((x) => x[1]));
    const growth = Math.max(...samples.slice(half).map((x) => x[1])) - rss0;
    const tensors0 = samples[0]![2];
    const tensors1 = samples[samples.length - 1]![2];
    return {
      bench: 'vit-soak',
      backend: name,
      preset,
      steps,
      samples,
      rss_growth_mib: growth,
      tensors_growth: tensors1 - tensors0,
      flat: tensors1 === tensors0 && growth <= Math.max(SOAK_SLACK_MIB, SOAK_SLACK_SHARE * rss0),
      peak_rss_mib: peakRssMib(),
    };
  } finally {
    train.dispose();
  }
}

/** Runs one backend and preset in a fresh process; returns its JSON line. */
function spawnChild(name: BackendName, preset: StepPreset, o: Options): Record<string, unknown> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', `${name}:${preset}`];
  if (o.json) args.push('--json');
  if (o.steps !== undefined) args.push('--steps', String(o.steps));
  if (o.warmup !== undefined) args.push('--warmup', String(o.warmup));
  if (o.soak !== undefined) args.push('--soak', String(o.soak));
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', o.json ? 'pipe' : 'inherit'], maxBuffer: 1 << 26 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    if (r.status === 0) return JSON.parse(last) as Record<string, unknown>;
  } catch {
    // fall through: report the failure
  }
  const why =
    (r.stderr ?? '')
      .trim()
      .split('\n')
      .filter((l) => /error/i.test(l))
      .pop() ?? `exit status ${r.status ?? r.signal}`;
  return { bench: 'vit-train-step', backend: name, preset, skipped: `the step failed: ${why.slice(0, 200)}` };
}

function describe(preset: StepPreset): string {
  const s = STEP_PRESETS[preset];
  const flops = stepFlops(s);
  return (
    `${preset}: batch ${s.batch}, ${(s.imageSize / s.patchSize) ** 2} tokens × ${s.patchSize ** 2 * s.channels} values, dim ${s.dim}, depth ${s.depth}, ` +
    `heads ${s.heads}, MLP ${s.mlpRatio}×, ${s.classes} classes, AdamW; analytic FLOP: forward ${(flops.forward / 1e9).toFixed(3)} G, ` +
    `step (×3) ${(flops.step / 1e9).toFixed(3)} G; effective GFLOP/s use the peers' ${peerStepGflop(s).toFixed(3)} G`
  );
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parse();
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (o.help) {
    console.log(USAGE);
    return;
  }
  if (o.child) {
    await child(o);
    return;
  }
  const log = (line: string) => {
    if (!o.json) console.log(line);
  };
  const emit = (row: unknown) => {
    if (o.json) console.log(JSON.stringify(row));
  };

  if (o.soak) {
    let allFlat = true;
    for (const preset of o.presets) {
      for (const name of o.backends) {
        log(`${name}/${preset}: ${o.soak} steps…`);
        const r = spawnChild(name, preset, o);
        emit(r);
        if ('skipped' in r) {
          log(`${name}/${preset}: skipped (${r.skipped as string})`);
          continue;
        }
        const s = r as unknown as SoakResult;
        allFlat &&= s.flat;
        log(
          `${name}/${preset}: RSS MiB ${s.samples.map((x) => x[1]).join(' → ')}; tensors ${s.samples[0]![2]} → ${s.samples[s.samples.length - 1]![2]}; ` +
            `second half's peak ${s.rss_growth_mib >= 0 ? '+' : ''}${s.rss_growth_mib} MiB over the first half's: ${s.flat ? 'flat' : 'NOT FLAT'} (peak ${s.peak_rss_mib} MiB)`,
        );
      }
    }
    if (!allFlat) process.exitCode = 1;
    return;
  }

  // The machine's reference: what OpenBLAS's sgemm reaches here.
  const sgemm = await benchSgemm();
  emit(sgemm);
  log(
    sgemm.gflops === null
      ? `sgemm: skipped (${sgemm.skipped})`
      : `sgemm ${sgemm.n}³ (OpenBLAS ${sgemm.core}, ${sgemm.threads} threads): ${sgemm.gflops.toFixed(1)} GFLOP/s`,
  );

  const rows: StepBenchResult[] = [];
  const skipped: { backend: string; preset: string; reason: string }[] = [];
  for (const preset of o.presets) {
    log(`\n${describe(preset)}`);
    for (const name of o.backends) {
      const r = spawnChild(name, preset, o);
      emit(r);
      if ('skipped' in r) {
        skipped.push({ backend: name, preset, reason: r.skipped as string });
        log(`${name}: skipped (${r.skipped as string})`);
        continue;
      }
      const result = r as unknown as StepBenchResult;
      rows.push(result);
      const device = (r as { device?: string }).device;
      log(
        `${name}${device ? ` (${device.toUpperCase()})` : ''}: ${result.images_per_s.toFixed(1)} images/s, ${result.step_s.toFixed(4)} s a step, ${result.cores_used} cores busy, peak RSS ${result.peak_rss_mib} MiB`,
      );
      if (result.tensors_after !== result.tensors_before) {
        const msg = `${name}/${preset}: tensor count grew from ${result.tensors_before} to ${result.tensors_after} over the timed steps`;
        if (o.json) console.error(msg);
        else log(`  WARNING ${msg}`);
      }
    }
    const native = rows.find((r) => r.backend === 'native' && r.preset === preset);
    if (native) {
      const other = (b: string) => rows.find((r) => r.backend === b && r.preset === preset);
      const summary = {
        bench: 'summary',
        preset,
        native_vs_tensorflow: other('tensorflow') ? native.images_per_s / other('tensorflow')!.images_per_s : null,
        native_vs_cpu: other('cpu') ? native.images_per_s / other('cpu')!.images_per_s : null,
        native_vs_wasm: other('wasm') ? native.images_per_s / other('wasm')!.images_per_s : null,
        native_share_of_sgemm: sgemm.gflops ? native.effective_gflops / sgemm.gflops : null,
      };
      emit(summary);
      const x = (v: number | null) => (v === null ? '—' : `${v.toFixed(1)}×`);
      log(
        `native: ${x(summary.native_vs_tensorflow)} tensorflow, ${x(summary.native_vs_wasm)} wasm, ${x(summary.native_vs_cpu)} cpu, ` +
          `${summary.native_share_of_sgemm ? (100 * summary.native_share_of_sgemm).toFixed(0) : '—'} % of the sgemm figure`,
      );
      log('\nper-kernel time of one native step:');
      await profileVitStep({ backend: 'native', preset, json: o.json, log: o.json ? (line) => console.log(line) : log });
    }
  }
  if (o.json) return;
  console.log('');
  const header = ['preset', 'backend', 'images/s', 'step s', 'eff. GFLOP/s', 'cores busy', 'peak RSS MiB', 'tensors before→after', 'loss first→last'];
  const table = rows.map((r) => [
    r.preset,
    r.backend,
    r.images_per_s.toFixed(1),
    r.step_s.toFixed(3),
    r.effective_gflops.toFixed(2),
    r.cores_used.toFixed(2),
    r.peak_rss_mib.toFixed(0),
    `${r.tensors_before}→${r.tensors_after}`,
    `${r.loss_first.toFixed(3)}→${r.loss_last.toFixed(3)}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const row of table) console.log(line(row));
  for (const s of skipped) console.log(`${s.preset}/${s.backend}: not measured (${s.reason})`);
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exitCode = 1;
});
