import type { Attribute, OnnxNode, OnnxTensor } from './proto.ts';

/** What every exported classifier graph is fed and gives back. */
export const INPUT_NAME = 'images';
export const OUTPUT_NAME = 'logits';

/**
 * Builds the node list and initializers of an ONNX graph: each node gets a unique name and
 * output, and constants of the same value are stored once.
 */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();

  /** A fresh value name from a readable stem ('blocks.0.qkv' → 'blocks.0.qkv', then 'blocks.0.qkv_1'). */
  private fresh(stem: string): string {
    let name = stem;
    for (let i = 1; this.used.has(name); i++) name = `${stem}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds one node and returns the name of its (single) output. */
  op(op: string, inputs: readonly string[], name: string, attributes?: Readonly<Record<string, Attribute>>): string {
    const output = this.fresh(name);
    this.nodes.push({ op, inputs, outputs: [output], name: output, ...(attributes ? { attributes } : {}) });
    return output;
  }

  /** A float32 initializer named after the weight it holds. */
  weight(name: string, dims: readonly number[], values: Float32Array): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== values.length) throw new Error(`onnx export: weight ${name} has ${values.length} values for dims [${dims.join(', ')}]`);
    const unique = this.fresh(name);
    this.initializers.push({ name: unique, type: 'float', dims, values });
    return unique;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    return this.constant('float', [], [value]);
  }

  /** An int64 constant: a 1-D list (shapes, axes, indices), or a scalar when `scalar` is set. */
  ints(values: readonly number[], scalar = false): string {
    if (scalar && values.length !== 1) throw new Error('onnx export: an int64 scalar has one value');
    return this.constant('int64', scalar ? [] : [values.length], values);
  }

  private constant(type: 'float' | 'int64', dims: number[], values: readonly number[]): string {
    const stored = type === 'float' ? Array.from(Float32Array.from(values)) : values;
    const key = `${type}:${dims.join('x')}:${stored.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_${type}_${dims.length === 0 ? 'scalar' : dims.join('x')}`);
      this.initializers.push({ name, type, dims, values: stored });
      this.constants.set(key, name);
    }
    return name;
  }

  /** Declares a graph input's name so no node output takes it. */
  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`onnx export: '${name}' is already used`);
    this.used.add(name);
    return name;
  }
}
