/**
 * Just enough of the ONNX protobuf format (onnx/onnx.proto) to write small graphs for tests, so
 * the detector tests need no download and no Python. Field numbers are those of onnx.proto.
 */

type Wire = 0 | 1 | 2 | 5;

class ProtoWriter {
  private readonly parts: number[] = [];

  private varint(value: bigint): void {
    // int64 fields are two's complement: a negative number takes ten bytes.
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.parts.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.parts.push(Number(v));
  }

  private key(field: number, wire: Wire): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int(field: number, value: number): this {
    this.key(field, 0);
    this.varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.parts.push(...b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(value.length));
    for (const x of value) this.parts.push(x);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  packedInts(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(BigInt(v));
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(4 * values.length);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(4 * i, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export type ElemType = 'float' | 'int64';
const ELEM: Record<ElemType, number> = { float: 1, int64: 7 };

export type Attribute = { i: number } | { f: number } | { ints: readonly number[] } | { floats: readonly number[] };

export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, Attribute>>;
}

export interface OnnxTensor {
  readonly name: string;
  readonly type: ElemType;
  readonly dims: readonly number[];
  readonly values: readonly number[];
}

export interface OnnxValueInfo {
  readonly name: string;
  readonly type: ElemType;
  /** A number is a fixed size, a string a named free dimension. */
  readonly shape: readonly (number | string)[];
}

export interface OnnxGraph {
  readonly nodes: readonly OnnxNode[];
  readonly initializers?: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly opset?: number;
}

function attribute(w: ProtoWriter, name: string, a: Attribute): void {
  // AttributeProto: name 1, f 2, i 3, floats 7, ints 8, type 20 (FLOAT 1, INT 2, FLOATS 6, INTS 7).
  w.string(1, name);
  if ('f' in a) w.float(2, a.f).int(20, 1);
  else if ('i' in a) w.int(3, a.i).int(20, 2);
  else if ('floats' in a) w.packedFloats(7, a.floats).int(20, 6);
  else w.packedInts(8, a.ints).int(20, 7);
}

function tensor(w: ProtoWriter, t: OnnxTensor): void {
  // TensorProto: dims 1, data_type 2, float_data 4, int64_data 7, name 8.
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (size !== t.values.length) throw new Error(`initializer ${t.name}: ${t.values.length} values for dims [${t.dims.join(', ')}]`);
  w.packedInts(1, t.dims).int(2, ELEM[t.type]);
  if (t.type === 'float') w.packedFloats(4, t.values);
  else w.packedInts(7, t.values);
  w.string(8, t.name);
}

function valueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  // ValueInfoProto: name 1, type 2 → TypeProto.tensor_type 1 → elem_type 1, shape 2 → dim 1 → dim_value 1 | dim_param 2.
  w.string(1, v.name).message(2, (type) =>
    type.message(1, (tt) =>
      tt.int(1, ELEM[v.type]).message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

/** Serialises a graph as an ONNX ModelProto (IR version 8, default domain at `opset`, 13 unless given). */
export function encodeModel(graph: OnnxGraph): Uint8Array {
  // ModelProto: ir_version 1, producer_name 2, graph 7, opset_import 8.
  return new ProtoWriter()
    .int(1, 8)
    .string(2, 'ssfer-tests')
    .message(7, (g) => {
      // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
      graph.nodes.forEach((n, i) =>
        g.message(1, (node) => {
          // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
          for (const x of n.inputs) node.string(1, x);
          for (const x of n.outputs) node.string(2, x);
          node.string(3, `${n.op}_${i}`).string(4, n.op);
          for (const [name, a] of Object.entries(n.attributes ?? {})) node.message(5, (attr) => attribute(attr, name, a));
        }),
      );
      g.string(2, 'graph');
      for (const t of graph.initializers ?? []) g.message(5, (w) => tensor(w, t));
      for (const v of graph.inputs) g.message(11, (w) => valueInfo(w, v));
      for (const v of graph.outputs) g.message(12, (w) => valueInfo(w, v));
    })
    .message(8, (o) => o.string(1, '').int(2, graph.opset ?? 13))
    .finish();
}
