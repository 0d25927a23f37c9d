// Batched matrix multiply through OpenBLAS sgemm.
#include "common.h"

extern "C" {
// Declared here instead of including cblas.h: distributions put that header in different places
// (and some ship several), while the symbols below are the same in every OpenBLAS build.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace ssfer {

void ApplyUnaryInPlace(int op, float* x, i64 n, float alpha);

namespace {

constexpr int kRowMajor = 101;
constexpr int kNoTrans = 111;
constexpr int kTrans = 112;

// Below this many multiply-adds per matrix, OpenBLAS's own threading does not pay off, so a
// batch of such products is spread over the threads one whole product each.
constexpr i64 kSmallGemm = i64(1) << 20;

inline void Gemm(bool ta, bool tb, i64 m, i64 n, i64 k, const float* a, const float* b, float* c, bool accumulate) {
  int lda = static_cast<int>(std::max<i64>(1, ta ? m : k));
  int ldb = static_cast<int>(std::max<i64>(1, tb ? k : n));
  int ldc = static_cast<int>(std::max<i64>(1, n));
  cblas_sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
}

// matmul(a, b, out, batch, M, N, K, transA, transB, aStep, bStep, aIdx, bIdx, bias, act, alpha)
//   Matrix i of the output uses matrix aIdx[i] of a (or i * aStep when aIdx is null), likewise b;
//   steps are 0 (broadcast) or 1. bias (nullable) is a Float32Array of N added to every row.
//   act is a unary op code applied in place afterwards (-1: none).
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr aa = GetArrOf(env, info[0], napi_float32_array, "a");
  Arr ba = GetArrOf(env, info[1], napi_float32_array, "b");
  Arr oa = GetArrOf(env, info[2], napi_float32_array, "out");
  i64 batch = GetInt(info[3]);
  i64 m = GetInt(info[4]);
  i64 n = GetInt(info[5]);
  i64 k = GetInt(info[6]);
  bool ta = info[7].ToBoolean().Value();
  bool tb = info[8].ToBoolean().Value();
  i64 aStep = GetInt(info[9]);
  i64 bStep = GetInt(info[10]);
  const int32_t* aIdx = nullptr;
  const int32_t* bIdx = nullptr;
  if (info[11].IsTypedArray()) {
    Arr x = GetArrOf(env, info[11], napi_int32_array, "aIdx");
    if (static_cast<i64>(x.length) < batch) throw Napi::RangeError::New(env, "matmul: aIdx too short");
    aIdx = static_cast<const int32_t*>(x.data);
  }
  if (info[12].IsTypedArray()) {
    Arr x = GetArrOf(env, info[12], napi_int32_array, "bIdx");
    if (static_cast<i64>(x.length) < batch) throw Napi::RangeError::New(env, "matmul: bIdx too short");
    bIdx = static_cast<const int32_t*>(x.data);
  }
  const float* bias = nullptr;
  if (info.Length() > 13 && info[13].IsTypedArray()) {
    Arr x = GetArrOf(env, info[13], napi_float32_array, "bias");
    if (static_cast<i64>(x.length) < n) throw Napi::RangeError::New(env, "matmul: bias too short");
    bias = static_cast<const float*>(x.data);
  }
  int act = info.Length() > 14 ? static_cast<int>(GetInt(info[14])) : -1;
  float alpha = info.Length() > 15 ? info[15].As<Napi::Number>().FloatValue() : 0.0f;

  const i64 mk = m * k, kn = k * n, mn = m * n;
  const i64 aMats = mk > 0 ? static_cast<i64>(aa.length) / mk : 0;
  const i64 bMats = kn > 0 ? static_cast<i64>(ba.length) / kn : 0;
  if (static_cast<i64>(oa.length) < batch * mn) throw Napi::RangeError::New(env, "matmul: output too small");
  if (mk > 0 && kn > 0) {
    for (i64 i = 0; i < batch; i++) {
      i64 ai = aIdx ? aIdx[i] : i * aStep;
      i64 bi = bIdx ? bIdx[i] : i * bStep;
      if (ai < 0 || ai >= aMats || bi < 0 || bi >= bMats) throw Napi::RangeError::New(env, "matmul: operand too small");
    }
  }

  const float* a = static_cast<const float*>(aa.data);
  const float* b = static_cast<const float*>(ba.data);
  float* c = static_cast<float*>(oa.data);
  const i64 total = batch * mn;
  if (total == 0) return env.Undefined();

  if (bias) {
    ParallelFor(batch * m, std::max<i64>(1, 32768 / std::max<i64>(n, 1)), [&](i64 rb, i64 re) {
      for (i64 r = rb; r < re; r++) std::memcpy(c + r * n, bias, sizeof(float) * n);
    });
  }
  if (k > 0) {
    bool acc = bias != nullptr;
    const bool smallBatched = batch > 1 && m * n * k < kSmallGemm &&
                              !(!aIdx && !bIdx && bStep == 0 && aStep == 1 && !ta);
    if (!smallBatched && NumThreads() > 1) ParkWorkers();
    // One product against a shared right-hand side: stack the left matrices into one tall one.
    if (batch > 1 && !aIdx && !bIdx && bStep == 0 && aStep == 1 && !ta) {
      Gemm(false, tb, batch * m, n, k, a, b, c, acc);
    } else if (batch > 1 && m * n * k < kSmallGemm) {
      int saved = openblas_get_num_threads();
      openblas_set_num_threads(1);
      ParallelFor(batch, 1, [&](i64 s, i64 e) {
        for (i64 i = s; i < e; i++) {
          i64 ai = aIdx ? aIdx[i] : i * aStep;
          i64 bi = bIdx ? bIdx[i] : i * bStep;
          Gemm(ta, tb, m, n, k, a + ai * mk, b + bi * kn, c + i * mn, acc);
        }
      });
      openblas_set_num_threads(saved);
    } else {
      for (i64 i = 0; i < batch; i++) {
        i64 ai = aIdx ? aIdx[i] : i * aStep;
        i64 bi = bIdx ? bIdx[i] : i * bStep;
        Gemm(ta, tb, m, n, k, a + ai * mk, b + bi * kn, c + i * mn, acc);
      }
    }
  }
  if (act >= 0) ApplyUnaryInPlace(act, c, total, alpha);
  return env.Undefined();
}

Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const char* cfg = openblas_get_config();
  const char* core = openblas_get_corename();
  o.Set("config", Napi::String::New(env, cfg ? cfg : ""));
  o.Set("core", Napi::String::New(env, core ? core : ""));
  o.Set("blasThreads", Napi::Number::New(env, openblas_get_num_threads()));
  o.Set("threads", Napi::Number::New(env, NumThreads()));
#if defined(__AVX512F__)
  o.Set("simd", Napi::String::New(env, "avx512"));
#elif defined(__AVX2__)
  o.Set("simd", Napi::String::New(env, "avx2"));
#else
  o.Set("simd", Napi::String::New(env, "baseline"));
#endif
  return o;
}

}  // namespace

void SetBlasThreads(int n) { openblas_set_num_threads(n); }

int BlasThreads() { return openblas_get_num_threads(); }

void Sgemm(bool ta, bool tb, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
           float beta, float* c, i64 ldc) {
  if (m <= 0 || n <= 0) return;
  cblas_sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(std::max<i64>(1, lda)), b,
              static_cast<int>(std::max<i64>(1, ldb)), beta, c, static_cast<int>(std::max<i64>(1, ldc)));
}

void InitGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, MatMul, "matmul"));
  exports.Set("info", Napi::Function::New(env, BlasInfo, "info"));
}

}  // namespace ssfer
