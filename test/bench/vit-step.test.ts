import { expect } from 'chai';
import { availableParallelism } from 'node:os';
import { runVitStep } from '../../src/bench/vit-step.ts';
import { onNative } from '../native/helpers.ts';

describe('bench: the ViT training step', () => {
  onNative({ select: true });

  it('says how many cores the timed steps kept busy, beside images/s and peak RSS', function () {
    this.timeout(120000);
    const r = runVitStep({ warmup: 2, steps: 20, preset: 'smoke' });
    expect(r.backend).to.equal('native');
    expect(r.images_per_s).to.be.above(0);
    expect(r.peak_rss_mib).to.be.above(0);
    // CPU time over wall time of the whole process: some (the step is CPU work; how much depends
    // on what else runs: 0.16 of a core beside two training processes on 2 cores) and never more
    // than the machine has (plus a little for timer granularity).
    expect(r.cores_used).to.be.above(0);
    expect(r.cores_used).to.be.at.most(availableParallelism() + 0.25);
    expect(r.tensors_after).to.equal(r.tensors_before);
  });
});
