import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { SavedTraining } from '../../src/contracts/stages.ts';
import { NonFiniteLoss, TrainLoop } from '../../src/train/loop.ts';
import { projectRoot, tempDir } from '../helpers.ts';
import { bin, oneCell, ssfer } from './cli.ts';

const withMae = ['--set', 'pipeline.pretrain={use: mae, epochs: 2, warmup_epochs: 1, batch_size: 16, pool: {size: 32}}'];
const runArgs = (out: string, ...more: string[]) => ['run', oneCell, '--backend', 'cpu', '--out', out, '--json', ...more];
const metricsOf = (r: { stdout: string }) => JSON.parse(r.stdout.trim().split('\n').pop()!);
const cellOf = (out: string) => {
  const base = path.join(out, 'rel-one');
  return path.join(base, fs.readdirSync(base).sort().pop()!, 'cells', 'default', 'seed-0');
};

/** Flips bytes in the middle of a file, keeping its size. */
function damage(file: string): void {
  const bytes = fs.readFileSync(file);
  for (let i = 0; i < 16; i++) bytes[Math.floor(bytes.length * 0.75) + i]! ^= 0xff;
  fs.writeFileSync(file, bytes);
}

describe('reliability: damaged stage caches and checkpoints', function () {
  this.timeout(300_000);

  it('recomputes a stage-cache entry damaged in place (same size) or truncated, with a message, to the same result', () => {
    const out = tempDir();
    const first = ssfer(runArgs(out, ...withMae));
    expect(first.status, first.stderr).to.equal(0);
    const stages = path.join(out, '.cache', 'stages');
    const weights = path.join(
      stages,
      fs.readdirSync(stages).find((f) => f.endsWith('.weights'))!,
    );

    damage(weights);
    const again = ssfer(runArgs(out, ...withMae));
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.match(
      /ssfer: stage cache entry pretrain-\w+\.weights is damaged \(tensor '.+' does not match its checksum: the file is damaged\); removed, the pre-training is computed again/,
    );
    expect(metricsOf(again)).to.deep.equal(metricsOf(first));

    fs.truncateSync(weights, Math.floor(fs.statSync(weights).size / 2));
    const third = ssfer(runArgs(out, ...withMae));
    expect(third.status, third.stderr).to.equal(0);
    expect(third.stderr).to.match(/stage cache entry pretrain-\w+\.weights is damaged \(.*(truncated|past the end).*\); removed/);
    expect(metricsOf(third)).to.deep.equal(metricsOf(first));
  });

  it('discards a damaged checkpoint, trains its epoch again from the one before, and ends as an uninterrupted run', async () => {
    const reference = tempDir();
    const epochs = ['--set', 'pipeline.supervised.epochs=12'];
    const want = ssfer(runArgs(reference, ...epochs));
    expect(want.status, want.stderr).to.equal(0);

    const out = tempDir();
    // Stopped once a checkpoint and the one before it exist.
    const stopped = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [bin, ...runArgs(out, ...epochs)], { cwd: projectRoot, stdio: 'ignore' });
      const timer = setInterval(() => {
        try {
          if (fs.existsSync(path.join(cellOf(out), 'checkpoints', 'supervised.ckpt.prev'))) {
            clearInterval(timer);
            child.kill('SIGINT');
          }
        } catch {
          // not made yet
        }
      }, 5);
      child.on('exit', (code) => {
        clearInterval(timer);
        resolve(code);
      });
    });
    expect(stopped).to.equal(130);
    const ckpt = path.join(cellOf(out), 'checkpoints', 'supervised.ckpt');
    damage(ckpt);
    const resumed = ssfer(runArgs(out, ...epochs, '--resume'));
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.match(
      /supervised\.ckpt: not a readable tensor file \(tensor '.+' does not match its checksum: the file is damaged\); discarded, its epochs are trained again/,
    );
    expect(resumed.stderr).to.match(/default: supervised continues from its checkpoint after epoch \d+/);
    const got = metricsOf(resumed);
    const ref = metricsOf(want);
    for (const key of ['accuracy', 'rows']) expect(got[key], key).to.deep.equal(ref[key]);
    expect(fs.readFileSync(path.join(cellOf(out), 'log.jsonl'), 'utf8')).to.equal(fs.readFileSync(path.join(cellOf(reference), 'log.jsonl'), 'utf8'));
  });
});

describe('reliability: non-finite losses', () => {
  it('stops the stage at the first non-finite loss, naming the stage, the step and the likely cause, and saves nothing', async () => {
    const w = tf.variable(tf.scalar(1));
    const saved: SavedTraining[] = [];
    let steps = 0;
    const loop = new TrainLoop<number>(
      {
        budget: { epochs: 3, stepsPerEpoch: 4, minSteps: null, maxSteps: null, warmupEpochs: 0, warmupLr: 0 },
        schedule: () => 1e-3,
        parts: { weights: new Map([['w', w]]) },
        batches: () => [0, 1, 2, 3],
        step: () => ({ loss: ++steps === 6 ? NaN : 1 }),
      },
      { stage: 'default: supervised', checkpoint: { load: async () => null, save: async (s) => void saved.push(s) } },
    );
    let error: unknown;
    await loop.run().catch((err: unknown) => (error = err));
    w.dispose();
    expect(error).to.be.instanceOf(NonFiniteLoss);
    expect((error as Error).message).to.equal(
      'default: supervised: the loss is NaN at step 6 of 12 (epoch 2, learning rate 0.001); stopped there. Likely cause: training diverged; lower lr, raise warmup_epochs, or check the data for broken images',
    );
    expect(steps).to.equal(6);
    expect(saved.map((s) => s.epoch)).to.deep.equal([1]);
  });
});
