import * as tf from '@tensorflow/tfjs';
import { GraphBuilder, INPUT_NAME, OUTPUT_NAME } from '../../../src/onnx/graph.ts';
import type { OnnxGraph } from '../../../src/onnx/proto.ts';
import type { VisionTransformer } from './model.ts';

/**
 * The ViT's inference graph in standard ONNX operators at opset 17 (MatMul, Add, Sub, Mul, Div,
 * LayerNormalization, Softmax, Erf/Tanh, Reshape, Transpose, Gather, Slice, Shape, Expand,
 * Concat, ReduceMean), op for op as the tfjs model computes it (plugins/backbone/vit), so both
 * agree to float32 rounding. Input: NHWC float32 pixels in [0, 1] with a free batch size; the
 * input normalisation is the graph's first step. Output: logits [batch, classes].
 */

export const VIT_OPSET = 17;

interface Weights {
  get(name: string): { dims: number[]; values: Float32Array };
  has(name: string): boolean;
}

function weightsOf(model: VisionTransformer): Weights {
  const state = model.state();
  const read = new Map<string, { dims: number[]; values: Float32Array }>();
  try {
    for (const [name, t] of Object.entries(state)) read.set(name, { dims: [...t.shape], values: t.dataSync() as Float32Array });
  } finally {
    tf.dispose(Object.values(state));
  }
  return {
    has: (name) => read.has(name),
    get(name) {
      const w = read.get(name);
      if (!w) throw new Error(`onnx export: the model has no weight '${name}'`);
      return w;
    },
  };
}

export function vitGraph(model: VisionTransformer): OnnxGraph {
  // By kind rather than instanceof: the plugin's module may be loaded twice (registry and imports).
  if (model.kind !== 'vit' || typeof model.config?.dim !== 'number') throw new Error(`onnx export: expected a vit model, got '${model.kind}'`);
  const c = model.config;
  const w = weightsOf(model);
  const g = new GraphBuilder();
  const param = (name: string) => {
    const { dims, values } = w.get(name);
    return g.weight(name, dims, values);
  };
  const D = c.dim;
  const hd = D / c.heads;

  const linear = (x: string, name: string, out: string) => {
    const y = g.op('MatMul', [x, param(`${name}.weight`)], `${out}.matmul`);
    return w.has(`${name}.bias`) ? g.op('Add', [y, param(`${name}.bias`)], out) : y;
  };
  const layerNorm = (x: string, name: string) =>
    g.op('LayerNormalization', [x, param(`${name}.weight`), param(`${name}.bias`)], name, { axis: { i: -1 }, epsilon: { f: c.layerNormEps } });
  const gelu = (x: string, name: string) => {
    if (c.gelu === 'erf') {
      // x·0.5 · (erf(x/√2) + 1), as layers.ts computes it.
      const half = g.op('Mul', [x, g.scalar(0.5)], `${name}.half`);
      const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)], `${name}.scaled`)], `${name}.erf`);
      return g.op('Mul', [half, g.op('Add', [erf, g.scalar(1)], `${name}.cdf2`)], name);
    }
    // x·0.5 · (1 + tanh(√(2/π)·(x + 0.044715·x³))).
    const cube = g.op('Mul', [g.op('Mul', [x, x], `${name}.sq`), x], `${name}.cube`);
    const inner = g.op(
      'Mul',
      [g.op('Add', [x, g.op('Mul', [cube, g.scalar(0.044715)], `${name}.c3`)], `${name}.poly`), g.scalar(Math.sqrt(2 / Math.PI))],
      `${name}.inner`,
    );
    const half = g.op('Mul', [x, g.scalar(0.5)], `${name}.half`);
    return g.op('Mul', [half, g.op('Add', [g.op('Tanh', [inner], `${name}.tanh`), g.scalar(1)], `${name}.cdf2`)], name);
  };

  // Normalise, then patchify: [B, S, S, C] → [B·g, p, g, p·C] → [B·g, g, p, p·C] → [B, N, p·p·C].
  const images = g.reserve(INPUT_NAME);
  const mean = g.weight('input_mean', [c.channels], Float32Array.from(c.inputMean));
  const std = g.weight('input_std', [c.channels], Float32Array.from(c.inputStd));
  const normalised = g.op('Div', [g.op('Sub', [images, mean], 'centred'), std], 'normalised');
  const grid = model.gridSize;
  const p = model.patchSize;
  const rows = g.op('Reshape', [normalised, g.ints([-1, p, grid, p * c.channels])], 'patch_rows');
  const moved = g.op('Transpose', [rows], 'patch_moved', { perm: { ints: [0, 2, 1, 3] } });
  const patches = g.op('Reshape', [moved, g.ints([-1, model.numPatches, model.patchDim])], 'patches');

  // Patch embedding plus the patches' positions; the class token (with its position) in front.
  const embedded = linear(patches, 'patch_embed', 'patch_embed');
  const tokensWithCls = model.numPatches + (c.classToken ? 1 : 0);
  // The model's own position embedding: trained from its start during fine-tuning, or fixed.
  const positions = w.get('pos_embed').values;
  if (positions.length !== tokensWithCls * D) throw new Error(`onnx export: position embedding has ${positions.length} values, expected ${tokensWithCls * D}`);
  const first = c.classToken ? 1 : 0;
  const patchPositions = g.weight('pos_embed.patches', [1, model.numPatches, D], positions.slice(first * D));
  let tokens = g.op('Add', [embedded, patchPositions], 'embedded');
  if (c.classToken) {
    const cls = w.get('cls_token').values;
    // The class token plus its position row, added once here instead of per image.
    const clsWithPosition = Float32Array.from(cls, (v, i) => Math.fround(v + positions[i]!));
    const clsConst = g.weight('cls_token.with_position', [1, 1, D], clsWithPosition);
    const batch = g.op('Shape', [tokens], 'batch_size', { start: { i: 0 }, end: { i: 1 } });
    const clsShape = g.op('Concat', [batch, g.ints([1, D])], 'cls_shape', { axis: { i: 0 } });
    const clsTokens = g.op('Expand', [clsConst, clsShape], 'cls_tokens');
    tokens = g.op('Concat', [clsTokens, tokens], 'tokens', { axis: { i: 1 } });
  }

  // Pre-norm blocks on [B, T, D].
  const scale = g.scalar(1 / Math.sqrt(hd));
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    const qkv = linear(layerNorm(tokens, `${b}.norm1`), `${b}.attn.qkv`, `${b}.attn.qkv`);
    // [B, T, 3·D] → [B, T, 3, H, hd] → [3, B, H, T, hd], as layers.ts splits the fused projection.
    const heads = g.op('Transpose', [g.op('Reshape', [qkv, g.ints([0, 0, 3, c.heads, hd])], `${b}.attn.qkv_heads`)], `${b}.attn.qkv_split`, {
      perm: { ints: [2, 0, 3, 1, 4] },
    });
    const [q, k, v] = ['q', 'k', 'v'].map((n, j) => g.op('Gather', [heads, g.ints([j], true)], `${b}.attn.${n}`, { axis: { i: 0 } }));
    const kT = g.op('Transpose', [k!], `${b}.attn.k_t`, { perm: { ints: [0, 1, 3, 2] } });
    const scores = g.op('MatMul', [g.op('Mul', [q!, scale], `${b}.attn.q_scaled`), kT], `${b}.attn.scores`);
    const mixed = g.op('MatMul', [g.op('Softmax', [scores], `${b}.attn.weights`, { axis: { i: -1 } }), v!], `${b}.attn.mixed`);
    const merged = g.op('Reshape', [g.op('Transpose', [mixed], `${b}.attn.mixed_t`, { perm: { ints: [0, 2, 1, 3] } }), g.ints([0, 0, D])], `${b}.attn.merged`);
    const h = g.op('Add', [tokens, linear(merged, `${b}.attn.proj`, `${b}.attn.proj`)], `${b}.attn_residual`);
    const hidden = gelu(linear(layerNorm(h, `${b}.norm2`), `${b}.mlp.fc1`, `${b}.mlp.fc1`), `${b}.mlp.gelu`);
    tokens = g.op('Add', [h, linear(hidden, `${b}.mlp.fc2`, `${b}.mlp.fc2`)], `${b}.out`);
  }
  const encoded = layerNorm(tokens, 'norm');

  // Pooling: the class token, or the mean of the patch tokens.
  let features: string;
  if (c.pool === 'cls') {
    features = g.op('Gather', [encoded, g.ints([0], true)], 'features', { axis: { i: 1 } });
  } else {
    const patchTokens = c.classToken ? g.op('Slice', [encoded, g.ints([1]), g.ints([tokensWithCls]), g.ints([1])], 'patch_tokens') : encoded;
    features = g.op('ReduceMean', [patchTokens], 'features', { axes: { ints: [1] }, keepdims: { i: 0 } });
  }

  const logits =
    c.headHidden === 0 ? linear(features, 'head', OUTPUT_NAME) : linear(gelu(linear(features, 'head.fc1', 'head.fc1'), 'head.gelu'), 'head.fc2', OUTPUT_NAME);
  if (logits !== OUTPUT_NAME) throw new Error(`onnx export: the output came out as '${logits}'`);

  return {
    name: 'ssfer_vit',
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [
      {
        name: INPUT_NAME,
        type: 'float',
        shape: ['batch', c.imageSize, c.imageSize, c.channels],
        doc: `RGB pixels in [0, 1], NHWC, ${c.imageSize}×${c.imageSize}; normalised inside the graph`,
      },
    ],
    outputs: [{ name: OUTPUT_NAME, type: 'float', shape: ['batch', model.numClasses], doc: 'class scores before softmax' }],
    opset: VIT_OPSET,
  };
}
