import { expect } from 'chai';
import { estimate, excludesZero, incompleteBeta, mcnemarExact, pairedDifference, studentTCdf, studentTQuantile } from '../../src/report/stats.ts';

// Reference values from SciPy 1.17.1 (scipy.stats.t.ppf / t.cdf, scipy.special.betainc,
// scipy.stats.ttest_rel(a, b).confidence_interval(0.95), scipy.stats.t.interval), computed once
// and written here; the first three quantiles are also those of the published t tables.
const T975: readonly [number, number][] = [
  [1, 12.706204736174694],
  [2, 4.302652729749462],
  [3, 3.1824463052837078],
  [4, 2.7764451051977934],
  [9, 2.262157162798205],
  [29, 2.045229642132703],
  [999, 1.9623414611334493],
];

describe('report: Student-t statistics', () => {
  it('gives the t quantiles of the published tables and of SciPy', () => {
    for (const [df, t] of T975) expect(studentTQuantile(0.975, df), `df ${df}`).to.be.closeTo(t, 1e-9 * t);
    expect(studentTQuantile(0.9, 5)).to.be.closeTo(1.4758840488244815, 1e-10);
    expect(studentTQuantile(0.025, 4)).to.be.closeTo(-2.7764451051977934, 1e-10);
    // df 1 is the Cauchy distribution: t = tan(π (p − ½)).
    expect(studentTQuantile(0.975, 1)).to.be.closeTo(Math.tan(Math.PI * 0.475), 1e-8);
  });

  it('gives the t distribution function and the incomplete beta function of SciPy', () => {
    expect(studentTCdf(1.5, 3)).to.be.closeTo(0.8847080673775886, 1e-12);
    expect(studentTCdf(-0.7, 10)).to.be.closeTo(0.2499437850864422, 1e-12);
    expect(studentTCdf(2, 1)).to.be.closeTo(0.5 + Math.atan(2) / Math.PI, 1e-12);
    expect(studentTCdf(0, 7)).to.be.closeTo(0.5, 1e-15);
    expect(incompleteBeta(0.3, 2.5, 0.5)).to.be.closeTo(0.018927124071945658, 1e-13);
    expect(incompleteBeta(0.999, 500, 0.5)).to.be.closeTo(0.31731044730971725, 1e-12);
  });

  it('mean ± sample std and the 95 % interval, by hand and as SciPy gives them', () => {
    // 1, 2, 3: mean 2, s = 1, half width t(0.975, 2)/√3.
    const e = estimate([1, 2, 3]);
    expect(e.mean).to.equal(2);
    expect(e.std).to.equal(1);
    const half = 4.302652729749462 / Math.sqrt(3);
    expect(e.ci95![0]).to.be.closeTo(2 - half, 1e-9);
    expect(e.ci95![1]).to.be.closeTo(2 + half, 1e-9);
    // scipy.stats.t.interval(0.95, 4, loc=mean, scale=sem).
    const five = estimate([34.29, 37.14, 31.43, 40.0, 35.71]);
    expect(five.mean).to.be.closeTo(35.714, 1e-12);
    expect(five.std).to.be.closeTo(3.19310663774325, 1e-12);
    expect(five.ci95![0]).to.be.closeTo(31.749234445488746, 1e-8);
    expect(five.ci95![1]).to.be.closeTo(39.678765554511266, 1e-8);
  });

  it('cuts the interval to the range the figure can take, and only there', () => {
    // 76.86, 90, 93.14 % (a cell over 3 seeds): mean ± t(0.975, 2)·s/√3 reaches past 100 %.
    const values = [76.86, 90, 93.14];
    const mean = (76.86 + 90 + 93.14) / 3;
    const s = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / 2);
    const half = (4.302652729749462 * s) / Math.sqrt(3);
    expect(mean + half).to.be.above(100);
    const open = estimate(values);
    expect(open.ci95![0]).to.be.closeTo(mean - half, 1e-9);
    expect(open.ci95![1]).to.be.closeTo(mean + half, 1e-9);
    const cut = estimate(values, [0, 100]);
    expect(cut.ci95![0]).to.be.closeTo(mean - half, 1e-9);
    expect(cut.ci95![1]).to.equal(100);
    expect(cut.mean).to.equal(open.mean);
    // A difference of two accuracies stops at −100.
    const d = pairedDifference([0, 0, 10], [100, 60, 100], [-100, 100]);
    expect(d.mean).to.be.closeTo(-250 / 3, 1e-12);
    expect(d.ci95![0]).to.equal(-100);
    expect(d.ci95![1]).to.be.below(0);
  });

  it('says nothing about the spread of one measurement', () => {
    expect(estimate([84.3])).to.deep.equal({ n: 1, mean: 84.3, std: null, ci95: null });
    expect(() => estimate([])).to.throw(/no measurements/);
  });

  it('takes paired differences seed by seed, as scipy.stats.ttest_rel does', () => {
    const a = [84.1, 85.0, 83.2];
    const b = [82.0, 84.5, 82.9];
    const d = pairedDifference(a, b);
    // d = 2.1, 0.5, 0.3: mean 0.9667, s = 0.98658.
    expect(d.mean).to.be.closeTo(0.9666666666666638, 1e-12);
    expect(d.std).to.be.closeTo(0.9865765724632473, 1e-12);
    expect(d.ci95![0]).to.be.closeTo(-1.484125402518671, 1e-8);
    expect(d.ci95![1]).to.be.closeTo(3.4174587358519983, 1e-8);
    expect(excludesZero(d.ci95)).to.equal(false);
    // A difference the seeds agree on: every seed +1.0 ± 0.1, so the interval excludes 0 although
    // the cells' own intervals (spread over 10 points) overlap.
    const base = [70, 80, 75];
    const better = [71.1, 80.9, 76.0];
    const paired = pairedDifference(better, base);
    expect(excludesZero(paired.ci95)).to.equal(true);
    expect(paired.ci95![0]).to.be.above(0);
    expect(excludesZero(estimate(better).ci95)).to.equal(true); // both far from 0…
    expect(estimate(better).ci95![0]).to.be.below(estimate(base).ci95![1]); // …and overlapping
    expect(excludesZero([-0.1, 0.2])).to.equal(false);
    expect(excludesZero([-2, -0.5])).to.equal(true);
    expect(excludesZero(null)).to.equal(false);
    expect(() => pairedDifference([1, 2], [1])).to.throw(/do not pair/);
  });
});

describe("report: McNemar's exact test", () => {
  it('gives the two-sided binomial p-value by hand and as scipy.stats.binomtest(min, n, 0.5) gives it', () => {
    // By hand: 2 · (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 · 79 / 4096.
    expect(mcnemarExact(10, 2)).to.be.closeTo((2 * 79) / 4096, 1e-15);
    expect(mcnemarExact(2, 10)).to.equal(mcnemarExact(10, 2));
    expect(mcnemarExact(0, 5)).to.be.closeTo(0.0625, 1e-15);
    // SciPy 1.17.1.
    expect(mcnemarExact(84, 21)).to.be.closeTo(4.157046960834439e-10, 1e-20);
    expect(mcnemarExact(300, 250)).to.be.closeTo(0.036578745549102676, 1e-12);
    expect(mcnemarExact(20, 40)).to.be.closeTo(0.01348929373119186, 1e-13);
  });

  it('is 1 where the two classifiers disagree evenly or not at all, and refuses what is not a count', () => {
    expect(mcnemarExact(6, 6)).to.equal(1);
    expect(mcnemarExact(0, 0)).to.equal(1);
    expect(() => mcnemarExact(-1, 3)).to.throw(RangeError, /two counts/);
    expect(() => mcnemarExact(1.5, 3)).to.throw(RangeError, /two counts/);
  });
});
