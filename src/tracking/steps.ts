/**
 * The step each stage's metrics are logged at: the stage's own step, counted from 1, so that the
 * curves of every cell line up per stage (`supervised/loss` starts at step 1 in every cell,
 * whether or not the cell computed the shared pre-training first). A stage that starts over (the
 * tuner's next trial) continues after its last step, and a stage resumed from a checkpoint
 * continues at the step it stopped at.
 */
export class StageSteps {
  private readonly last = new Map<string, number>();
  private readonly offset = new Map<string, number>();

  /** The logged step of a stage's `step` (1, 2, …). */
  at(stage: string, step: number): number {
    const last = this.last.get(stage);
    let offset = this.offset.get(stage) ?? 0;
    if (last !== undefined && step <= last - offset) {
      offset = last;
      this.offset.set(stage, offset);
    }
    this.last.set(stage, offset + step);
    return offset + step;
  }
}
