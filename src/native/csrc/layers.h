// LayerNorm over rows, shared by the LayerNorm kernels (layers.cc) and the fused ViT block
// (block.cc). Each product and sum is rounded on its own, as the separate tfjs ops round them
// (no fused multiply-adds); row means accumulate in double, as the Mean reduction does.
#pragma once

#include "common.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace ssfer {

inline i64 LayerNormRowGrain(i64 cols) { return std::max<i64>(1, 16384 / std::max<i64>(cols, 1)); }

//   mean = Σx/n;  c = x − mean;  rstd = 1/√(Σc²/n + eps);  y = (c·rstd)·γ + β   for rows [rb, re)
inline void LayerNormRows(const float* __restrict xp, const float* __restrict gp, const float* __restrict bp,
                          float* __restrict op, float* __restrict mp, float* __restrict rp, i64 rb, i64 re, i64 cols,
                          float eps) {
  const double dn = static_cast<double>(cols);
  for (i64 r = rb; r < re; r++) {
    const float* xr = xp + r * cols;
    float* yr = op + r * cols;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (i64 j = 0; j < cols; j++) s += xr[j];
    const float mean = static_cast<float>(s / dn);
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (i64 j = 0; j < cols; j++) {
      const float c = xr[j] - mean;
      v += static_cast<double>(c * c);
    }
    const float var = static_cast<float>(v / dn);
    const float rstd = 1.0f / std::sqrt(var + eps);
    mp[r] = mean;
    rp[r] = rstd;
#pragma omp simd
    for (i64 j = 0; j < cols; j++) {
      const float xh = (xr[j] - mean) * rstd;
      yr[j] = xh * gp[j] + bp[j];
    }
  }
}

inline void LayerNorm(const float* xp, const float* gp, const float* bp, float* op, float* mp, float* rp, i64 rows,
                      i64 cols, float eps) {
  ParallelFor(rows, LayerNormRowGrain(cols), [&](i64 rb, i64 re) { LayerNormRows(xp, gp, bp, op, mp, rp, rb, re, cols, eps); });
}

//   x̂ = (x − mean)·rstd;  g = dy·γ;  dx = rstd·((g − mean(g)) − x̂·mean(g·x̂)) (+ add, when given)
//   dγ = Σ_rows dy·x̂;  dβ = Σ_rows dy
// Rows are split into a fixed number of blocks, each with its own column partial sums (so the
// result does not depend on how the pool schedules them), added in block order at the end.
inline void LayerNormGrad(const float* __restrict dyp, const float* __restrict xp, const float* __restrict mp,
                          const float* __restrict rp, const float* __restrict gp, float* __restrict dxp,
                          float* __restrict dgp, float* __restrict dbp, i64 rows, i64 cols,
                          const float* __restrict add = nullptr) {
  const double dn = static_cast<double>(cols);
  const size_t c = static_cast<size_t>(cols);
  const i64 blockRows = std::max<i64>(LayerNormRowGrain(cols), (rows + 63) / 64);
  const i64 blocks = rows > 0 ? (rows + blockRows - 1) / blockRows : 0;
  std::vector<double> part(static_cast<size_t>(std::max<i64>(blocks, 1)) * 2 * c, 0.0);
  ParallelFor(blocks, 1, [&](i64 bb, i64 be) {
    std::vector<float> xh(c), gg(c);
    for (i64 blk = bb; blk < be; blk++) {
      double* pg = part.data() + static_cast<size_t>(blk) * 2 * c;
      double* pb = pg + c;
      const i64 r0 = blk * blockRows;
      const i64 r1 = std::min(rows, r0 + blockRows);
      for (i64 r = r0; r < r1; r++) {
        const float* xr = xp + r * cols;
        const float* dyr = dyp + r * cols;
        float* dxr = dxp + r * cols;
        const float mean = mp[r];
        const float rstd = rp[r];
        float* __restrict xhp = xh.data();
        float* __restrict ggp = gg.data();
#pragma omp simd
        for (i64 j = 0; j < cols; j++) {
          const float h = (xr[j] - mean) * rstd;
          xhp[j] = h;
          ggp[j] = dyr[j] * gp[j];
          pg[j] += static_cast<double>(dyr[j] * h);
          pb[j] += dyr[j];
        }
        double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
        for (i64 j = 0; j < cols; j++) {
          sg += ggp[j];
          sgx += static_cast<double>(ggp[j] * xhp[j]);
        }
        const float mg = static_cast<float>(sg / dn);
        const float mgx = static_cast<float>(sgx / dn);
        if (add) {
          const float* ar = add + r * cols;
#pragma omp simd
          for (i64 j = 0; j < cols; j++) dxr[j] = ar[j] + rstd * ((gg[j] - mg) - xh[j] * mgx);
        } else {
#pragma omp simd
          for (i64 j = 0; j < cols; j++) dxr[j] = rstd * ((gg[j] - mg) - xh[j] * mgx);
        }
      }
    }
  });
  ParallelFor(cols, 256, [&](i64 jb, i64 je) {
    for (i64 j = jb; j < je; j++) {
      double sg = 0.0, sb = 0.0;
      for (i64 blk = 0; blk < blocks; blk++) {
        const double* pg = part.data() + static_cast<size_t>(blk) * 2 * c;
        sg += pg[j];
        sb += pg[c + j];
      }
      dgp[j] = static_cast<float>(sg);
      dbp[j] = static_cast<float>(sb);
    }
  });
}

}  // namespace ssfer

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
