import type { backend_util, DataType, KernelBackend } from '@tensorflow/tfjs';

type BackendValues = backend_util.BackendValues;

type Values = Float32Array | Int32Array | Uint8Array;

/** Arrays below this size are cheap to allocate and collect; only larger ones are recycled. */
const MIN_POOLED_BYTES = 1 << 16;
/** Free buffers kept for reuse beyond this are left to the garbage collector. */
const MAX_FREE_BYTES = 1 << 30;

interface Chunk {
  /** The dataId whose values this buffer is, once registered with the backend. */
  owner: object | null;
  /** Something else may still read this buffer (a view of it, or a caller of dataSync). */
  pinned: boolean;
}

/**
 * Recycles kernel output buffers when tfjs disposes their tensors. Without it every kernel output
 * is a fresh ArrayBuffer: V8 then runs a full garbage collection every ~64 MB of them (a dozen per
 * training step) and the allocator hands out freshly mapped pages that fault on first write.
 *
 * A buffer is reused only while nothing else can see it: it is pinned for good as soon as another
 * tensor aliases it (the cpu kernels return zero-copy views for contiguous slices) or its values
 * leave the backend (readSync/read, i.e. dataSync() and friends, and moves to other backends).
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  private readonly chunks = new WeakMap<ArrayBuffer, Chunk>();

  /** An output array of n elements; contents are unspecified unless `zeroed`. */
  alloc(dtype: DataType, n: number, zeroed = false): Values | null {
    const bytes = dtype === 'bool' ? n : 4 * n;
    if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') return null;
    let buffer: ArrayBuffer | undefined;
    if (bytes >= MIN_POOLED_BYTES) buffer = this.free.get(bytes)?.pop();
    if (buffer) {
      this.freeBytes -= bytes;
      if (zeroed) new Uint8Array(buffer).fill(0);
    } else {
      buffer = new ArrayBuffer(bytes);
    }
    // Small buffers are not recycled, but tracked too: exclusive() needs to know who sees them.
    this.chunks.set(buffer, { owner: null, pinned: false });
    return dtype === 'float32' ? new Float32Array(buffer, 0, n) : dtype === 'int32' ? new Int32Array(buffer, 0, n) : new Uint8Array(buffer, 0, n);
  }

  /** Called for every array the backend stores under a new dataId. */
  claim(values: unknown, dataId: object): void {
    const chunk = this.chunkOf(values);
    if (!chunk) return;
    const v = values as Values;
    if (chunk.owner === null && !chunk.pinned && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) {
      chunk.owner = dataId;
    } else {
      chunk.pinned = true;
    }
  }

  pin(values: unknown): void {
    const chunk = this.chunkOf(values);
    if (chunk) chunk.pinned = true;
  }

  /**
   * Whether dataId's values are a buffer from this pool that nothing else can see (no view of it,
   * never read out): a kernel may then update it in place.
   */
  exclusive(values: unknown, dataId: object): boolean {
    const chunk = this.chunkOf(values);
    return chunk !== undefined && chunk.owner === dataId && !chunk.pinned;
  }

  /** Called when the backend has deleted dataId; recycles its buffer if nothing else sees it. */
  release(values: unknown, dataId: object): void {
    const chunk = this.chunkOf(values);
    if (!chunk || chunk.pinned || chunk.owner !== dataId) return;
    const buffer = (values as Values).buffer as ArrayBuffer;
    this.chunks.delete(buffer);
    if (buffer.byteLength < MIN_POOLED_BYTES || this.freeBytes + buffer.byteLength > MAX_FREE_BYTES) return;
    let list = this.free.get(buffer.byteLength);
    if (!list) {
      list = [];
      this.free.set(buffer.byteLength, list);
    }
    list.push(buffer);
    this.freeBytes += buffer.byteLength;
  }

  /** Drops all free buffers (they are garbage collected). */
  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  stats(): { freeBytes: number; freeBuffers: number } {
    let n = 0;
    for (const l of this.free.values()) n += l.length;
    return { freeBytes: this.freeBytes, freeBuffers: n };
  }

  private chunkOf(values: unknown): Chunk | undefined {
    if (!ArrayBuffer.isView(values)) return undefined;
    return this.chunks.get(values.buffer as ArrayBuffer);
  }
}

/** What the backend subclass relies on from the cpu backend (MathBackendCPU). */
export interface CpuBackendBase extends KernelBackend {
  data: { get(dataId: object): { values?: unknown } | undefined; has(dataId: object): boolean };
  write(values: BackendValues, shape: number[], dtype: DataType): object;
  move(dataId: object, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void;
  readSync(dataId: object): BackendValues;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The cpu backend, with its stores and disposals reported to the pool. */
export function withBufferPool(Base: new () => CpuBackendBase, pool: BufferPool): new () => CpuBackendBase {
  return class NativeBackend extends Base {
    constructor() {
      super();
      // Its first write prints advice to install tfjs-node, which does not apply to this backend.
      (this as unknown as { firstUse: boolean }).firstUse = false;
    }

    override write(values: BackendValues, shape: number[], dtype: DataType): object {
      const dataId = super.write(values, shape, dtype);
      pool.claim(values, dataId);
      return dataId;
    }

    override move(dataId: object, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
      pool.pin(values);
      super.move(dataId, values, shape, dtype, refCount);
    }

    override readSync(dataId: object): BackendValues {
      if (this.data.has(dataId)) pool.pin(this.data.get(dataId)?.values);
      return super.readSync(dataId);
    }

    override disposeData(dataId: object, force = false): boolean {
      const values = this.data.has(dataId) ? this.data.get(dataId)?.values : undefined;
      const result = super.disposeData(dataId, force);
      if (values !== undefined && !this.data.has(dataId)) pool.release(values, dataId);
      return result;
    }
  };
}
