import { encodeModel, type OnnxNode, type OnnxTensor } from '../../../src/onnx/proto.ts';

export interface DetectorRow {
  /** Pixels added to the found box's x and y (to place a second detection). */
  readonly dx?: number;
  readonly dy?: number;
  /** Factor on the score. */
  readonly score?: number;
}

/**
 * A "face detector" that finds the bright square on a dark image: the square's extent is the
 * run of rows (columns) whose brightest pixel is lit, its first row (column) the ArgMax of that
 * profile, its length the profile's sum, its score the brightest pixel. Each entry of `rows`
 * emits that detection shifted and scaled, so one model can report one face, two faces, or
 * overlapping duplicates. `format` picks the output: YOLOv7-face `[1, N, 21]` (cx, cy, w, h,
 * objectness, class, 15 landmark values) or `[N, 5]` (x1, y1, x2, y2, score).
 */
export function squareDetector(size: number, rows: readonly DetectorRow[], format: 'yolo' | 'corners' = 'yolo'): Uint8Array {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const node = (op: string, inputs: string[], output: string, attributes?: OnnxNode['attributes']) => {
    nodes.push({ op, inputs, outputs: [output], ...(attributes ? { attributes } : {}) });
    return output;
  };
  const constant = (name: string, values: number[], dims = [1, values.length]) => {
    inits.push({ name, type: 'float', dims, values });
    return name;
  };
  const reduce = (op: string, x: string, axes: number[], out: string, keepdims = 0) => node(op, [x], out, { axes: { ints: axes }, keepdims: { i: keepdims } });

  const gray = reduce('ReduceMean', 'images', [1], 'gray'); // [1, S, S]
  const byRow = reduce('ReduceMax', gray, [2], 'by_row'); // [1, S]: lit rows
  const byCol = reduce('ReduceMax', gray, [1], 'by_col'); // [1, S]: lit columns
  const obj = reduce('ReduceMax', byRow, [1], 'obj', 1); // [1, 1]
  const side = constant('side', [size]);
  const h = node('Mul', [reduce('ReduceMean', byRow, [1], 'h_mean', 1), side], 'h');
  const w = node('Mul', [reduce('ReduceMean', byCol, [1], 'w_mean', 1), side], 'w');
  const first = (profile: string, out: string) =>
    node('Cast', [node('ArgMax', [profile], `${out}_i`, { axis: { i: 1 }, keepdims: { i: 1 } })], out, { to: { i: 1 } });
  const y1 = first(byRow, 'y1');
  const x1 = first(byCol, 'x1');
  const half = constant('half', [0.5]);

  let parts: string[];
  if (format === 'yolo') {
    const cx = node('Add', [x1, node('Mul', [w, half], 'half_w')], 'cx');
    const cy = node('Add', [y1, node('Mul', [h, half], 'half_h')], 'cy');
    parts = [cx, cy, w, h, obj, constant('cls', [1]), constant('landmarks', new Array(15).fill(0))];
  } else {
    parts = [x1, y1, node('Add', [x1, w], 'x2'), node('Add', [y1, h], 'y2'), obj];
  }
  const width = format === 'yolo' ? 21 : 5;
  const row = node('Concat', parts, 'row', { axis: { i: 1 } }); // [1, width]

  const emitted = rows.map((r, i) => {
    const dx = r.dx ?? 0;
    const dy = r.dy ?? 0;
    const scale = new Array<number>(width).fill(1);
    const shift = new Array<number>(width).fill(0);
    scale[4] = r.score ?? 1;
    if (format === 'yolo') [shift[0], shift[1]] = [dx, dy];
    else [shift[0], shift[1], shift[2], shift[3]] = [dx, dy, dx, dy];
    return node('Add', [node('Mul', [row, constant(`scale_${i}`, scale)], `scaled_${i}`), constant(`shift_${i}`, shift)], `det_${i}`);
  });
  const all = node('Concat', emitted, format === 'yolo' ? 'all' : 'output', { axis: { i: 0 } }); // [N, width]
  if (format === 'yolo') {
    inits.push({ name: 'out_shape', type: 'int64', dims: [3], values: [1, rows.length, width] });
    node('Reshape', [all, 'out_shape'], 'output');
  }
  return encodeModel({
    nodes,
    initializers: inits,
    inputs: [{ name: 'images', type: 'float', shape: [1, 3, size, size] }],
    outputs: [{ name: 'output', type: 'float', shape: format === 'yolo' ? [1, rows.length, width] : [rows.length, width] }],
  });
}

/** Images of `size` px, black, each with one square of the given brightness at [x1, y1, x2, y2). */
export function squares(size: number, list: readonly { box: [number, number, number, number]; brightness?: number }[]): Float32Array {
  const images = new Float32Array(list.length * size * size * 3);
  list.forEach(({ box: [x1, y1, x2, y2], brightness = 1 }, n) => {
    for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) for (let c = 0; c < 3; c++) images[((n * size + y) * size + x) * 3 + c] = brightness;
  });
  return images;
}
