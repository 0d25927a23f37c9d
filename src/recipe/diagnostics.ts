import path from 'node:path';

/** Where a value was written: a file position, or a command-line argument. */
export interface Loc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** One problem with a recipe, printed as `file:line:col: path: message`. */
export interface Diagnostic {
  readonly loc?: Loc;
  /** Dotted recipe path the problem is about (`pipeline.pretrain.mask_ratio`), or a topic (`yaml`). */
  readonly path: string;
  readonly message: string;
}

export function displayFile(file: string): string {
  if (file.startsWith('<')) return file; // pseudo-files such as <--set>
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.loc ? `${displayFile(d.loc.file)}:${d.loc.line}:${d.loc.col}` : '<recipe>';
  return `${where}: ${d.path ? `${d.path}: ` : ''}${d.message}`;
}

/** Problems printed at most: past that a screen of messages helps no one, and printing is not free. */
export const PRINTED_DIAGNOSTICS = 50;

/** The problems as lines, the first PRINTED_DIAGNOSTICS of them, then how many more there are. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[]): string {
  const shown = diagnostics.slice(0, PRINTED_DIAGNOSTICS).map(formatDiagnostic);
  const more = diagnostics.length - shown.length;
  return [...shown, ...(more > 0 ? [`… and ${more} more`] : [])].join('\n');
}

/** Thrown when a recipe (or an override) is invalid; carries every problem found, not just the first. */
export class RecipeError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(formatDiagnostics(diagnostics));
    this.name = 'RecipeError';
  }
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate when it is close enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 2)) ? best : undefined;
}
