// Fused LayerNorm and exact GELU (forward and backward) for the ViT layers.
#include "common.h"
#include "mathfn.h"

namespace ssfer {

namespace {

constexpr i64 kElemGrain = 8192;

const float* F(const Arr& a) { return static_cast<const float*>(a.data); }
float* W(const Arr& a) { return static_cast<float*>(a.data); }

// The GELU kernels are compiled with the default contraction, like the Erf and Exp kernels
// (csrc/elementwise.cc), so that erf and exp round exactly as they do there.
constexpr float kSqrt1_2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// gelu(x, out): (x·0.5)·(erf(x·√½) + 1)
Napi::Value Gelu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArrOf(env, info[0], napi_float32_array, "x");
  Arr o = GetArrOf(env, info[1], napi_float32_array, "out");
  if (o.length < x.length) throw Napi::RangeError::New(env, "gelu: output too short");
  const float* __restrict xp = F(x);
  float* __restrict op = W(o);
  ParallelFor(static_cast<i64>(x.length), kElemGrain, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) {
      const float v = xp[i];
      op[i] = (v * 0.5f) * (ErfF(v * kSqrt1_2) + 1.0f);
    }
  });
  return env.Undefined();
}

// geluGrad(dy, x, dx): dy·((erf(x·√½) + 1)·0.5 + x·(exp((x·x)·−0.5)·1/√(2π)))
Napi::Value GeluGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr dy = GetArrOf(env, info[0], napi_float32_array, "dy");
  Arr x = GetArrOf(env, info[1], napi_float32_array, "x");
  Arr o = GetArrOf(env, info[2], napi_float32_array, "dx");
  if (dy.length != x.length || o.length < x.length) throw Napi::RangeError::New(env, "geluGrad: arrays of different lengths");
  const float* __restrict dyp = F(dy);
  const float* __restrict xp = F(x);
  float* __restrict op = W(o);
  ParallelFor(static_cast<i64>(x.length), kElemGrain, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) {
      const float v = xp[i];
      const float cdf = (ErfF(v * kSqrt1_2) + 1.0f) * 0.5f;
      const float pdf = ExpF((v * v) * -0.5f) * kInvSqrt2Pi;
      op[i] = dyp[i] * (cdf + v * pdf);
    }
  });
  return env.Undefined();
}

}  // namespace

// LayerNorm: each product and sum is rounded on its own, as the separate tfjs ops round them (no
// fused multiply-adds). Row means accumulate in double, as the Mean reduction does.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

i64 RowGrain(i64 cols) { return std::max<i64>(1, 16384 / std::max<i64>(cols, 1)); }


// layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps)
//   mean = Σx/n;  c = x − mean;  rstd = 1/√(Σc²/n + eps);  out = (c·rstd)·γ + β
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArrOf(env, info[0], napi_float32_array, "x");
  Arr g = GetArrOf(env, info[1], napi_float32_array, "gamma");
  Arr b = GetArrOf(env, info[2], napi_float32_array, "beta");
  Arr o = GetArrOf(env, info[3], napi_float32_array, "out");
  Arr mo = GetArrOf(env, info[4], napi_float32_array, "mean");
  Arr ro = GetArrOf(env, info[5], napi_float32_array, "rstd");
  const i64 rows = GetInt(info[6]);
  const i64 cols = GetInt(info[7]);
  const float eps = info[8].As<Napi::Number>().FloatValue();
  const size_t n = static_cast<size_t>(rows * cols);
  if (x.length < n || o.length < n || g.length < static_cast<size_t>(cols) || b.length < static_cast<size_t>(cols) ||
      mo.length < static_cast<size_t>(rows) || ro.length < static_cast<size_t>(rows)) {
    throw Napi::RangeError::New(env, "layerNorm: arrays too short");
  }
  const float* __restrict xp = F(x);
  const float* __restrict gp = F(g);
  const float* __restrict bp = F(b);
  float* __restrict op = W(o);
  float* __restrict mp = W(mo);
  float* __restrict rp = W(ro);
  const double dn = static_cast<double>(cols);
  ParallelFor(rows, RowGrain(cols), [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      const float* xr = xp + r * cols;
      float* yr = op + r * cols;
      double s = 0.0;
      for (i64 j = 0; j < cols; j++) s += xr[j];
      const float mean = static_cast<float>(s / dn);
      double v = 0.0;
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
  });
  return env.Undefined();
}

// layerNormGrad(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols)
//   x̂ = (x − mean)·rstd;  g = dy·γ;  dx = rstd·((g − mean(g)) − x̂·mean(g·x̂))
//   dγ = Σ_rows dy·x̂;  dβ = Σ_rows dy
Napi::Value LayerNormGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr dy = GetArrOf(env, info[0], napi_float32_array, "dy");
  Arr x = GetArrOf(env, info[1], napi_float32_array, "x");
  Arr mi = GetArrOf(env, info[2], napi_float32_array, "mean");
  Arr ri = GetArrOf(env, info[3], napi_float32_array, "rstd");
  Arr g = GetArrOf(env, info[4], napi_float32_array, "gamma");
  Arr dx = GetArrOf(env, info[5], napi_float32_array, "dx");
  Arr dg = GetArrOf(env, info[6], napi_float32_array, "dgamma");
  Arr db = GetArrOf(env, info[7], napi_float32_array, "dbeta");
  const i64 rows = GetInt(info[8]);
  const i64 cols = GetInt(info[9]);
  const size_t n = static_cast<size_t>(rows * cols);
  const size_t c = static_cast<size_t>(cols);
  if (dy.length < n || x.length < n || dx.length < n || mi.length < static_cast<size_t>(rows) ||
      ri.length < static_cast<size_t>(rows) || g.length < c || dg.length < c || db.length < c) {
    throw Napi::RangeError::New(env, "layerNormGrad: arrays too short");
  }
  const float* __restrict dyp = F(dy);
  const float* __restrict xp = F(x);
  const float* __restrict mp = F(mi);
  const float* __restrict rp = F(ri);
  const float* __restrict gp = F(g);
  float* __restrict dxp = W(dx);
  float* __restrict dgp = W(dg);
  float* __restrict dbp = W(db);
  const double dn = static_cast<double>(cols);

  // Rows split into a fixed number of blocks, each with its own column partial sums (so the
  // result does not depend on how the pool schedules them), added in block order at the end.
  const i64 blockRows = std::max<i64>(RowGrain(cols), (rows + 63) / 64);
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
        double sg = 0.0, sgx = 0.0;
        for (i64 j = 0; j < cols; j++) {
          const float h = (xr[j] - mean) * rstd;
          const float gj = dyr[j] * gp[j];
          xh[j] = h;
          gg[j] = gj;
          sg += gj;
          sgx += static_cast<double>(gj * h);
          pg[j] += static_cast<double>(dyr[j] * h);
          pb[j] += dyr[j];
        }
        const float mg = static_cast<float>(sg / dn);
        const float mgx = static_cast<float>(sgx / dn);
#pragma omp simd
        for (i64 j = 0; j < cols; j++) dxr[j] = rstd * ((gg[j] - mg) - xh[j] * mgx);
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
  return env.Undefined();
}

}  // namespace

void InitLayers(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm, "layerNorm"));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGrad, "layerNormGrad"));
  exports.Set("gelu", Napi::Function::New(env, Gelu, "gelu"));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad, "geluGrad"));
}

}  // namespace ssfer
