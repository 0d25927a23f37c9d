// Reductions over any set of axes, without transposing when the reduced axes are one block.
#include "common.h"

namespace ssfer {

namespace {

// Codes shared with kernels.ts (REDUCE there).
enum ReduceOp { kSum = 0, kMean, kProd, kMax, kMin, kArgMax, kArgMin };

constexpr i64 kChunk = 256;

template <typename T>
using SumAcc = std::conditional_t<std::is_same<T, float>::value, double, int64_t>;

template <typename O, int OP, typename Acc>
inline O FinishSum(Acc s, i64 count) {
  if constexpr (OP == kMean) {
    return static_cast<O>(static_cast<double>(s) / static_cast<double>(count));
  } else if constexpr (std::is_same<O, int32_t>::value) {
    return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(s)));
  } else {
    return static_cast<O>(s);
  }
}

template <typename O>
inline O FinishProd(double p) {
  if constexpr (std::is_same<O, int32_t>::value) {
    return JsToInt32(p);
  } else {
    return static_cast<O>(p);
  }
}

template <typename T>
inline bool IsNan(T v) {
  return v != v;
}

// Reduces one contiguous row of length r.
template <typename T, typename O, int OP>
inline O ReduceRow(const T* __restrict p, i64 r) {
  if constexpr (OP == kSum || OP == kMean) {
    SumAcc<T> s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 j = 0; j < r; j++) s += p[j];
    return FinishSum<O, OP>(s, r);
  } else if constexpr (OP == kProd) {
    double s = 1.0;
    for (i64 j = 0; j < r; j++) s *= p[j];
    return FinishProd<O>(s);
  } else if constexpr (OP == kMax || OP == kMin) {
    T m = p[0];
    int nan = 0;
    if constexpr (OP == kMax) {
#pragma omp simd reduction(max : m) reduction(| : nan)
      for (i64 j = 0; j < r; j++) {
        m = p[j] > m ? p[j] : m;
        nan |= IsNan(p[j]) ? 1 : 0;
      }
    } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
      for (i64 j = 0; j < r; j++) {
        m = p[j] < m ? p[j] : m;
        nan |= IsNan(p[j]) ? 1 : 0;
      }
    }
    if constexpr (std::is_same<T, float>::value) {
      if (nan) return static_cast<O>(NAN);
    }
    return static_cast<O>(m);
  } else {
    // First index of the extreme value; a NaN is never selected (as in the cpu kernel).
    T m = p[0];
    int32_t idx = 0;
    for (i64 j = 1; j < r; j++) {
      bool better = OP == kArgMax ? p[j] > m : p[j] < m;
      if (better) {
        m = p[j];
        idx = static_cast<int32_t>(j);
      }
    }
    return static_cast<O>(idx);
  }
}

// Reduces x viewed as [outer, r, inner] over the middle axis into out [outer, inner].
template <typename T, typename O, int OP>
void ReduceView(const T* __restrict x, O* __restrict out, i64 outer, i64 r, i64 inner) {
  if (inner == 1) {
    if (outer == 1 && (OP == kSum || OP == kMean) && r >= 65536 && NumThreads() > 1) {
      // A single long row: partial sums per thread, combined in a fixed order.
      int nt = NumThreads();
      std::vector<SumAcc<T>> partial(nt, 0);
      i64 chunk = (r + nt - 1) / nt;
      ParallelFor(nt, 1, [&](i64 tb, i64 te) {
        for (i64 t = tb; t < te; t++) {
          i64 b = t * chunk, e = std::min(r, b + chunk);
          SumAcc<T> s = 0;
#pragma omp simd reduction(+ : s)
          for (i64 j = b; j < e; j++) s += x[j];
          partial[t] = s;
        }
      });
      SumAcc<T> s = 0;
      for (auto v : partial) s += v;
      out[0] = FinishSum<O, OP>(s, r);
      return;
    }
    ParallelFor(outer, std::max<i64>(1, 16384 / std::max<i64>(r, 1)), [&](i64 b, i64 e) {
      for (i64 o = b; o < e; o++) out[o] = ReduceRow<T, O, OP>(x + o * r, r);
    });
    return;
  }
  const i64 chunks = (inner + kChunk - 1) / kChunk;
  const i64 items = outer * chunks;
  ParallelFor(items, std::max<i64>(1, 16384 / std::max<i64>(r * kChunk, 1)), [&](i64 ib, i64 ie) {
    for (i64 it = ib; it < ie; it++) {
      const i64 o = it / chunks;
      const i64 i0 = (it % chunks) * kChunk;
      const i64 w = std::min(kChunk, inner - i0);
      const T* base = x + o * r * inner + i0;
      O* dst = out + o * inner + i0;
      if constexpr (OP == kSum || OP == kMean || OP == kProd) {
        using Acc = std::conditional_t<OP == kProd, double, SumAcc<T>>;
        Acc acc[kChunk];
        for (i64 i = 0; i < w; i++) acc[i] = OP == kProd ? 1 : 0;
        for (i64 j = 0; j < r; j++) {
          const T* p = base + j * inner;
          if constexpr (OP == kProd) {
            for (i64 i = 0; i < w; i++) acc[i] *= p[i];
          } else {
#pragma omp simd
            for (i64 i = 0; i < w; i++) acc[i] += p[i];
          }
        }
        for (i64 i = 0; i < w; i++) {
          if constexpr (OP == kProd) {
            dst[i] = FinishProd<O>(acc[i]);
          } else {
            dst[i] = FinishSum<O, OP>(acc[i], r);
          }
        }
      } else if constexpr (OP == kMax || OP == kMin) {
        T acc[kChunk];
        for (i64 i = 0; i < w; i++) acc[i] = base[i];
        for (i64 j = 1; j < r; j++) {
          const T* p = base + j * inner;
#pragma omp simd
          for (i64 i = 0; i < w; i++) {
            T v = p[i];
            bool take = OP == kMax ? (v > acc[i] || IsNan(v)) : (v < acc[i] || IsNan(v));
            acc[i] = take ? v : acc[i];
          }
        }
        for (i64 i = 0; i < w; i++) dst[i] = static_cast<O>(acc[i]);
      } else {
        T acc[kChunk];
        int32_t idx[kChunk];
        for (i64 i = 0; i < w; i++) {
          acc[i] = base[i];
          idx[i] = 0;
        }
        for (i64 j = 1; j < r; j++) {
          const T* p = base + j * inner;
          const int32_t jj = static_cast<int32_t>(j);
#pragma omp simd
          for (i64 i = 0; i < w; i++) {
            T v = p[i];
            bool better = OP == kArgMax ? v > acc[i] : v < acc[i];
            acc[i] = better ? v : acc[i];
            idx[i] = better ? jj : idx[i];
          }
        }
        for (i64 i = 0; i < w; i++) dst[i] = static_cast<O>(idx[i]);
      }
    }
  });
}

template <typename T, typename O>
bool Dispatch(int op, const T* x, O* out, i64 outer, i64 r, i64 inner) {
  switch (op) {
    case kSum: ReduceView<T, O, kSum>(x, out, outer, r, inner); return true;
    case kMean: ReduceView<T, O, kMean>(x, out, outer, r, inner); return true;
    case kProd: ReduceView<T, O, kProd>(x, out, outer, r, inner); return true;
    case kMax: ReduceView<T, O, kMax>(x, out, outer, r, inner); return true;
    case kMin: ReduceView<T, O, kMin>(x, out, outer, r, inner); return true;
    case kArgMax: ReduceView<T, O, kArgMax>(x, out, outer, r, inner); return true;
    case kArgMin: ReduceView<T, O, kArgMin>(x, out, outer, r, inner); return true;
    default: return false;
  }
}

template <typename T>
bool Run(int op, const T* x, const Arr& out, i64 outer, i64 r, i64 inner) {
  switch (op) {
    case kSum:
    case kProd:
      if (std::is_same<T, float>::value && IsF32(out)) return Dispatch<T, float>(op, x, static_cast<float*>(out.data), outer, r, inner);
      if (!std::is_same<T, float>::value && IsI32(out)) return Dispatch<T, int32_t>(op, x, static_cast<int32_t*>(out.data), outer, r, inner);
      return false;
    case kMean:
      if (IsF32(out)) return Dispatch<T, float>(op, x, static_cast<float*>(out.data), outer, r, inner);
      return false;
    case kMax:
    case kMin:
      if (std::is_same<T, float>::value && IsF32(out)) return Dispatch<T, float>(op, x, static_cast<float*>(out.data), outer, r, inner);
      if (std::is_same<T, int32_t>::value && IsI32(out)) return Dispatch<T, int32_t>(op, x, static_cast<int32_t*>(out.data), outer, r, inner);
      return false;
    case kArgMax:
    case kArgMin:
      if (IsI32(out)) return Dispatch<T, int32_t>(op, x, static_cast<int32_t*>(out.data), outer, r, inner);
      return false;
    default:
      return false;
  }
}

// reduce(op, x, out, shape, reducedMask) -> boolean (false: op/type not handled)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int op = static_cast<int>(GetInt(info[0]));
  Arr x = GetArr(env, info[1], "x");
  Arr out = GetArr(env, info[2], "out");
  std::vector<i64> shape = GetInts(env, info[3], "shape");
  std::vector<i64> mask = GetInts(env, info[4], "mask");
  if (mask.size() != shape.size()) throw Napi::RangeError::New(env, "reduce: mask rank mismatch");
  i64 total = Product(shape);
  if (static_cast<i64>(x.length) < total) throw Napi::RangeError::New(env, "reduce: input too small");

  // Size-1 axes do not matter; neighbouring axes of the same kind merge into one.
  std::vector<i64> dims;
  std::vector<int> red;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    int f = mask[i] ? 1 : 0;
    if (!dims.empty() && red.back() == f) {
      dims.back() *= shape[i];
    } else {
      dims.push_back(shape[i]);
      red.push_back(f);
    }
  }
  i64 reduceSize = 1;
  for (size_t i = 0; i < dims.size(); i++)
    if (red[i]) reduceSize *= dims[i];
  i64 outSize = total / std::max<i64>(reduceSize, 1);
  if (total == 0 || reduceSize == 0) return Napi::Boolean::New(env, false);
  if (static_cast<i64>(out.length) < outSize) throw Napi::RangeError::New(env, "reduce: output too small");

  int groups = 0;
  for (int f : red) groups += f;
  i64 outer = 1, r = 1, inner = 1;
  std::vector<char> moved;
  const void* src = x.data;
  if (groups <= 1) {
    size_t g = 0;
    while (g < dims.size() && !red[g]) outer *= dims[g++];
    if (g < dims.size()) r = dims[g++];
    while (g < dims.size()) inner *= dims[g++];
  } else {
    // Several separate reduced blocks: move them to the end once, then reduce rows.
    std::vector<i64> perm;
    for (size_t i = 0; i < dims.size(); i++)
      if (!red[i]) perm.push_back(static_cast<i64>(i));
    for (size_t i = 0; i < dims.size(); i++)
      if (red[i]) perm.push_back(static_cast<i64>(i));
    size_t es = ElemSize(x);
    moved.resize(static_cast<size_t>(total) * es);
    TransposeRaw(x.data, moved.data(), es, dims, perm);
    src = moved.data();
    outer = outSize;
    r = reduceSize;
  }
  bool ok = false;
  if (IsF32(x)) {
    ok = Run<float>(op, static_cast<const float*>(src), out, outer, r, inner);
  } else if (IsI32(x)) {
    ok = Run<int32_t>(op, static_cast<const int32_t*>(src), out, outer, r, inner);
  } else if (IsU8(x) && op == kSum && IsI32(out)) {
    ok = Dispatch<uint8_t, int32_t>(op, static_cast<const uint8_t*>(src), static_cast<int32_t*>(out.data), outer, r, inner);
  }
  return Napi::Boolean::New(env, ok);
}

}  // namespace

void InitReduce(Napi::Env env, Napi::Object exports) {
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
}

}  // namespace ssfer
