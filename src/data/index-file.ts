import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { DatasetError } from './errors.ts';

/** A dataset's label or list file: its text, split into numbered lines, and a digest of its bytes. */
export interface IndexFile {
  readonly path: string;
  /** sha256 of the bytes: part of the decoded-image cache key. */
  readonly digest: string;
  readonly text: string;
}

export interface IndexLine {
  /** 1-based, as editors count. */
  readonly line: number;
  readonly text: string;
}

/** What the file should be and how to provide it, for the message when it is missing. */
export interface Expectation {
  readonly expected: string;
  readonly fix: string;
}

export function readIndexFile(path: string, expectation: Expectation): IndexFile {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(
      { file: path },
      code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? (err as Error).message})`,
      expectation.expected,
      expectation.fix,
    );
  }
  return { path, digest: createHash('sha256').update(bytes).digest('hex'), text: bytes.toString('utf8').replace(/^\uFEFF/, '') };
}

/** The file's lines with their numbers; carriage returns and trailing blank lines dropped. */
export function* linesOf(file: IndexFile): Generator<IndexLine> {
  const text = file.text;
  let start = 0;
  let line = 1;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, end);
    yield { line, text: raw.endsWith('\r') ? raw.slice(0, -1) : raw };
    start = end + 1;
    line++;
  }
}

/**
 * One CSV record (RFC 4180 quoting, one physical line: none of the supported datasets puts line
 * breaks inside a field); null when a quote is left open.
 */
export function splitCsv(text: string, separator = ','): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) return null;
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      if (i < text.length && text[i] !== separator) return null;
      fields.push(value);
    } else {
      const next = text.indexOf(separator, i);
      fields.push(text.slice(i, next < 0 ? text.length : next));
      i = next < 0 ? text.length : next;
    }
    if (i >= text.length) return fields;
    i++; // the separator
    if (i === text.length) {
      fields.push('');
      return fields;
    }
  }
}

/** Column positions by header name; the header's names are compared trimmed and case-blind. */
export function columnsOf<const K extends string>(header: readonly string[], wanted: readonly K[]): { [P in K]: number } | { missing: K[] } {
  const names = header.map((h) => h.trim().toLowerCase());
  const out = {} as { [P in K]: number };
  const missing: K[] = [];
  for (const w of wanted) {
    const i = names.indexOf(w.toLowerCase());
    if (i < 0) missing.push(w);
    else out[w] = i;
  }
  return missing.length ? { missing } : out;
}
