import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { encodeModel } from '../../src/onnx/proto.ts';
import { tempDir } from '../helpers.ts';
import { onnxCheck } from './python.ts';

describe('ONNX protobuf writer (read back by the onnx package)', function () {
  this.timeout(120_000);

  it('writes nodes, every attribute kind, initializers, shapes and model metadata as onnx parses them', () => {
    const big = Float32Array.from({ length: 300 }, (_, i) => Math.fround(Math.sin(i) * 1e3) / 7);
    const bytes = encodeModel(
      {
        name: 'written',
        opset: 17,
        nodes: [
          { op: 'Mul', inputs: ['x', 'two'], outputs: ['y'] },
          { op: 'Reshape', inputs: ['y', 'shape'], outputs: ['r'], attributes: { allowzero: { i: 0 } } },
          { op: 'Transpose', inputs: ['r'], outputs: ['t'], attributes: { perm: { ints: [1, 0] } } },
          { op: 'LeakyRelu', inputs: ['t'], outputs: ['out'], name: 'leaky', attributes: { alpha: { f: 0.25 } } },
          { op: 'Constant', inputs: [], outputs: ['c'], attributes: { value_floats: { floats: [1.5, -2.25] } } },
          { op: 'Constant', inputs: [], outputs: ['label'], attributes: { value_string: { s: 'hé ✓' } } },
        ],
        initializers: [
          { name: 'two', type: 'float', dims: [], values: [2] },
          { name: 'shape', type: 'int64', dims: [3], values: [-1, 2, Number.MAX_SAFE_INTEGER] },
          { name: 'big', type: 'float', dims: [3, 100], values: big },
        ],
        inputs: [{ name: 'x', type: 'float', shape: ['n', 2], doc: 'the input' }],
        outputs: [{ name: 'out', type: 'float', shape: [2, 'n'] }],
      },
      { producer: { name: 'ssfer-test', version: '1.2.3' }, modelVersion: 4, doc: 'a test model', metadata: { classes: '["a","b"]', note: 'ünïcode' } },
    );
    const file = path.join(tempDir(), 'm.onnx');
    fs.writeFileSync(file, bytes);
    const [m] = onnxCheck('describe', file);

    expect(m.ir_version).to.equal(8); // opset 17 goes with IR version 8
    expect(m.opset).to.deep.equal([{ domain: '', version: 17 }]);
    expect(m.producer).to.deep.equal(['ssfer-test', '1.2.3']);
    expect(m.model_version).to.equal(4);
    expect(m.doc).to.equal('a test model');
    expect(m.metadata).to.deep.equal({ classes: '["a","b"]', note: 'ünïcode' });
    expect(m.graph).to.equal('written');
    expect(m.nodes.map((n: any) => [n.op, n.name, n.inputs, n.outputs])).to.deep.equal([
      ['Mul', 'Mul_0', ['x', 'two'], ['y']],
      ['Reshape', 'Reshape_1', ['y', 'shape'], ['r']],
      ['Transpose', 'Transpose_2', ['r'], ['t']],
      ['LeakyRelu', 'leaky', ['t'], ['out']],
      ['Constant', 'Constant_4', [], ['c']],
      ['Constant', 'Constant_5', [], ['label']],
    ]);
    expect(m.nodes.map((n: any) => n.attributes)).to.deep.equal([
      {},
      { allowzero: 0 },
      { perm: [1, 0] },
      { alpha: 0.25 },
      { value_floats: [1.5, -2.25] },
      { value_string: 'hé ✓' },
    ]);
    expect(m.initializers[0]).to.deep.equal({ name: 'two', dims: [], type: 'FLOAT', values: [2] });
    expect(m.initializers[1]).to.deep.equal({ name: 'shape', dims: [3], type: 'INT64', values: [-1, 2, Number.MAX_SAFE_INTEGER] });
    expect(m.initializers[2].dims).to.deep.equal([3, 100]);
    expect(m.initializers[2].values).to.deep.equal(Array.from(big));
    expect(m.inputs).to.deep.equal([{ name: 'x', shape: ['n', 2], doc: 'the input' }]);
    expect(m.outputs).to.deep.equal([{ name: 'out', shape: [2, 'n'], doc: '' }]);
  });

  it('writes the IR version a runtime expects for the opset', () => {
    const files = [11, 13, 17, 20].map((opset) => {
      const file = path.join(tempDir(), `m${opset}.onnx`);
      fs.writeFileSync(
        file,
        encodeModel({
          opset,
          nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
          inputs: [{ name: 'x', type: 'float', shape: [1] }],
          outputs: [{ name: 'y', type: 'float', shape: [1] }],
        }),
      );
      return file;
    });
    expect(onnxCheck('describe', ...files).map((m: any) => m.ir_version)).to.deep.equal([6, 7, 8, 9]);
  });

  it('refuses what it cannot write faithfully', () => {
    const io = { inputs: [{ name: 'x', type: 'float' as const, shape: [1] }], outputs: [{ name: 'y', type: 'float' as const, shape: [1] }] };
    const twice = { op: 'Identity', inputs: ['x'], outputs: ['y'], name: 'same' };
    expect(() => encodeModel({ ...io, nodes: [twice, { ...twice, outputs: ['z'] }] })).to.throw(/two nodes are named 'same'/);
    expect(() => encodeModel({ ...io, nodes: [], initializers: [{ name: 'k', type: 'int64', dims: [1], values: [0.5] }] })).to.throw(
      /initializer k is int64 but holds a value that is not a whole number/,
    );
    expect(() => encodeModel({ ...io, nodes: [], initializers: [{ name: 'k', type: 'float', dims: [2, 2], values: [1, 2, 3] }] })).to.throw(
      /initializer k has 3 values for dims \[2, 2\]/,
    );
  });
});
