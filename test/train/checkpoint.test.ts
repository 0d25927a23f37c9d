import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensors, saveTensors, underPrefix, withPrefix } from '../../src/train/checkpoint.ts';

describe('checkpoint files', () => {
  let dir: string;
  before(async () => {
    await tf.setBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'ssfer-ckpt-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const record = () => ({
    'model.w': tf.tensor2d([
      [1.5, -2],
      [3.25, 1e-30],
    ]),
    'model.b': tf.tensor1d([3.4e38, -0]),
    step: tf.scalar(17, 'int32'),
    mask: tf.tensor1d([true, false, true], 'bool'),
    empty: tf.zeros([0, 3]),
  });

  it('round-trips names, dtypes, shapes, values and metadata exactly', async () => {
    const r = record();
    const path = join(dir, 'a.ckpt');
    await saveTensors(path, r, { epoch: 3, config: { dim: 8 } });
    const { tensors, meta } = await loadTensors(path);
    expect(meta).to.deep.equal({ epoch: 3, config: { dim: 8 } });
    expect(Object.keys(tensors)).to.deep.equal(Object.keys(r));
    for (const [name, t] of Object.entries(r)) {
      const u = tensors[name]!;
      expect(u.dtype, name).to.equal(t.dtype);
      expect(u.shape, name).to.deep.equal(t.shape);
      expect(Array.from(u.dataSync()), name).to.deep.equal(Array.from(t.dataSync()));
    }
    const raw = await readFile(path);
    expect(raw.toString('latin1', 0, 8)).to.equal('SSFERT01');
    tf.dispose([...Object.values(r), ...Object.values(tensors)]);
  });

  it('leaves the existing file intact when a write dies midway', async () => {
    const path = join(dir, 'b.ckpt');
    const good = { w: tf.tensor1d([1, 2, 3]) };
    await saveTensors(path, good, { v: 1 });
    // A crash after the temporary file was partly written: the temp file is left behind.
    await writeFile(join(dir, '.b.ckpt.99999.deadbeef.tmp'), Buffer.from('SSFERT01\x10\x00'));
    // A write that fails while streaming data (a tensor is disposed before its turn).
    const failing = { a: tf.tensor1d([9]), z: tf.tensor1d([9]) };
    const saving = saveTensors(path, failing, { v: 2 });
    failing.z.dispose();
    await saving.then(
      () => expect.fail('the save should have failed'),
      (err: Error) => expect(err.message).to.match(/disposed/),
    );
    const { tensors, meta } = await loadTensors(path);
    expect(meta).to.deep.equal({ v: 1 });
    expect(Array.from(tensors.w!.dataSync())).to.deep.equal([1, 2, 3]);
    // The failed save removed its own temporary file; only the simulated crash's remains.
    expect((await readdir(dir)).filter((f) => f.startsWith('.b.ckpt'))).to.deep.equal(['.b.ckpt.99999.deadbeef.tmp']);
    // And a later save still replaces the file.
    await saveTensors(path, { w: tf.tensor1d([4]) }, { v: 3 });
    expect((await loadTensors(path)).meta).to.deep.equal({ v: 3 });
    tf.dispose([good.w, failing.a, ...Object.values(tensors)]);
  });

  it('refuses a truncated or foreign file with a message naming it', async () => {
    const path = join(dir, 'c.ckpt');
    await saveTensors(path, { w: tf.zeros([64]) });
    await truncate(path, (await readFile(path)).length - 10);
    await loadTensors(path).then(
      () => expect.fail('should have failed'),
      (err: Error) => expect(err.message).to.match(/c\.ckpt: not a readable tensor file \(tensor 'w' runs past the end of the file/),
    );
    await writeFile(join(dir, 'd.ckpt'), 'hello world, not a checkpoint');
    await loadTensors(join(dir, 'd.ckpt')).then(
      () => expect.fail('should have failed'),
      (err: Error) => expect(err.message).to.match(/d\.ckpt: not a readable tensor file \(wrong magic bytes\)/),
    );
  });

  it('groups several modules under prefixes', () => {
    const a = { w: tf.scalar(1) };
    const merged = { ...withPrefix('model/', a), ...withPrefix('opt/', { step: tf.scalar(2) }) };
    expect(Object.keys(merged)).to.deep.equal(['model/w', 'opt/step']);
    expect(Object.keys(underPrefix('opt/', merged))).to.deep.equal(['step']);
    tf.dispose(Object.values(merged));
  });
});
