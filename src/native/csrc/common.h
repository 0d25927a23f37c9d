// Shared helpers for the native tfjs kernels: typed-array access and a parallel loop.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>


namespace ssfer {

using i64 = int64_t;

constexpr int kMaxRank = 12;

struct Arr {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_uint8_array;
};

// Reads a TypedArray argument. N-API already applies the view's byte offset, so subarray views
// (which the cpu backend hands out for contiguous slices) work without copies.
inline Arr GetArr(const Napi::Env& env, const Napi::Value& v, const char* what) {
  Arr a;
  napi_value ab;
  size_t byteOffset;
  if (!v.IsTypedArray() ||
      napi_get_typedarray_info(env, v, &a.type, &a.length, &a.data, &ab, &byteOffset) != napi_ok) {
    throw Napi::TypeError::New(env, std::string("expected a TypedArray for ") + what);
  }
  return a;
}

inline Arr GetArrOf(const Napi::Env& env, const Napi::Value& v, napi_typedarray_type t, const char* what) {
  Arr a = GetArr(env, v, what);
  if (a.type != t) throw Napi::TypeError::New(env, std::string("wrong TypedArray type for ") + what);
  return a;
}

inline bool IsF32(const Arr& a) { return a.type == napi_float32_array; }
inline bool IsI32(const Arr& a) { return a.type == napi_int32_array; }
inline bool IsU8(const Arr& a) { return a.type == napi_uint8_array; }

inline size_t ElemSize(const Arr& a) {
  switch (a.type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    default:
      return 8;
  }
}

inline i64 GetInt(const Napi::Value& v) { return static_cast<i64>(v.As<Napi::Number>().DoubleValue()); }

inline std::vector<i64> GetInts(const Napi::Env& env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("expected an array for ") + what);
  Napi::Array arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  if (n > static_cast<uint32_t>(kMaxRank)) throw Napi::RangeError::New(env, std::string("rank too high in ") + what);
  std::vector<i64> out(n);
  for (uint32_t i = 0; i < n; i++) out[i] = GetInt(arr.Get(i));
  return out;
}

inline i64 Product(const std::vector<i64>& s) {
  i64 p = 1;
  for (i64 d : s) p *= d;
  return p;
}

inline std::vector<i64> Strides(const std::vector<i64>& shape) {
  std::vector<i64> st(shape.size());
  i64 s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

int NumThreads();
void SetNumThreads(int n);

// Sends spinning pool workers to sleep now, before a multithreaded OpenBLAS call whose threads
// would otherwise share the cores with them.
void ParkWorkers();

// Runs fn(ctx, begin, end) over chunks of [0, n) on the calling thread and the pool's workers.
void RunParallel(i64 n, i64 grain, void (*fn)(void*, i64, i64), void* ctx);

// Runs f(begin, end) over [0, n), split across the worker threads. Below `grain` items per
// thread everything stays on the calling thread: waking workers costs more than it saves.
template <typename F>
inline void ParallelFor(i64 n, i64 grain, F&& f) {
  if (n <= 0) return;
  using Fn = std::remove_reference_t<F>;
  RunParallel(n, std::max<i64>(grain, 1), [](void* ctx, i64 b, i64 e) { (*static_cast<Fn*>(ctx))(b, e); },
              const_cast<void*>(static_cast<const void*>(&f)));
}

// JavaScript's ToInt32 (what storing a number into an Int32Array does).
inline int32_t JsToInt32(double v) {
  if (!std::isfinite(v)) return 0;
  double t = std::trunc(v);
  if (t >= -2147483648.0 && t <= 2147483647.0) return static_cast<int32_t>(t);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<int32_t>(static_cast<uint32_t>(m));
}

// Kernels implemented in the other translation units, registered on the exports object.
void InitGemm(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitReduce(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
void InitLayers(Napi::Env env, Napi::Object exports);
void InitBlock(Napi::Env env, Napi::Object exports);
void InitConv(Napi::Env env, Napi::Object exports);
void InitImage(Napi::Env env, Napi::Object exports);

// Row-major single-precision GEMM through OpenBLAS: c = alpha·op(a)·op(b) + beta·c.
void Sgemm(bool ta, bool tb, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
           float beta, float* c, i64 ldc);
void SetBlasThreads(int n);
int BlasThreads();

// Copies src into dst with its axes permuted (shared by Transpose and the reductions).
void TransposeRaw(const void* src, void* dst, size_t elem, const std::vector<i64>& shape, const std::vector<i64>& perm);

}  // namespace ssfer
