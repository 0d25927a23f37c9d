import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { tableNotes } from '../../../src/pipeline/outputs.ts';
import { runFirstCell } from '../../cells.ts';
import { tempDir, writeFiles } from '../../helpers.ts';
import { colourOf, writeSolid } from '../dataset/disk-fixtures.ts';

/**
 * An image folder with no boxes file: the `annotations` boxes give every image the whole-image
 * box, as aligned RAF-DB, FERPlus and Adience did before a detector found their faces.
 */
async function folderWithoutBoxes(): Promise<string> {
  const root = tempDir('ssfer-kappa-');
  const jobs: Promise<void>[] = [];
  for (const [split, n] of [
    ['train', 8],
    ['test', 2],
  ] as const) {
    for (const [c, name] of ['angry', 'happy', 'sad'].entries()) {
      for (let i = 0; i < n; i++) jobs.push(writeSolid(path.join(root, split, name, `img_${i}.png`), 24, 24, colourOf(c, i)));
    }
  }
  await Promise.all(jobs);
  return root;
}

async function run(root: string, sets: string[] = []) {
  const dir = writeFiles({
    'recipe.yaml': `title: whole-image boxes
seed: 3
data:
  dataset: { use: image-folder, root: ${JSON.stringify(root)} }
  labels: { use: fraction, fraction: 1 }
  boxes: { use: annotations }
model:
  backbone: { use: vit, preset: tiny, dim: 16, depth: 1, heads: 2, image_size: 16, patch_size: 8, pool: mean }
pipeline:
  pretrain: { use: none }
  supervised:
    epochs: 2
    few_labels_epochs: 2
    warmup_epochs: 0
    batch_size: 8
    augment: { use: weak }
    mixing: { use: facemix, kappa: { use: iou }, loss: { use: L4 } }
  semi: { use: none }
evaluation: { batch_size: 16 }
`,
  });
  return runFirstCell(path.join(dir, 'recipe.yaml'), { sets });
}

describe('FaceMix: κ cannot silently vanish', function () {
  this.timeout(120_000);
  let root: string;
  before(async () => {
    await tf.setBackend('cpu');
    root = await folderWithoutBoxes();
  });

  it('stops after the first epoch when every face box is the whole image, naming the cause and the fix', async () => {
    const before = tf.memory().numTensors;
    const err = (await run(root).catch((e: Error) => e)) as Error;
    expect(err).to.be.instanceOf(Error);
    expect(err.name).to.equal('UsageError');
    expect(err.message).to.match(/^FaceMix\(iou\) in epoch 1: κ is 0 for every one of 24 pairs because every face box is the whole image/);
    expect(err.message).to.contain('data.boxes: { use: auto }');
    expect(err.message).to.contain('{ use: face-api }');
    expect(err.message).to.contain('a dataset with annotated boxes');
    expect(err.message).to.contain('allow_constant_kappa: true');
    expect(tf.memory().numTensors, 'the stopped cell released its tensors').to.equal(before);
  });

  it('runs with allow_constant_kappa, and the cell’s notes and the table notes say so', async () => {
    const { metrics, log } = await run(root, ['pipeline.supervised.mixing.allow_constant_kappa=true']);
    expect(log.filter((l) => l.stage === 'supervised')).to.have.length(6);
    for (const l of log) expect(l.metrics.kappa).to.equal(0);
    const note =
      'FaceMix ran with a constant κ 0 (every face box is the whole image): allow_constant_kappa was set, so its rows are Mixup with a constant weight on the real images';
    expect(metrics.stage_notes).to.include(`supervised: ${note}`);
    expect(tableNotes([{ id: metrics.id, runs: [metrics] }])).to.include(`${metrics.id}: supervised: ${note}`);
  });
});
