// Unary and broadcasting binary kernels, plus the few elementwise kernels with their own
// layouts (Softmax, Select, Cast, AddN, OneHot).
#include "common.h"
#include "mathfn.h"

namespace ssfer {

namespace {

// Codes shared with kernels.ts (UNARY_OPS / BINARY_OPS there).
enum UnaryOp {
  kExp = 0, kLog, kSqrt, kRsqrt, kTanh, kRelu, kRelu6, kSigmoid, kErf, kStep, kNeg, kAbs, kSquare,
  kReciprocal, kElu, kLeakyRelu, kSoftplus, kLog1p, kExpm1, kFloor, kCeil, kSign, kSin, kCos, kRound,
  kClip, kUnaryCount
};

enum BinaryOp {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kPow, kSqDiff, kGreater, kGreaterEqual, kLess, kLessEqual,
  kEqual, kNotEqual, kBinaryCount
};

// Relative cost per element, to decide when splitting across threads pays off.
constexpr i64 kCheapGrain = 32768;
constexpr i64 kCostlyGrain = 4096;

// alpha: the one parameter of Step and LeakyRelu (as float32); lo and hi: ClipByValue's bounds,
// compared in double as the JS kernel compares them.
template <int OP>
inline float UnaryF(float x, float alpha, double lo, double hi) {
  if constexpr (OP == kExp) return ExpF(x);
  if constexpr (OP == kLog) return LogF(x);
  if constexpr (OP == kSqrt) return std::sqrt(x);
  if constexpr (OP == kRsqrt) return 1.0f / std::sqrt(x);
  if constexpr (OP == kTanh) return TanhF(x);
  if constexpr (OP == kRelu) return x > 0.0f ? x : (x == x ? 0.0f : x);
  if constexpr (OP == kRelu6) return x > 6.0f ? 6.0f : (x > 0.0f ? x : (x == x ? 0.0f : x));
  if constexpr (OP == kSigmoid) return SigmoidF(x);
  if constexpr (OP == kErf) return ErfF(x);
  if constexpr (OP == kStep) return x != x ? x : (x > 0.0f ? 1.0f : alpha);
  if constexpr (OP == kNeg) return -x;
  if constexpr (OP == kAbs) return std::fabs(x);
  if constexpr (OP == kSquare) return x * x;
  if constexpr (OP == kReciprocal) return 1.0f / x;
  if constexpr (OP == kElu) return x >= 0.0f ? x : ExpF(x) - 1.0f;
  if constexpr (OP == kLeakyRelu) return x < 0.0f ? alpha * x : x;
  if constexpr (OP == kSoftplus) {
    // Same thresholds as tf.nn.softplus / the tfjs cpu kernel.
    const float threshold = -13.942385152878742f;
    float e = ExpF(x);
    float mid = LogF(1.0f + e);
    return x < threshold ? e : (x > -threshold ? x : mid);
  }
  if constexpr (OP == kLog1p) return std::log1p(x);
  if constexpr (OP == kExpm1) return std::expm1(x);
  if constexpr (OP == kFloor) return std::floor(x);
  if constexpr (OP == kCeil) return std::ceil(x);
  if constexpr (OP == kSign) return x < 0.0f ? -1.0f : (x > 0.0f ? 1.0f : 0.0f);
  if constexpr (OP == kSin) return std::sin(x);
  if constexpr (OP == kCos) return std::cos(x);
  if constexpr (OP == kRound) {
    // The tfjs cpu kernel's banker's rounding, step by step (−0.5 gives +0, as there).
    // x − ⌊x⌋ in double, as JS computes it (in float32, −0.49999997 + 1 would round to 0.5).
    const float base = std::floor(x);
    const double d = static_cast<double>(x) - static_cast<double>(base);
    return d < 0.5 ? base : (d > 0.5 ? std::ceil(x) : (std::fmod(base, 2.0f) == 0.0f ? base : base + 1.0f));
  }
  if constexpr (OP == kClip) {
    const double xd = x;
    return xd > hi ? static_cast<float>(hi) : (xd < lo ? static_cast<float>(lo) : x);
  }
  return x;
}

template <int OP>
constexpr bool kCheapUnary = OP == kNeg || OP == kAbs || OP == kSquare || OP == kRelu || OP == kRelu6 || OP == kStep ||
                             OP == kLeakyRelu || OP == kFloor || OP == kCeil || OP == kSign || OP == kRound || OP == kClip;

template <int OP>
void UnaryLoop(const float* __restrict x, float* __restrict y, i64 n, float alpha, double lo, double hi) {
  ParallelFor(n, kCheapUnary<OP> ? kCheapGrain : kCostlyGrain, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) y[i] = UnaryF<OP>(x[i], alpha, lo, hi);
  });
}

// In-place (x == y) is allowed: elementwise kernels never read an index after writing it.
template <int OP>
void UnaryLoopInPlace(float* x, i64 n, float alpha, double lo, double hi) {
  ParallelFor(n, kCheapUnary<OP> ? kCheapGrain : kCostlyGrain, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) x[i] = UnaryF<OP>(x[i], alpha, lo, hi);
  });
}

using UnaryFn = void (*)(const float*, float*, i64, float, double, double);
using UnaryInPlaceFn = void (*)(float*, i64, float, double, double);

template <int... OPS>
struct UnaryTable {
  static constexpr UnaryFn fns[] = {&UnaryLoop<OPS>...};
  static constexpr UnaryInPlaceFn inplace[] = {&UnaryLoopInPlace<OPS>...};
};

using AllUnary = UnaryTable<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25>;
static_assert(sizeof(AllUnary::fns) / sizeof(UnaryFn) == kUnaryCount, "unary table size");

// unary(op, x: Float32Array, out: Float32Array, alpha, lo, hi)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int op = static_cast<int>(GetInt(info[0]));
  Arr x = GetArrOf(env, info[1], napi_float32_array, "x");
  Arr y = GetArrOf(env, info[2], napi_float32_array, "out");
  float alpha = info.Length() > 3 ? info[3].As<Napi::Number>().FloatValue() : 0.0f;
  double lo = info.Length() > 4 ? info[4].As<Napi::Number>().DoubleValue() : 0.0;
  double hi = info.Length() > 5 ? info[5].As<Napi::Number>().DoubleValue() : 0.0;
  if (op < 0 || op >= kUnaryCount) throw Napi::RangeError::New(env, "unknown unary op");
  if (y.length < x.length) throw Napi::RangeError::New(env, "unary: output too small");
  i64 n = static_cast<i64>(x.length);
  if (x.data == y.data) {
    AllUnary::inplace[op](static_cast<float*>(y.data), n, alpha, lo, hi);
  } else {
    AllUnary::fns[op](static_cast<const float*>(x.data), static_cast<float*>(y.data), n, alpha, lo, hi);
  }
  return env.Undefined();
}

template <int OP>
inline float BinF(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  if constexpr (OP == kDiv) return a / b;
  // Math.max/min propagate NaN from either side.
  if constexpr (OP == kMax) return (a != a || b != b) ? a + b : (a > b ? a : b);
  if constexpr (OP == kMin) return (a != a || b != b) ? a + b : (a < b ? a : b);
  if constexpr (OP == kPow) return std::pow(a, b);
  if constexpr (OP == kSqDiff) return (a - b) * (a - b);
  return 0.0f;
}

template <int OP>
inline int32_t BinI(int32_t a, int32_t b) {
  // Wrap-around like the JS kernels storing doubles into an Int32Array.
  uint32_t ua = static_cast<uint32_t>(a), ub = static_cast<uint32_t>(b);
  if constexpr (OP == kAdd) return static_cast<int32_t>(ua + ub);
  if constexpr (OP == kSub) return static_cast<int32_t>(ua - ub);
  if constexpr (OP == kMul) return static_cast<int32_t>(ua * ub);
  if constexpr (OP == kMax) return a > b ? a : b;
  if constexpr (OP == kMin) return a < b ? a : b;
  if constexpr (OP == kSqDiff) {
    uint32_t d = ua - ub;
    return static_cast<int32_t>(d * d);
  }
  return 0;
}

template <int OP, typename T>
inline uint8_t CmpF(T a, T b) {
  if constexpr (OP == kGreater) return a > b;
  if constexpr (OP == kGreaterEqual) return a >= b;
  if constexpr (OP == kLess) return a < b;
  if constexpr (OP == kLessEqual) return a <= b;
  if constexpr (OP == kEqual) return a == b;
  if constexpr (OP == kNotEqual) return a != b;
  return 0;
}

template <int OP, typename T, typename O>
inline O Apply(T a, T b) {
  if constexpr (OP >= kGreater) {
    return CmpF<OP, T>(a, b);
  } else if constexpr (std::is_same<T, float>::value) {
    return BinF<OP>(a, b);
  } else {
    return BinI<OP>(a, b);
  }
}

struct BLayout {
  int rank = 0;
  i64 shape[kMaxRank];
  i64 as[kMaxRank];
  i64 bs[kMaxRank];
};

// Drops size-1 axes and merges neighbours that are contiguous in both operands, so that the
// common cases (same shape, scalar, bias row, column) end in a rank of 1 or 2.
BLayout Simplify(const std::vector<i64>& shape, const std::vector<i64>& as, const std::vector<i64>& bs) {
  BLayout l;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    if (l.rank > 0) {
      int j = l.rank - 1;
      if (l.as[j] == as[i] * shape[i] && l.bs[j] == bs[i] * shape[i]) {
        l.shape[j] *= shape[i];
        l.as[j] = as[i];
        l.bs[j] = bs[i];
        continue;
      }
    }
    l.shape[l.rank] = shape[i];
    l.as[l.rank] = as[i];
    l.bs[l.rank] = bs[i];
    l.rank++;
  }
  return l;
}

template <int OP, typename T, typename O>
void BinaryRun(const T* __restrict a, const T* __restrict b, O* __restrict out, const BLayout& l) {
  i64 inner = l.rank > 0 ? l.shape[l.rank - 1] : 1;
  i64 ia = l.rank > 0 ? l.as[l.rank - 1] : 0;
  i64 ib = l.rank > 0 ? l.bs[l.rank - 1] : 0;
  i64 rows = 1;
  for (int d = 0; d + 1 < l.rank; d++) rows *= l.shape[d];
  auto row = [&](const T* pa, const T* pb, O* po, i64 n) {
    if (ia == 1 && ib == 1) {
#pragma omp simd
      for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(pa[i], pb[i]);
    } else if (ia == 1) {
      const T vb = pb[0];
#pragma omp simd
      for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(pa[i], vb);
    } else if (ib == 1) {
      const T va = pa[0];
#pragma omp simd
      for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(va, pb[i]);
    } else {
      for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(pa[i * ia], pb[i * ib]);
    }
  };
  constexpr i64 grain = OP == kPow ? kCostlyGrain : kCheapGrain;
  if (rows == 1) {
    ParallelFor(inner, grain, [&](i64 s, i64 e) { row(a + s * ia, b + s * ib, out + s, e - s); });
    return;
  }
  i64 rowGrain = std::max<i64>(1, grain / std::max<i64>(inner, 1));
  // Short rows against one row that repeats (a per-channel constant of NHWC images: rows of 3):
  // the repeating row is laid out k times so that the loop runs over long stretches.
  if (l.rank == 2 && inner < 64 && ia == 1 && ib == 1) {
    const bool bRepeats = l.bs[0] == 0 && l.as[0] == inner;
    const bool aRepeats = l.as[0] == 0 && l.bs[0] == inner;
    if (bRepeats || aRepeats) {
      const i64 k = (256 + inner - 1) / inner, wide = k * inner;
      std::vector<T> tiled(static_cast<size_t>(wide));
      const T* once = bRepeats ? b : a;
      for (i64 i = 0; i < wide; i++) tiled[i] = once[i % inner];
      const T* rep = tiled.data();
      const T* full = bRepeats ? a : b;
      auto span = [&](i64 off, i64 n) {
        const T* pf = full + off;
        O* po = out + off;
        if (bRepeats) {
#pragma omp simd
          for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(pf[i], rep[i]);
        } else {
#pragma omp simd
          for (i64 i = 0; i < n; i++) po[i] = Apply<OP, T, O>(rep[i], pf[i]);
        }
      };
      const i64 groups = rows / k;
      ParallelFor(groups, std::max<i64>(1, grain / wide), [&](i64 gs, i64 ge) {
        for (i64 g = gs; g < ge; g++) span(g * wide, wide);
      });
      span(groups * wide, (rows - groups * k) * inner);
      return;
    }
  }
  const int outer = l.rank - 1;
  ParallelFor(rows, rowGrain, [&](i64 rs, i64 re) {
    // The row's index over the outer axes, found by division once and then counted on like an
    // odometer: a division per row cost more than the row itself when rows are short (a
    // per-channel mean of NHWC images is rows of 3).
    i64 idx[kMaxRank];
    i64 rem = rs, oa = 0, ob = 0;
    for (int d = outer - 1; d >= 0; d--) {
      idx[d] = rem % l.shape[d];
      rem /= l.shape[d];
      oa += idx[d] * l.as[d];
      ob += idx[d] * l.bs[d];
    }
    for (i64 r = rs; r < re; r++) {
      row(a + oa, b + ob, out + r * inner, inner);
      for (int d = outer - 1; d >= 0; d--) {
        oa += l.as[d];
        ob += l.bs[d];
        if (++idx[d] < l.shape[d]) break;
        oa -= l.shape[d] * l.as[d];
        ob -= l.shape[d] * l.bs[d];
        idx[d] = 0;
      }
    }
  });
}

using BinFloatFn = void (*)(const float*, const float*, float*, const BLayout&);
using BinIntFn = void (*)(const int32_t*, const int32_t*, int32_t*, const BLayout&);
using CmpFloatFn = void (*)(const float*, const float*, uint8_t*, const BLayout&);
using CmpIntFn = void (*)(const int32_t*, const int32_t*, uint8_t*, const BLayout&);

BinFloatFn FloatBinary(int op) {
  switch (op) {
    case kAdd: return &BinaryRun<kAdd, float, float>;
    case kSub: return &BinaryRun<kSub, float, float>;
    case kMul: return &BinaryRun<kMul, float, float>;
    case kDiv: return &BinaryRun<kDiv, float, float>;
    case kMax: return &BinaryRun<kMax, float, float>;
    case kMin: return &BinaryRun<kMin, float, float>;
    case kPow: return &BinaryRun<kPow, float, float>;
    case kSqDiff: return &BinaryRun<kSqDiff, float, float>;
    default: return nullptr;
  }
}

BinIntFn IntBinary(int op) {
  switch (op) {
    case kAdd: return &BinaryRun<kAdd, int32_t, int32_t>;
    case kSub: return &BinaryRun<kSub, int32_t, int32_t>;
    case kMul: return &BinaryRun<kMul, int32_t, int32_t>;
    case kMax: return &BinaryRun<kMax, int32_t, int32_t>;
    case kMin: return &BinaryRun<kMin, int32_t, int32_t>;
    case kSqDiff: return &BinaryRun<kSqDiff, int32_t, int32_t>;
    default: return nullptr;
  }
}

template <typename T>
auto CompareFn(int op) -> void (*)(const T*, const T*, uint8_t*, const BLayout&) {
  switch (op) {
    case kGreater: return &BinaryRun<kGreater, T, uint8_t>;
    case kGreaterEqual: return &BinaryRun<kGreaterEqual, T, uint8_t>;
    case kLess: return &BinaryRun<kLess, T, uint8_t>;
    case kLessEqual: return &BinaryRun<kLessEqual, T, uint8_t>;
    case kEqual: return &BinaryRun<kEqual, T, uint8_t>;
    case kNotEqual: return &BinaryRun<kNotEqual, T, uint8_t>;
    default: return nullptr;
  }
}

// binary(op, a, b, out, outShape, aStrides, bStrides) -> boolean (false: op/type not handled)
// Strides are per output axis, 0 where that operand is broadcast.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int op = static_cast<int>(GetInt(info[0]));
  Arr a = GetArr(env, info[1], "a");
  Arr b = GetArr(env, info[2], "b");
  Arr out = GetArr(env, info[3], "out");
  std::vector<i64> shape = GetInts(env, info[4], "outShape");
  std::vector<i64> as = GetInts(env, info[5], "aStrides");
  std::vector<i64> bs = GetInts(env, info[6], "bStrides");
  if (as.size() != shape.size() || bs.size() != shape.size()) throw Napi::RangeError::New(env, "binary: rank mismatch");
  i64 n = Product(shape);
  if (static_cast<i64>(out.length) < n) throw Napi::RangeError::New(env, "binary: output too small");
  if (n == 0) return Napi::Boolean::New(env, true);
  BLayout l = Simplify(shape, as, bs);
  if (a.type != b.type) return Napi::Boolean::New(env, false);
  if (op >= kGreater) {
    if (!IsU8(out)) return Napi::Boolean::New(env, false);
    if (IsF32(a)) {
      auto fn = CompareFn<float>(op);
      if (!fn) return Napi::Boolean::New(env, false);
      fn(static_cast<const float*>(a.data), static_cast<const float*>(b.data), static_cast<uint8_t*>(out.data), l);
      return Napi::Boolean::New(env, true);
    }
    if (IsI32(a)) {
      auto fn = CompareFn<int32_t>(op);
      if (!fn) return Napi::Boolean::New(env, false);
      fn(static_cast<const int32_t*>(a.data), static_cast<const int32_t*>(b.data), static_cast<uint8_t*>(out.data), l);
      return Napi::Boolean::New(env, true);
    }
    return Napi::Boolean::New(env, false);
  }
  if (IsF32(a) && IsF32(out)) {
    BinFloatFn fn = FloatBinary(op);
    if (!fn) return Napi::Boolean::New(env, false);
    fn(static_cast<const float*>(a.data), static_cast<const float*>(b.data), static_cast<float*>(out.data), l);
    return Napi::Boolean::New(env, true);
  }
  if (IsI32(a) && IsI32(out)) {
    BinIntFn fn = IntBinary(op);
    if (!fn) return Napi::Boolean::New(env, false);
    fn(static_cast<const int32_t*>(a.data), static_cast<const int32_t*>(b.data), static_cast<int32_t*>(out.data), l);
    return Napi::Boolean::New(env, true);
  }
  return Napi::Boolean::New(env, false);
}

// softmax(x, out, rows, cols): numerically stable softmax over the last axis.
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr xa = GetArrOf(env, info[0], napi_float32_array, "x");
  Arr ya = GetArrOf(env, info[1], napi_float32_array, "out");
  i64 rows = GetInt(info[2]);
  i64 cols = GetInt(info[3]);
  if (rows * cols > static_cast<i64>(xa.length) || rows * cols > static_cast<i64>(ya.length))
    throw Napi::RangeError::New(env, "softmax: size mismatch");
  const float* x = static_cast<const float*>(xa.data);
  float* y = static_cast<float*>(ya.data);
  i64 grain = std::max<i64>(1, kCostlyGrain / std::max<i64>(cols, 1));
  ParallelFor(rows, grain, [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      // Same NaN rule as the cpu Max kernel: any NaN makes the row NaN.
      float m = xr[0];
      int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
      for (i64 i = 0; i < cols; i++) {
        m = xr[i] > m ? xr[i] : m;
        nan |= xr[i] != xr[i] ? 1 : 0;
      }
      if (nan) m = NAN;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (i64 i = 0; i < cols; i++) {
        float e = ExpF(xr[i] - m);
        yr[i] = e;
        s += e;
      }
      float fs = static_cast<float>(s);
#pragma omp simd
      for (i64 i = 0; i < cols; i++) yr[i] = yr[i] / fs;
    }
  });
  return env.Undefined();
}

// select(cond: Uint8Array, t, e, out, inner): out[i] = cond[i / inner] == 1 ? t[i] : e[i]
Napi::Value Select(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr c = GetArrOf(env, info[0], napi_uint8_array, "condition");
  Arr t = GetArr(env, info[1], "t");
  Arr e = GetArr(env, info[2], "e");
  Arr o = GetArr(env, info[3], "out");
  i64 inner = GetInt(info[4]);
  if (t.type != e.type || t.type != o.type) return Napi::Boolean::New(env, false);
  i64 n = static_cast<i64>(o.length);
  if (static_cast<i64>(t.length) < n || static_cast<i64>(e.length) < n || inner <= 0 ||
      static_cast<i64>(c.length) * inner < n)
    throw Napi::RangeError::New(env, "select: size mismatch");
  const uint8_t* cp = static_cast<const uint8_t*>(c.data);
  size_t es = ElemSize(t);
  auto run = [&](auto* tp, auto* ep, auto* op) {
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 en) {
      if (inner == 1) {
#pragma omp simd
        for (i64 i = b; i < en; i++) op[i] = cp[i] == 1 ? tp[i] : ep[i];
      } else {
        for (i64 i = b; i < en; i++) op[i] = cp[i / inner] == 1 ? tp[i] : ep[i];
      }
    });
  };
  if (es == 4) {
    run(static_cast<const uint32_t*>(t.data), static_cast<const uint32_t*>(e.data), static_cast<uint32_t*>(o.data));
  } else if (es == 1) {
    run(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(e.data), static_cast<uint8_t*>(o.data));
  } else {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

// cast(x, out): float32 -> int32 (JS ToInt32), float32/int32 -> bool (x != 0), bool -> int32/float32.
Napi::Value Cast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr o = GetArr(env, info[1], "out");
  i64 n = static_cast<i64>(x.length);
  if (static_cast<i64>(o.length) < n) throw Napi::RangeError::New(env, "cast: output too small");
  if (IsF32(x) && IsI32(o)) {
    const float* xp = static_cast<const float*>(x.data);
    int32_t* op = static_cast<int32_t*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; i++) {
        float v = xp[i];
        op[i] = (v > -2147483648.0f && v < 2147483648.0f) ? static_cast<int32_t>(v) : JsToInt32(v);
      }
    });
  } else if (IsF32(x) && IsU8(o)) {
    const float* xp = static_cast<const float*>(x.data);
    uint8_t* op = static_cast<uint8_t*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
#pragma omp simd
      for (i64 i = b; i < e; i++) op[i] = xp[i] != 0.0f;
    });
  } else if (IsI32(x) && IsU8(o)) {
    const int32_t* xp = static_cast<const int32_t*>(x.data);
    uint8_t* op = static_cast<uint8_t*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
#pragma omp simd
      for (i64 i = b; i < e; i++) op[i] = xp[i] != 0;
    });
  } else if (IsI32(x) && IsF32(o)) {
    const int32_t* xp = static_cast<const int32_t*>(x.data);
    float* op = static_cast<float*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
#pragma omp simd
      for (i64 i = b; i < e; i++) op[i] = static_cast<float>(xp[i]);
    });
  } else if (IsU8(x) && IsF32(o)) {
    const uint8_t* xp = static_cast<const uint8_t*>(x.data);
    float* op = static_cast<float*>(o.data);
    for (i64 i = 0; i < n; i++) op[i] = xp[i];
  } else if (IsU8(x) && IsI32(o)) {
    const uint8_t* xp = static_cast<const uint8_t*>(x.data);
    int32_t* op = static_cast<int32_t*>(o.data);
    for (i64 i = 0; i < n; i++) op[i] = xp[i];
  } else {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

// addN(inputs: Float32Array[], out)
Napi::Value AddN(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = info[0].As<Napi::Array>();
  Arr o = GetArr(env, info[1], "out");
  uint32_t k = list.Length();
  std::vector<const void*> ptrs(k);
  for (uint32_t j = 0; j < k; j++) {
    Arr a = GetArr(env, list.Get(j), "input");
    if (a.type != o.type || a.length < o.length) return Napi::Boolean::New(env, false);
    ptrs[j] = a.data;
  }
  i64 n = static_cast<i64>(o.length);
  if (IsF32(o)) {
    float* out = static_cast<float*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
      const float* p0 = static_cast<const float*>(ptrs[0]);
#pragma omp simd
      for (i64 i = b; i < e; i++) out[i] = p0[i];
      for (uint32_t j = 1; j < k; j++) {
        const float* p = static_cast<const float*>(ptrs[j]);
#pragma omp simd
        for (i64 i = b; i < e; i++) out[i] += p[i];
      }
    });
  } else if (IsI32(o)) {
    uint32_t* out = static_cast<uint32_t*>(o.data);
    ParallelFor(n, kCheapGrain, [&](i64 b, i64 e) {
      const uint32_t* p0 = static_cast<const uint32_t*>(ptrs[0]);
      for (i64 i = b; i < e; i++) out[i] = p0[i];
      for (uint32_t j = 1; j < k; j++) {
        const uint32_t* p = static_cast<const uint32_t*>(ptrs[j]);
#pragma omp simd
        for (i64 i = b; i < e; i++) out[i] += p[i];
      }
    });
  } else {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

// oneHot(indices: Int32Array, out: Float32Array|Int32Array, depth, on, off)
Napi::Value OneHot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr idx = GetArrOf(env, info[0], napi_int32_array, "indices");
  Arr o = GetArr(env, info[1], "out");
  i64 depth = GetInt(info[2]);
  double on = info[3].As<Napi::Number>().DoubleValue();
  double off = info[4].As<Napi::Number>().DoubleValue();
  i64 n = static_cast<i64>(idx.length);
  if (static_cast<i64>(o.length) < n * depth) throw Napi::RangeError::New(env, "oneHot: output too small");
  const int32_t* ip = static_cast<const int32_t*>(idx.data);
  auto run = [&](auto* out, auto onV, auto offV) {
    std::fill(out, out + n * depth, offV);
    for (i64 i = 0; i < n; i++) {
      int32_t v = ip[i];
      if (v >= 0 && v < depth) out[i * depth + v] = onV;
    }
  };
  if (IsF32(o)) {
    run(static_cast<float*>(o.data), static_cast<float>(on), static_cast<float>(off));
  } else if (IsI32(o)) {
    run(static_cast<int32_t*>(o.data), JsToInt32(on), JsToInt32(off));
  } else {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

// Used by the fused matmul epilogue.
void ApplyUnaryInPlace(int op, float* x, i64 n, float alpha) {
  if (op >= 0 && op < kUnaryCount) AllUnary::inplace[op](x, n, alpha, 0.0, 0.0);
}

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("select", Napi::Function::New(env, Select, "select"));
  exports.Set("cast", Napi::Function::New(env, Cast, "cast"));
  exports.Set("addN", Napi::Function::New(env, AddN, "addN"));
  exports.Set("oneHot", Napi::Function::New(env, OneHot, "oneHot"));
}

}  // namespace ssfer
