import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { endianness } from 'node:os';
import { writeAtomic } from '../core/files.ts';

/**
 * A decoded-image cache entry: named typed arrays and JSON meta in one file.
 *   bytes 0–7   magic "SSFERD01"
 *   bytes 8–11  header length H (uint32 little-endian)
 *   H bytes     JSON {format, key, sha256, meta, arrays: [{name, type, length, offset}]}
 *   padding to a multiple of 8, then the arrays' raw little-endian bytes, each 8-byte aligned.
 * The sha256 of everything after the header catches a truncated or damaged entry, which is then
 * decoded again; entries are written atomically, so an interrupted write leaves no entry at all.
 */

const MAGIC = 'SSFERD01';
const FORMAT = 'ssfer-decoded-images';

export type StoredArray = Uint8Array | Int32Array | Float32Array;
type TypeName = 'u8' | 'i32' | 'f32';

interface ArrayEntry {
  name: string;
  type: TypeName;
  length: number;
  offset: number;
}

interface Header {
  format: string;
  key: string;
  sha256: string;
  meta: Record<string, unknown>;
  arrays: ArrayEntry[];
}

export interface CacheEntry {
  readonly arrays: Record<string, StoredArray>;
  readonly meta: Record<string, unknown>;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

function typeOf(a: StoredArray): TypeName {
  return a instanceof Uint8Array ? 'u8' : a instanceof Int32Array ? 'i32' : 'f32';
}

/** A stable digest of a JSON-serialisable description of everything an entry depends on. */
export function cacheKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export function writeEntry(file: string, key: string, arrays: Record<string, StoredArray>, meta: Record<string, unknown>): void {
  if (endianness() !== 'LE') return; // raw bytes are stored as they lie in memory; skip caching elsewhere
  const entries: ArrayEntry[] = [];
  let offset = 0;
  for (const [name, a] of Object.entries(arrays)) {
    entries.push({ name, type: typeOf(a), length: a.length, offset });
    offset = align8(offset + a.byteLength);
  }
  const payload = Buffer.alloc(offset);
  for (const e of entries) {
    const a = arrays[e.name]!;
    payload.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), e.offset);
  }
  const header: Header = { format: FORMAT, key, sha256: createHash('sha256').update(payload).digest('hex'), meta, arrays: entries };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(align8(12 + json.length));
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  json.copy(prefix, 12);
  writeAtomic(file, Buffer.concat([prefix, payload]));
}

/** The entry at `file` if it exists, belongs to `key` and is intact; otherwise why not. */
export function readEntry(file: string, key: string): CacheEntry | { readonly miss: string } {
  if (endianness() !== 'LE') return { miss: 'big-endian machine' };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return { miss: 'no entry' };
  }
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) return { miss: 'wrong magic bytes' };
  const length = bytes.readUInt32LE(8);
  if (12 + length > bytes.length) return { miss: 'header runs past the end (truncated)' };
  let header: Header;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + length)) as Header;
  } catch {
    return { miss: 'header is not JSON' };
  }
  if (header.format !== FORMAT || header.key !== key) return { miss: 'written for other inputs' };
  const payload = bytes.subarray(align8(12 + length));
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) return { miss: 'checksum mismatch (truncated or damaged)' };
  const arrays: Record<string, StoredArray> = {};
  for (const e of header.arrays) {
    const width = e.type === 'u8' ? 1 : 4;
    const end = e.offset + e.length * width;
    if (end > payload.length) return { miss: `array ${e.name} runs past the end` };
    // a copy: aligned for the typed array and independent of the file buffer
    const own = payload.buffer.slice(payload.byteOffset + e.offset, payload.byteOffset + end);
    arrays[e.name] = e.type === 'u8' ? new Uint8Array(own) : e.type === 'i32' ? new Int32Array(own) : new Float32Array(own);
  }
  return { arrays, meta: header.meta ?? {} };
}
