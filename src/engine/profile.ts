import * as tf from '@tensorflow/tfjs';

/**
 * Where a run's time goes: named phases that nest (data, κ, train → optimizer, evaluation,
 * checkpoints…), each with its wall time, and the time of the tfjs kernels that ran inside it,
 * split into forward and backward. Kernel time is measured around each outermost kernel
 * dispatch (tf.engine().runKernel), so it is the backend's time for synchronous backends
 * (native, cpu, wasm, tensorflow on the CPU) and only the launch time for asynchronous ones (a
 * GPU). A kernel is a backward one when it runs inside tfjs's gradient pass (the engine's
 * 'backward' scope, which tf.grads and tf.variableGrads open).
 *
 *   const p = new RunProfile();
 *   p.start();
 *   await p.phaseAsync('data', () => load());
 *   p.phase('train', () => { p.phase('optimizer', () => opt.step(grads, lr)); });
 *   p.stop();
 *   console.log(formatProfile(p.report()));
 */

export interface KernelTimes {
  /** Milliseconds in kernels outside the gradient pass. */
  forward: number;
  /** Milliseconds in kernels of the gradient pass. */
  backward: number;
  calls: number;
}

export interface PhaseReport {
  readonly name: string;
  /** Wall milliseconds inside the phase, its sub-phases included. */
  readonly ms: number;
  /** Wall milliseconds not in any sub-phase. */
  readonly selfMs: number;
  readonly calls: number;
  /** Kernels that ran in this phase, not in a sub-phase. */
  readonly kernels: Readonly<KernelTimes>;
  readonly children: readonly PhaseReport[];
}

export interface ProfileReport {
  /** Wall milliseconds from start() to stop() (or to now). */
  readonly totalMs: number;
  /** The top-level phases; `rest` is the time outside all of them. */
  readonly phases: readonly PhaseReport[];
  readonly restMs: number;
  /** Kernels run outside every phase. */
  readonly restKernels: Readonly<KernelTimes>;
  /** Every kernel by name, most time first. */
  readonly byKernel: readonly { readonly name: string; readonly ms: number; readonly calls: number }[];
}

interface Node {
  readonly name: string;
  ms: number;
  calls: number;
  readonly kernels: KernelTimes;
  readonly children: Map<string, Node>;
}

function node(name: string): Node {
  return { name, ms: 0, calls: 0, kernels: { forward: 0, backward: 0, calls: 0 }, children: new Map() };
}

type RunKernel = (kernelName: string, inputs: tf.NamedTensorMap, attrs?: tf.NamedAttrMap) => tf.Tensor | tf.Tensor[];

interface EngineInternals {
  runKernel: RunKernel;
  state: { scopeStack: { name: string }[] };
}

/** One profiler per process may clock kernels at a time (it wraps the single tfjs engine). */
let clocking = false;

export class RunProfile {
  private readonly root = node('run');
  /** Open phases, innermost last, with their start times. */
  private readonly open: { node: Node; start: number }[] = [];
  private readonly byKernel = new Map<string, { ms: number; calls: number }>();
  private startedAt: number | null = null;
  private stoppedAt: number | null = null;
  private restore: (() => void) | null = null;

  constructor(private readonly options: { kernels?: boolean } = {}) {}

  /** Starts the clock and, unless `kernels: false`, the kernel timing. */
  start(): void {
    if (this.startedAt !== null) throw new Error('RunProfile.start: already started');
    this.startedAt = performance.now();
    if (this.options.kernels !== false) this.clockKernels();
  }

  /** Stops the clock; phases still open are closed. */
  stop(): void {
    if (this.startedAt === null || this.stoppedAt !== null) return;
    while (this.open.length > 0) this.end(this.open[this.open.length - 1]!.node.name);
    this.stoppedAt = performance.now();
    this.restore?.();
    this.restore = null;
  }

  /** Runs fn inside the phase `name` (nested in the phases open now). */
  phase<T>(name: string, fn: () => T): T {
    this.begin(name);
    try {
      return fn();
    } finally {
      this.end(name);
    }
  }

  async phaseAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.begin(name);
    try {
      return await fn();
    } finally {
      this.end(name);
    }
  }

  begin(name: string): void {
    if (this.startedAt === null || this.stoppedAt !== null) throw new Error(`RunProfile.begin('${name}'): the profile is not running (call start() first)`);
    const parent = this.open.length > 0 ? this.open[this.open.length - 1]!.node : this.root;
    let n = parent.children.get(name);
    if (!n) parent.children.set(name, (n = node(name)));
    this.open.push({ node: n, start: performance.now() });
  }

  end(name: string): void {
    const top = this.open[this.open.length - 1];
    if (!top || top.node.name !== name) {
      throw new Error(`RunProfile.end('${name}'): the innermost open phase is ${top ? `'${top.node.name}'` : 'none'}`);
    }
    this.open.pop();
    top.node.ms += performance.now() - top.start;
    top.node.calls += 1;
  }

  report(): ProfileReport {
    if (this.startedAt === null) throw new Error('RunProfile.report: never started');
    const now = performance.now();
    // Phases still open count up to now.
    const openMs = new Map(this.open.map((o) => [o.node, now - o.start]));
    const toReport = (n: Node): PhaseReport => {
      const children = [...n.children.values()].map(toReport).sort((a, b) => b.ms - a.ms);
      const ms = n.ms + (openMs.get(n) ?? 0);
      return { name: n.name, ms, selfMs: ms - children.reduce((s, c) => s + c.ms, 0), calls: n.calls, kernels: { ...n.kernels }, children };
    };
    const phases = [...this.root.children.values()].map(toReport).sort((a, b) => b.ms - a.ms);
    const totalMs = (this.stoppedAt ?? now) - this.startedAt;
    return {
      totalMs,
      phases,
      restMs: totalMs - phases.reduce((s, p) => s + p.ms, 0),
      restKernels: { ...this.root.kernels },
      byKernel: [...this.byKernel].map(([name, t]) => ({ name, ms: t.ms, calls: t.calls })).sort((a, b) => b.ms - a.ms),
    };
  }

  private clockKernels(): void {
    if (clocking) throw new Error('RunProfile: another profile is already timing kernels');
    const engine = tf.engine() as unknown as EngineInternals;
    const original = engine.runKernel;
    let depth = 0;
    const record = (kernelName: string, ms: number) => {
      const backward = engine.state.scopeStack.some((s) => s.name === 'backward');
      const target = this.open.length > 0 ? this.open[this.open.length - 1]!.node : this.root;
      if (backward) target.kernels.backward += ms;
      else target.kernels.forward += ms;
      target.kernels.calls += 1;
      const k = this.byKernel.get(kernelName);
      if (k) {
        k.ms += ms;
        k.calls += 1;
      } else this.byKernel.set(kernelName, { ms, calls: 1 });
    };
    engine.runKernel = function (this: unknown, kernelName, inputs, attrs) {
      if (depth > 0) return original.call(this, kernelName, inputs, attrs);
      depth++;
      const t0 = performance.now();
      try {
        return original.call(this, kernelName, inputs, attrs);
      } finally {
        depth--;
        record(kernelName, performance.now() - t0);
      }
    };
    clocking = true;
    this.restore = () => {
      engine.runKernel = original;
      clocking = false;
    };
  }
}

function pct(ms: number, total: number): string {
  return total > 0 ? `${((100 * ms) / total).toFixed(1)} %` : '—';
}

function secs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/**
 * The breakdown as printed lines: every phase with its share of the run and, where kernels ran,
 * how much of it they took (forward / backward); the time in no phase last, then the top kernels.
 */
export function formatProfile(r: ProfileReport, options: { topKernels?: number } = {}): string {
  const lines: string[] = [`profile: ${secs(r.totalMs)} in all`];
  const width = 28;
  const row = (label: string, ms: number, k: KernelTimes | null) => {
    const kernel = k && k.calls > 0 ? `  kernels ${secs(k.forward + k.backward)} (forward ${secs(k.forward)}, backward ${secs(k.backward)})` : '';
    lines.push(`${label.padEnd(width)} ${secs(ms).padStart(9)} ${pct(ms, r.totalMs).padStart(7)}${kernel}`);
  };
  const walk = (p: PhaseReport, indent: string) => {
    row(`${indent}${p.name}`, p.ms, p.kernels);
    if (p.children.length > 0) {
      for (const c of p.children) walk(c, `${indent}  `);
      if (p.selfMs > 0.0005 * r.totalMs) row(`${indent}  (in ${p.name} itself)`, p.selfMs, null);
    }
  };
  for (const p of r.phases) walk(p, '  ');
  row('  rest (no phase)', r.restMs, r.restKernels);
  const top = r.byKernel.slice(0, options.topKernels ?? 10);
  if (top.length > 0) {
    lines.push('kernels by time:');
    for (const k of top) lines.push(`  ${k.name.padEnd(width - 2)} ${secs(k.ms).padStart(9)} ${pct(k.ms, r.totalMs).padStart(7)}  ${k.calls} calls`);
  }
  return lines.join('\n');
}
