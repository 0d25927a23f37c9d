import { displayFile } from '../recipe/diagnostics.ts';

/** A place in a dataset's files: an index file and line, or a file or folder on its own. */
export interface Place {
  readonly file: string;
  readonly line?: number;
}

export function placeText(place: Place): string {
  return place.line === undefined ? displayFile(place.file) : `${displayFile(place.file)}:${place.line}`;
}

/**
 * Something wrong with a dataset on disk, named where it is: `<file>:<line>: <what is wrong>;
 * expected <what>. <how to fix it>`.
 */
export class DatasetError extends Error {
  constructor(
    readonly place: Place,
    readonly problem: string,
    readonly expected: string,
    readonly fix: string,
  ) {
    super(`${placeText(place)}: ${problem}; expected ${expected}. ${fix}`);
    this.name = 'DatasetError';
  }
}

/** The kinds of per-entry problems `on_error: skip` may step over (a missing index file never). */
export const ISSUE_KINDS = {
  malformed: { one: 'malformed line', many: 'malformed lines', fix: 'Correct the line' },
  label: { one: 'unknown label', many: 'unknown labels', fix: 'Correct the label' },
  missing: { one: 'missing image', many: 'missing images', fix: 'Restore the image or correct its name' },
  unreadable: { one: 'unreadable image', many: 'unreadable images', fix: 'Replace the file with a readable JPEG, PNG or WebP image' },
} as const;

export type IssueKind = keyof typeof ISSUE_KINDS;
export type OnError = 'fail' | 'skip';

/** A problem with one entry, raised where it is found and judged by the IssueLog's policy. */
export class EntryProblem extends Error {
  constructor(
    readonly kind: IssueKind,
    readonly problem: string,
    readonly expected: string,
  ) {
    super(`${problem}; expected ${expected}`);
    this.name = 'EntryProblem';
  }
}

/** What an IssueLog counted, in a form that can be stored beside cached images. */
export interface IssueCounts {
  readonly counts: Partial<Record<IssueKind, number>>;
  readonly first?: string;
}

/**
 * Applies the `on_error` policy to per-entry problems: `fail` throws a DatasetError at the first
 * one, `skip` counts them (the caller leaves the entry out) for the notes.
 */
export class IssueLog {
  private readonly counts = new Map<IssueKind, number>();
  private first: string | undefined;

  constructor(readonly policy: OnError) {}

  report(kind: IssueKind, place: Place, problem: string, expected: string): void {
    const error = new DatasetError(place, problem, expected, `${ISSUE_KINDS[kind].fix}, or set on_error: skip to leave such entries out.`);
    if (this.policy === 'fail') throw error;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    this.first ??= `${placeText(place)}: ${problem}`;
  }

  /** Reports a problem raised as an EntryProblem; any other error is rethrown. */
  reportError(err: unknown, place: Place): void {
    if (!(err instanceof EntryProblem)) throw err;
    this.report(err.kind, place, err.problem, err.expected);
  }

  /** Adds counts taken elsewhere (problems met while the cached images were decoded). */
  absorb(other: IssueCounts): void {
    for (const [kind, n] of Object.entries(other.counts) as [IssueKind, number][]) this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
    if (other.first !== undefined) this.first ??= other.first;
  }

  counted(): IssueCounts {
    return { counts: Object.fromEntries(this.counts), ...(this.first !== undefined ? { first: this.first } : {}) };
  }

  get skipped(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  private kinds(): string {
    return [...this.counts].map(([kind, n]) => `${n} ${n === 1 ? ISSUE_KINDS[kind].one : ISSUE_KINDS[kind].many}`).join(', ');
  }

  /** What was skipped by kind, and the first: `3 unknown labels, 1 missing image; the first: list.txt:4: …`. */
  summary(): string {
    return `${this.kinds()}; the first: ${this.first}`;
  }

  /** One sentence on what was skipped, or nothing. */
  notes(): string[] {
    if (this.skipped === 0) return [];
    return [`skipped ${this.skipped} ${this.skipped === 1 ? 'entry' : 'entries'} under on_error: skip (${this.kinds()}); the first: ${this.first}`];
  }
}

/** Counts of rows a dataset's own rules leave out (not errors), as notes. */
export class DropCounter {
  private readonly counts = new Map<string, number>();

  add(reason: string, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }

  count(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }

  notes(): string[] {
    return [...this.counts].map(([reason, n]) => `left out ${n} ${n === 1 ? 'row' : 'rows'}: ${reason}`);
  }
}
