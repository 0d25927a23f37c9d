// Fused optimizer updates.
#include "common.h"

// Every product and sum is rounded on its own, as the separate tfjs ops round them: no fused
// multiply-adds here.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ssfer {

namespace {

// Memory-bound: about 7 float streams per element.
constexpr i64 kAdamWGrain = 16384;

// The rates of one AdamW step, read from seven numbers of a call starting at `first`: beta1,
// 1 − beta1, beta2, 1 − beta2, sqrtBc2, epsilon, stepSize.
struct AdamWRates {
  float b1, omb1, b2, omb2, sqrtBc2, eps, stepSize;
};

AdamWRates AdamWRatesAt(const Napi::CallbackInfo& info, size_t first) {
  auto at = [&](size_t k) { return info[first + k].As<Napi::Number>().FloatValue(); };
  return {at(0), at(1), at(2), at(3), at(4), at(5), at(6)};
}

// One element of the AdamW step (formula at adamW below), shared by adamW and adamWInPlace; the
// outputs are written after every input is read, so they may be the inputs themselves.
inline void AdamWElement(const AdamWRates& r, float df, float p, float g, float m, float v, float& pOut, float& mOut, float& vOut) {
  const float mi = m * r.b1 + g * r.omb1;
  const float vi = v * r.b2 + (g * g) * r.omb2;
  const float denom = std::sqrt(vi) / r.sqrtBc2 + r.eps;
  pOut = p * df - (mi / denom) * r.stepSize;
  mOut = mi;
  vOut = vi;
}

// The in-place updates of many weights at once: every weight (lengths[slot] floats) is cut into
// pieces of at most kAdamWGrain floats, and the pieces of all weights are shared out among the
// threads; body(slot, begin, end) updates one piece.
template <typename Fn>
void ForEachPiece(const std::vector<i64>& lengths, Fn&& body) {
  struct Piece {
    uint32_t slot;
    i64 b, e;
  };
  std::vector<Piece> pieces;
  for (uint32_t i = 0; i < lengths.size(); i++) {
    for (i64 b = 0; b < lengths[i]; b += kAdamWGrain) pieces.push_back({i, b, std::min<i64>(lengths[i], b + kAdamWGrain)});
  }
  ParallelFor(static_cast<i64>(pieces.size()), 1, [&](i64 pb, i64 pe) {
    for (i64 k = pb; k < pe; k++) body(pieces[k].slot, pieces[k].b, pieces[k].e);
  });
}

// adamW(param, grad, m, v, outParam, outM, outV, beta1, oneMinusBeta1, beta2, oneMinusBeta2,
//       sqrtBc2, epsilon, stepSize, decayFactor, decay)
// One AdamW step in float32, each operation rounded as the unfused tfjs ops round it:
//   m' = m·β1 + g·(1 − β1);  v' = v·β2 + (g·g)·(1 − β2)
//   θ' = (decay ? θ·decayFactor : θ) − (m' / (√v' / sqrtBc2 + ε))·stepSize
// The outputs may not alias the inputs.
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr p = GetArrOf(env, info[0], napi_float32_array, "param");
  Arr g = GetArrOf(env, info[1], napi_float32_array, "grad");
  Arr m = GetArrOf(env, info[2], napi_float32_array, "m");
  Arr v = GetArrOf(env, info[3], napi_float32_array, "v");
  Arr po = GetArrOf(env, info[4], napi_float32_array, "outParam");
  Arr mo = GetArrOf(env, info[5], napi_float32_array, "outM");
  Arr vo = GetArrOf(env, info[6], napi_float32_array, "outV");
  const size_t n = p.length;
  if (g.length != n || m.length != n || v.length != n || po.length < n || mo.length < n || vo.length < n) {
    throw Napi::RangeError::New(env, "adamW: arrays of different lengths");
  }
  const AdamWRates r = AdamWRatesAt(info, 7);
  const float decayFactor = info[14].As<Napi::Number>().FloatValue();
  const bool decay = info[15].ToBoolean().Value();

  const float* __restrict pp = static_cast<const float*>(p.data);
  const float* __restrict gp = static_cast<const float*>(g.data);
  const float* __restrict mp = static_cast<const float*>(m.data);
  const float* __restrict vp = static_cast<const float*>(v.data);
  float* __restrict pop = static_cast<float*>(po.data);
  float* __restrict mop = static_cast<float*>(mo.data);
  float* __restrict vop = static_cast<float*>(vo.data);
  // A multiply by 1 is exact, so the undecayed case shares the loop.
  const float df = decay ? decayFactor : 1.0f;
  ParallelFor(static_cast<i64>(n), kAdamWGrain, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) AdamWElement(r, df, pp[i], gp[i], mp[i], vp[i], pop[i], mop[i], vop[i]);
  });
  return env.Undefined();
}

// adamWInPlace(params[], grads[], ms[], vs[], decayFactors: Float32Array, beta1, oneMinusBeta1, beta2,
//              oneMinusBeta2, sqrtBc2, epsilon, stepSize)
// The step above for many weights at once, each param, m and v overwritten in place (the caller
// makes sure nothing else sees them); decayFactors[i] is 1 for an undecayed weight.
Napi::Value AdamWInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array ps = info[0].As<Napi::Array>(), gs = info[1].As<Napi::Array>(), ms = info[2].As<Napi::Array>(), vs = info[3].As<Napi::Array>();
  Arr dfa = GetArrOf(env, info[4], napi_float32_array, "decayFactors");
  const uint32_t slots = ps.Length();
  if (gs.Length() != slots || ms.Length() != slots || vs.Length() != slots || dfa.length != slots) {
    throw Napi::RangeError::New(env, "adamWInPlace: lists of different lengths");
  }
  const AdamWRates r = AdamWRatesAt(info, 5);
  struct Slot {
    float *p, *m, *v;
    const float* g;
    float df;
  };
  std::vector<Slot> sl(slots);
  std::vector<i64> lengths(slots);
  for (uint32_t i = 0; i < slots; i++) {
    Arr p = GetArrOf(env, ps.Get(i), napi_float32_array, "param");
    Arr g = GetArrOf(env, gs.Get(i), napi_float32_array, "grad");
    Arr m = GetArrOf(env, ms.Get(i), napi_float32_array, "m");
    Arr v = GetArrOf(env, vs.Get(i), napi_float32_array, "v");
    if (g.length != p.length || m.length != p.length || v.length != p.length) throw Napi::RangeError::New(env, "adamWInPlace: arrays of different lengths");
    sl[i] = {static_cast<float*>(p.data), static_cast<float*>(m.data), static_cast<float*>(v.data), static_cast<const float*>(g.data),
             static_cast<const float*>(dfa.data)[i]};
    lengths[i] = static_cast<i64>(p.length);
  }
  ForEachPiece(lengths, [&](uint32_t slot, i64 b, i64 e) {
    const Slot& s = sl[slot];
    float* __restrict pp = s.p;
    float* __restrict mp = s.m;
    float* __restrict vp = s.v;
    const float* __restrict gp = s.g;
    const float df = s.df;
#pragma omp simd
    for (i64 i = b; i < e; i++) AdamWElement(r, df, pp[i], gp[i], mp[i], vp[i], pp[i], mp[i], vp[i]);
  });
  return env.Undefined();
}

// emaInPlace(targets[], sources[], keep, take)
// The exponential moving average of many weights at once, t ← t·keep + s·take in float32, each
// product and the sum rounded on its own as the tfjs ops it replaces round them; every target is
// overwritten in place (the caller makes sure nothing else sees it).
Napi::Value EmaInPlace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array ts = info[0].As<Napi::Array>(), ss = info[1].As<Napi::Array>();
  const uint32_t slots = ts.Length();
  if (ss.Length() != slots) throw Napi::RangeError::New(env, "emaInPlace: lists of different lengths");
  const float keep = info[2].As<Napi::Number>().FloatValue();
  const float take = info[3].As<Napi::Number>().FloatValue();
  std::vector<float*> targets(slots);
  std::vector<const float*> sources(slots);
  std::vector<i64> lengths(slots);
  for (uint32_t i = 0; i < slots; i++) {
    Arr t = GetArrOf(env, ts.Get(i), napi_float32_array, "target");
    Arr s = GetArrOf(env, ss.Get(i), napi_float32_array, "source");
    if (s.length != t.length) throw Napi::RangeError::New(env, "emaInPlace: arrays of different lengths");
    targets[i] = static_cast<float*>(t.data);
    sources[i] = static_cast<const float*>(s.data);
    lengths[i] = static_cast<i64>(t.length);
  }
  ForEachPiece(lengths, [&](uint32_t slot, i64 b, i64 e) {
    float* __restrict tp = targets[slot];
    const float* __restrict sp = sources[slot];
#pragma omp simd
    for (i64 i = b; i < e; i++) tp[i] = tp[i] * keep + sp[i] * take;
  });
  return env.Undefined();
}

}  // namespace

void InitOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamW", Napi::Function::New(env, AdamW, "adamW"));
  exports.Set("adamWInPlace", Napi::Function::New(env, AdamWInPlace, "adamWInPlace"));
  exports.Set("emaInPlace", Napi::Function::New(env, EmaInPlace, "emaInPlace"));
}

}  // namespace ssfer
