// Fused LayerNorm and exact GELU (forward and backward) for the ViT layers.
#include "common.h"
#include "layers.h"
#include "mathfn.h"

namespace ssfer {

namespace {

constexpr i64 kElemGrain = 8192;

const float* F(const Arr& a) { return static_cast<const float*>(a.data); }
float* W(const Arr& a) { return static_cast<float*>(a.data); }

// The GELU kernels are compiled with the default contraction, like the Erf and Exp kernels
// (csrc/elementwise.cc), so that erf and exp round exactly as they do there.

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
      op[i] = GeluErfF(xp[i]);
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
      op[i] = dyp[i] * GeluErfGradF(xp[i]);
    }
  });
  return env.Undefined();
}

}  // namespace

namespace {

// layerNorm(x, gamma, beta, out, mean, rstd, rows, cols, eps): see LayerNormRows (layers.h).
Napi::Value LayerNormKernel(const Napi::CallbackInfo& info) {
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
  LayerNorm(F(x), F(g), F(b), W(o), W(mo), W(ro), rows, cols, eps);
  return env.Undefined();
}

// layerNormGrad(dy, x, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols): see LayerNormGrad (layers.h).
Napi::Value LayerNormGradKernel(const Napi::CallbackInfo& info) {
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
  LayerNormGrad(F(dy), F(x), F(mi), F(ri), F(g), W(dx), W(dg), W(db), rows, cols);
  return env.Undefined();
}

}  // namespace

void InitLayers(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New(env, LayerNormKernel, "layerNorm"));
  exports.Set("layerNormGrad", Napi::Function::New(env, LayerNormGradKernel, "layerNormGrad"));
  exports.Set("gelu", Napi::Function::New(env, Gelu, "gelu"));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad, "geluGrad"));
}

}  // namespace ssfer
