import * as tf from '@tensorflow/tfjs';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fs } from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { NamedTensors } from '../contracts/backbone.ts';

/**
 * A named-tensor file:
 *   bytes 0–7   magic "SSFERT01"
 *   bytes 8–11  header length H (uint32, little-endian)
 *   H bytes     JSON header {format, version, meta, tensors: [{name, dtype, shape, offset, bytes}]}
 *   padding to a multiple of 8, then the data; each tensor's raw little-endian values start at
 *   `offset` (relative to the data, 8-byte aligned). bool is stored as one byte per value.
 *   Version 2 gives each tensor the SHA-256 of its bytes, so a damaged file (same size, other
 *   bytes) is found on reading instead of training on garbage; version 1 files are still read.
 * Files are written to a temporary file in the same directory, fsynced and renamed over the
 * target, so a crash leaves either the old file or the new one, never a torn one.
 */

const MAGIC = 'SSFERT01';
const VERSION = 2;
const DTYPES = ['float32', 'int32', 'bool'] as const;
type StoredDtype = (typeof DTYPES)[number];

interface Entry {
  name: string;
  dtype: StoredDtype;
  shape: number[];
  offset: number;
  bytes: number;
  /** SHA-256 of the tensor's bytes (hex); absent in version 1 files. */
  sha256?: string;
}

interface Header {
  format: 'ssfer-tensors';
  version: number;
  meta: Record<string, unknown>;
  tensors: Entry[];
}

export interface LoadedTensors {
  readonly tensors: NamedTensors;
  readonly meta: Record<string, unknown>;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

function assertLittleEndian(): void {
  // Raw typed-array bytes are written as they are in memory.
  if (endianness() !== 'LE') throw new Error('checkpoint files are little-endian; this machine is big-endian');
}

function bytesPer(dtype: StoredDtype): number {
  return dtype === 'bool' ? 1 : 4;
}

async function tensorBytes(t: tf.Tensor): Promise<Uint8Array> {
  const values = await t.data();
  if (t.dtype === 'bool') return Uint8Array.from(values as Uint8Array | Int32Array);
  const v = values as Float32Array | Int32Array;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function planHeader(record: NamedTensors, meta: Record<string, unknown>): Promise<{ header: Header; prefix: Buffer; data: Map<string, Uint8Array> }> {
  const tensors: Entry[] = [];
  const data = new Map<string, Uint8Array>();
  let offset = 0;
  for (const [name, t] of Object.entries(record)) {
    if (!(DTYPES as readonly string[]).includes(t.dtype))
      throw new Error(`checkpoint: tensor '${name}' has dtype ${t.dtype}; only ${DTYPES.join(', ')} are stored`);
    if (t.isDisposed) throw new Error(`checkpoint: tensor '${name}' is disposed`);
    const bytes = t.size * bytesPer(t.dtype as StoredDtype);
    const values = await tensorBytes(t);
    data.set(name, values);
    tensors.push({ name, dtype: t.dtype as StoredDtype, shape: [...t.shape], offset, bytes, sha256: sha256(values) });
    offset = align8(offset + bytes);
  }
  const header: Header = { format: 'ssfer-tensors', version: VERSION, meta, tensors };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(align8(12 + json.length));
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  json.copy(prefix, 12);
  return { header, prefix, data };
}

/** Writes `record` (and JSON-serialisable `meta`) to `path` atomically. The tensors stay the caller's. */
export async function saveTensors(path: string, record: NamedTensors, meta: Record<string, unknown> = {}): Promise<void> {
  assertLittleEndian();
  const { header, prefix, data } = await planHeader(record, meta);
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  let closed = false;
  try {
    await handle.write(prefix);
    let position = prefix.length;
    for (const entry of header.tensors) {
      const bytes = data.get(entry.name)!;
      const at = prefix.length + entry.offset;
      if (at > position) await handle.write(Buffer.alloc(at - position));
      await handle.write(bytes);
      position = at + bytes.length;
    }
    await handle.sync();
    await handle.close();
    closed = true;
    await fs.rename(tmp, path);
  } catch (err) {
    if (!closed) await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await syncDirectory(dir);
}

/** Makes the rename itself durable; some file systems cannot open a directory, which is harmless. */
async function syncDirectory(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch {
    // best effort
  } finally {
    await h?.close().catch(() => {});
  }
}

/** A tensor file that is damaged or truncated: its content cannot be trusted, only recomputed. */
export class TensorFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: not a readable tensor file (${reason})`);
    this.name = 'TensorFileError';
  }
}

function corrupt(path: string, why: string): Error {
  return new TensorFileError(path, why);
}

function parseHeader(path: string, head: Buffer, fileSize: number): { header: Header; dataStart: number } {
  if (head.length < 12 || head.toString('latin1', 0, 8) !== MAGIC) throw corrupt(path, 'wrong magic bytes');
  const length = head.readUInt32LE(8);
  if (12 + length > fileSize) throw corrupt(path, 'header runs past the end of the file');
  if (head.length < 12 + length) throw corrupt(path, 'short header');
  let header: Header;
  try {
    header = JSON.parse(head.toString('utf8', 12, 12 + length)) as Header;
  } catch (err) {
    throw corrupt(path, `header is not JSON: ${(err as Error).message}`);
  }
  if (header.format !== 'ssfer-tensors' || (header.version !== 1 && header.version !== VERSION))
    throw corrupt(path, `format ${header.format} version ${header.version}`);
  const dataStart = align8(12 + length);
  for (const e of header.tensors) {
    const expected = e.shape.reduce((a, b) => a * b, 1) * bytesPer(e.dtype);
    if (!DTYPES.includes(e.dtype) || e.bytes !== expected) throw corrupt(path, `entry '${e.name}' is inconsistent`);
    if (dataStart + e.offset + e.bytes > fileSize) throw corrupt(path, `tensor '${e.name}' runs past the end of the file (truncated?)`);
  }
  return { header, dataStart };
}

/** Reads a file written by saveTensors; the returned tensors are the caller's to dispose. */
export async function loadTensors(path: string): Promise<LoadedTensors> {
  assertLittleEndian();
  const handle = await fs.open(path, 'r');
  const tensors: NamedTensors = {};
  try {
    const { size } = await handle.stat();
    const first = Buffer.alloc(Math.min(size, 12));
    await handle.read(first, 0, first.length, 0);
    if (first.length < 12 || first.toString('latin1', 0, 8) !== MAGIC) throw corrupt(path, 'wrong magic bytes');
    const headLength = 12 + first.readUInt32LE(8);
    if (headLength > size) throw corrupt(path, 'header runs past the end of the file');
    const head = Buffer.alloc(headLength);
    await handle.read(head, 0, headLength, 0);
    const { header, dataStart } = parseHeader(path, head, size);
    for (const e of header.tensors) {
      // A fresh ArrayBuffer per tensor: aligned for the typed array and independent of the others.
      const buf = new ArrayBuffer(e.bytes);
      const view = new Uint8Array(buf);
      let done = 0;
      while (done < e.bytes) {
        const { bytesRead } = await handle.read(view, done, e.bytes - done, dataStart + e.offset + done);
        if (bytesRead === 0) throw corrupt(path, `tensor '${e.name}' is truncated`);
        done += bytesRead;
      }
      if (e.sha256 !== undefined && sha256(view) !== e.sha256) throw corrupt(path, `tensor '${e.name}' does not match its checksum: the file is damaged`);
      const values = e.dtype === 'float32' ? new Float32Array(buf) : e.dtype === 'int32' ? new Int32Array(buf) : new Uint8Array(buf);
      tensors[e.name] = tf.tensor(values, e.shape, e.dtype);
    }
    return { tensors, meta: header.meta ?? {} };
  } catch (err) {
    tf.dispose(Object.values(tensors));
    throw err;
  } finally {
    await handle.close();
  }
}

/** Entries of `record` under `prefix` + name (to store several modules' states in one file). */
export function withPrefix(prefix: string, record: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(record)) out[prefix + name] = t;
  return out;
}

/** The entries whose names start with `prefix`, with the prefix removed (no copies). */
export function underPrefix(prefix: string, record: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(record)) if (name.startsWith(prefix)) out[name.slice(prefix.length)] = t;
  return out;
}
