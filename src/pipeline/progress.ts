/** One-line progress on stderr: redrawn in place on a terminal, a line every few seconds otherwise. */
export class Progress {
  private lastDraw = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private lastLen = 0;

  update(text: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < (this.tty ? 100 : 5000)) return;
    this.lastDraw = now;
    if (this.tty) {
      const cols = process.stderr.columns || 120;
      const line = text.length > cols - 1 ? `${text.slice(0, cols - 2)}…` : text;
      process.stderr.write(`\r${line.padEnd(this.lastLen)}`);
      this.lastLen = line.length;
    } else {
      process.stderr.write(`${text}\n`);
    }
  }

  /** A permanent line (the bar is redrawn under it). */
  log(text: string): void {
    if (this.tty && this.lastLen) process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`);
    this.lastLen = 0;
    process.stderr.write(`${text}\n`);
  }

  done(): void {
    if (this.tty && this.lastLen) process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`);
    this.lastLen = 0;
  }
}

/** What the ETA of a run of units is computed from (seconds, fractions in [0, 1]). */
export interface EtaInput {
  /** Units this process finished, and the seconds they took together, shared stages left out. */
  readonly finished: number;
  readonly finishedSeconds: number;
  /**
   * Units this process is expected to train after the current one: those left in order, or, where
   * other workers take units from the same run, the units nobody has started divided among the
   * units running (fractional).
   */
  readonly after: number;
  /** Seconds since the current unit started (its shared stages left out), and since its current stage started. */
  readonly unitSeconds: number;
  readonly stageSeconds: number;
  /** How far the current stage is. */
  readonly stageFraction: number;
  /**
   * The current stage is one the units after it reuse (a pre-training, kept in the stage cache):
   * it is counted once, not once per unit.
   */
  readonly shared?: boolean;
}

/**
 * Seconds left, and whether that is the run's (`run`) or only the current stage's (`stage`: a
 * shared stage before any unit finished, when nothing says what the units after it take). The
 * run's: the current unit's rest plus the units after it, each at the mean time of the finished
 * units. The current unit's rest is never less than what its stage's own pace projects, so a unit
 * far slower than those before it (a CNN after a linear probe, 2000 labels after 80) is not shown
 * as all but done. Before any unit finished, a unit is taken to last what the current one has run
 * plus its stage's rest (its later stages are not known yet). Shared stages (pre-training, which
 * every later unit with the same pre-training reads from the cache) are never multiplied by the
 * units after them.
 */
export function eta(o: EtaInput): { seconds: number; of: 'run' | 'stage' } {
  const f = Math.min(Math.max(o.stageFraction, 1e-3), 1);
  const stageRest = (o.stageSeconds / f) * (1 - f);
  if (o.shared) {
    if (o.finished === 0) return { seconds: stageRest, of: 'stage' };
    return { seconds: stageRest + (o.finishedSeconds / o.finished) * (1 + o.after), of: 'run' };
  }
  if (o.finished === 0) return { seconds: stageRest + (o.unitSeconds + stageRest) * o.after, of: 'run' };
  const perUnit = o.finishedSeconds / o.finished;
  return { seconds: Math.max(perUnit * (1 - f), stageRest) + perUnit * o.after, of: 'run' };
}
