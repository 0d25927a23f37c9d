import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { tensorflowBuild } from '../../src/engine/backend.ts';
import { registerNativeBackend } from '../../src/native/index.ts';
import { fixtures, projectRoot, tempDir } from '../helpers.ts';

// The tensorflow backend (@tensorflow/tfjs-node on PyPI's libtensorflow, built by
// `npm run setup:tensorflow`). Everything runs in child processes: loading tfjs-node registers
// 'tensorflow' as the default backend of the process, which the other suites must not inherit.

function notBuilt(): string | null {
  const built = tensorflowBuild();
  if (!built) return 'the tensorflow backend is not built (npm run setup:tensorflow builds it; .ci/run does)';
  return null;
}

/** Runs a script with tsx in a fresh process; returns its last stdout line as JSON. */
function script(code: string): unknown {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: projectRoot, encoding: 'utf8' });
  expect(r.status, r.stderr).to.equal(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('npm run setup:tensorflow', function () {
  this.timeout(60_000);
  const setup = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [path.join(projectRoot, 'src', 'engine', 'setup-tensorflow.mjs'), ...args], {
      cwd: projectRoot,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });

  it('refuses an unknown option with the usage and status 2', () => {
    const r = setup(['--cuda']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/unknown option '--cuda'\n {2}fix: usage: npm run setup:tensorflow/);
  });

  it('says what is missing and how to get it: a C++ compiler, Python', () => {
    const noCompiler = setup([], { CXX: '/nonexistent/g++' });
    expect(noCompiler.status).to.equal(1);
    expect(noCompiler.stderr).to.match(/no C\+\+ compiler \(g\+\+\) to build the binding\n {2}fix: apt-get install g\+\+ make/);
    const noPython = setup(['--python', '/nonexistent/python3']);
    expect(noPython.status).to.equal(1);
    expect(noPython.stderr).to.match(/\/nonexistent\/python3 not found\n {2}fix: apt-get install python3 python3-venv/);
  });
});

describe('tensorflow backend', function () {
  this.timeout(600_000);
  before(function () {
    const reason = notBuilt();
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
  });

  it('loads, computes like the cpu backend (DenseBincount included) and is not the automatic choice on a CPU', () => {
    const out = script(`
      import * as tf from '@tensorflow/tfjs';
      import { selectBackend, tensorflowUsesGpu } from './src/engine/backend.ts';
      const auto = await selectBackend();
      await selectBackend('tensorflow');
      const run = async (backend) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
          const q = tf.tensor2d([[0, 3, 3, 1], [2, 2, 2, 0]], [2, 4], 'int32');
          const [ga] = tf.grads((x) => tf.sum(tf.square(tf.matMul(x, tf.transpose(x)))))([a]);
          return {
            product: Array.from(tf.matMul(a, a, false, true).dataSync()),
            grad: Array.from(ga.dataSync()),
            counts: Array.from(tf.denseBincount(q, [], 4).dataSync()),
            binary: Array.from(tf.denseBincount(q, [], 4, true).dataSync()),
          };
        });
      };
      const cpu = await run('cpu');
      const tensorflow = await run('tensorflow');
      console.log(JSON.stringify({ auto: auto.name, notes: auto.notes, gpu: tensorflowUsesGpu(), cpu, tensorflow }));
    `) as { auto: string; notes: string[]; gpu: boolean; cpu: Record<string, number[]>; tensorflow: Record<string, number[]> };
    expect(out.tensorflow.counts).to.deep.equal([1, 1, 0, 2, 1, 0, 3, 0]);
    expect(out.tensorflow.binary).to.deep.equal([1, 1, 0, 1, 1, 0, 1, 0]);
    for (const k of Object.keys(out.cpu)) {
      out.cpu[k]!.forEach((v, i) => expect(out.tensorflow[k]![i], `${k}[${i}]`).to.be.closeTo(v, 1e-5 * Math.max(1, Math.abs(v))));
    }
    if (out.gpu) {
      expect(out.auto).to.equal('tensorflow');
    } else {
      expect(out.auto).to.not.equal('tensorflow');
      expect(out.notes.join('\n')).to.match(/tensorflow: .*native is faster on the CPU/);
    }
  });

  it('trains every stage of a tiny recipe with each step’s loss equal to native’s within 1e-3 relative', function () {
    if (registerNativeBackend() !== null) {
      console.log(`    skipped: ${registerNativeBackend()}`);
      this.skip();
    }
    const run = (backend: string) => {
      const out = tempDir();
      const r = spawnSync(
        process.execPath,
        [
          path.join(projectRoot, 'src', 'bin', 'ssfer.js'),
          'run',
          path.join(fixtures, 'recipes', 'tiny-stages.yaml'),
          '--json',
          '--backend',
          backend,
          '--out',
          out,
        ],
        {
          cwd: projectRoot,
          encoding: 'utf8',
        },
      );
      expect(r.status, r.stderr).to.equal(0);
      const base = path.join(out, 'tiny-stages');
      const cells = path.join(base, fs.readdirSync(base)[0]!, 'cells');
      const logs = fs
        .readdirSync(cells)
        .sort()
        .map((c) =>
          fs
            .readFileSync(path.join(cells, c, 'seed-0', 'log.jsonl'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { loss: number; stage: string; step: number }),
        );
      const table = JSON.parse(r.stdout) as { backend?: string; cells: { ours: number | null }[] };
      return { logs, table };
    };
    const tensorflow = run('tensorflow');
    const native = run('native');
    expect(
      tensorflow.table.cells.every((c) => typeof c.ours === 'number'),
      'every cell finished on tensorflow',
    ).to.equal(true);
    expect(tensorflow.logs.map((l) => l.map((e) => `${e.stage}:${e.step}`))).to.deep.equal(native.logs.map((l) => l.map((e) => `${e.stage}:${e.step}`)));
    const stages = new Set(tensorflow.logs.flat().map((e) => e.stage));
    expect([...stages].sort()).to.deep.equal(['semi', 'supervised']);
    tensorflow.logs.forEach((cell, c) =>
      cell.forEach((e, k) => {
        const want = native.logs[c]![k]!.loss;
        expect(e.loss, `cell ${c} ${e.stage} step ${e.step}`).to.be.closeTo(want, 1e-3 * Math.abs(want));
      }),
    );
  });
});
