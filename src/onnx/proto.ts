import { endianness } from 'node:os';

/**
 * A writer of the ONNX protobuf messages (onnx/onnx.proto3) that a plain inference graph needs:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto and the
 * metadata entries. Field numbers are those of onnx.proto. Large tensors are kept as views and
 * copied once, into the final buffer, so a ViT-Base (344 MB of weights) encodes without a
 * second copy per weight.
 */

type Wire = 0 | 2 | 5;

/** Protobuf's limit on a serialised message; ONNX files beyond it need external data. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;

/** Below this, bytes are copied into the current run of small values instead of kept as a view. */
const VIEW_BYTES = 256;

class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private pending: number[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  private flush(): void {
    if (this.pending.length > 0) {
      this.parts.push(Uint8Array.from(this.pending));
      this.pending = [];
    }
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length < VIEW_BYTES) {
      for (const b of bytes) this.pending.push(b);
    } else {
      this.flush();
      this.parts.push(bytes);
    }
    this.size += bytes.length;
  }

  private varint(value: number | bigint): void {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** 31) {
      let v = value;
      while (v >= 0x80) {
        this.pending.push((v & 0x7f) | 0x80);
        this.size++;
        v >>>= 7;
      }
      this.pending.push(v);
      this.size++;
      return;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error(`onnx: ${value} is not an integer a varint can hold exactly`);
    // int64 fields are two's complement: a negative number takes ten bytes.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      this.size++;
      v >>= 7n;
    }
    this.pending.push(Number(v));
    this.size++;
  }

  private key(field: number, wire: Wire): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.append(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(value.length);
    this.append(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    inner.flush();
    this.key(field, 2);
    this.varint(inner.size);
    this.flush();
    this.parts.push(...inner.parts);
    this.size += inner.size;
    return this;
  }

  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    return this.bytes(field, littleEndian(Float32Array.from(values)));
  }

  finish(): Uint8Array {
    this.flush();
    if (this.parts.length === 1) return this.parts[0]!;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function littleEndian(values: Float32Array | BigInt64Array): Uint8Array {
  // Raw tensor data is little-endian by the ONNX spec; typed arrays are in the machine's order.
  if (endianness() !== 'LE') throw new Error('onnx: writing raw tensor data needs a little-endian machine');
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export type ElemType = 'float' | 'int64';
/** TensorProto.DataType. */
const ELEM: Record<ElemType, number> = { float: 1, int64: 7 };

export type Attribute = { i: number } | { f: number } | { s: string } | { ints: readonly number[] } | { floats: readonly number[] };

export interface OnnxNode {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, Attribute>>;
  /** Unique node name; `<op>_<index>` when absent. */
  readonly name?: string;
}

export interface OnnxTensor {
  readonly name: string;
  readonly type: ElemType;
  /** [] for a scalar. */
  readonly dims: readonly number[];
  readonly values: readonly number[] | Float32Array;
}

export interface OnnxValueInfo {
  readonly name: string;
  readonly type: ElemType;
  /** A number is a fixed size, a string a named free dimension. */
  readonly shape: readonly (number | string)[];
  readonly doc?: string;
}

export interface OnnxGraph {
  readonly nodes: readonly OnnxNode[];
  readonly initializers?: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /** Version of the default ("ai.onnx") operator set; 13 unless given. */
  readonly opset?: number;
  readonly name?: string;
  readonly doc?: string;
}

/** What the ModelProto says about the model around its graph. */
export interface OnnxModelInfo {
  readonly producer?: { readonly name: string; readonly version?: string };
  readonly modelVersion?: number;
  readonly doc?: string;
  /** ModelProto.metadata_props: free key–value pairs a runtime hands to its user. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE): a runtime refuses an
 * IR version newer than it knows, so the lowest one that allows the opset is written.
 */
function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function attribute(w: ProtoWriter, name: string, a: Attribute): void {
  // AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7).
  w.string(1, name);
  if ('f' in a) w.float(2, a.f).int(20, 1);
  else if ('i' in a) w.int(3, a.i).int(20, 2);
  else if ('s' in a) w.string(4, a.s).int(20, 3);
  else if ('floats' in a) w.packedFloats(7, a.floats).int(20, 6);
  else w.packedInts(8, a.ints).int(20, 7);
}

function tensor(w: ProtoWriter, t: OnnxTensor): void {
  // TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian values).
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (size !== t.values.length) throw new Error(`onnx: initializer ${t.name} has ${t.values.length} values for dims [${t.dims.join(', ')}]`);
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, ELEM[t.type]).string(8, t.name);
  if (t.type === 'float') {
    w.bytes(9, littleEndian(t.values instanceof Float32Array ? t.values : Float32Array.from(t.values)));
  } else {
    if (!Array.from(t.values).every((v) => Number.isSafeInteger(v)))
      throw new Error(`onnx: initializer ${t.name} is int64 but holds a value that is not a whole number`);
    w.bytes(9, littleEndian(BigInt64Array.from(Array.from(t.values), (v) => BigInt(v))));
  }
}

function valueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  // ValueInfoProto: name 1, type 2 → TypeProto.tensor_type 1 → elem_type 1, shape 2 → dim 1 → dim_value 1 | dim_param 2; doc_string 3.
  w.string(1, v.name).message(2, (type) =>
    type.message(1, (tt) =>
      tt.int(1, ELEM[v.type]).message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
  if (v.doc) w.string(3, v.doc);
}

/**
 * Serialises a graph as an ONNX ModelProto: the IR version that goes with the opset, the default
 * operator domain at `graph.opset`, and the model's producer, documentation and metadata.
 */
export function encodeModel(graph: OnnxGraph, info: OnnxModelInfo = {}): Uint8Array {
  const opset = graph.opset ?? 13;
  const names = new Set<string>();
  graph.nodes.forEach((n, i) => {
    const name = n.name ?? `${n.op}_${i}`;
    if (names.has(name)) throw new Error(`onnx: two nodes are named '${name}'`);
    names.add(name);
  });
  // ModelProto: ir_version 1, producer_name 2, producer_version 3, model_version 5, doc_string 6,
  // graph 7, opset_import 8, metadata_props 14.
  const w = new ProtoWriter().int(1, irVersionFor(opset)).string(2, info.producer?.name ?? 'ssfer');
  if (info.producer?.version) w.string(3, info.producer.version);
  if (info.modelVersion !== undefined) w.int(5, info.modelVersion);
  if (info.doc) w.string(6, info.doc);
  w.message(7, (g) => {
    // GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12.
    graph.nodes.forEach((n, i) =>
      g.message(1, (node) => {
        // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
        for (const x of n.inputs) node.string(1, x);
        for (const x of n.outputs) node.string(2, x);
        node.string(3, n.name ?? `${n.op}_${i}`).string(4, n.op);
        for (const [name, a] of Object.entries(n.attributes ?? {})) node.message(5, (attr) => attribute(attr, name, a));
      }),
    );
    g.string(2, graph.name ?? 'graph');
    for (const t of graph.initializers ?? []) g.message(5, (x) => tensor(x, t));
    if (graph.doc) g.string(10, graph.doc);
    for (const v of graph.inputs) g.message(11, (x) => valueInfo(x, v));
    for (const v of graph.outputs) g.message(12, (x) => valueInfo(x, v));
  });
  // OperatorSetIdProto: domain 1 ('' is ai.onnx), version 2.
  w.message(8, (o) => o.string(1, '').int(2, opset));
  // StringStringEntryProto: key 1, value 2.
  for (const [key, value] of Object.entries(info.metadata ?? {})) w.message(14, (e) => e.string(1, key).string(2, value));
  if (w.length > MAX_MODEL_BYTES) {
    throw new Error(
      `onnx: the model needs ${(w.length / 2 ** 30).toFixed(2)} GiB, more than the 2 GiB one protobuf file can hold (ONNX external data is not written)`,
    );
  }
  return w.finish();
}
