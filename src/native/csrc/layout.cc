// Data movement kernels: Transpose, Slice, Pad, Concat, Tile, Gather, UnsortedSegmentSum.
// They only move bytes, so they work on element sizes rather than dtypes.
#include "common.h"

namespace ssfer {

namespace {

template <size_t N>
struct Bytes {
  uint8_t b[N];
};

template <size_t N>
using Elem = std::conditional_t<N == 1, uint8_t,
             std::conditional_t<N == 2, uint16_t, std::conditional_t<N == 4, uint32_t, Bytes<N>>>>;

constexpr i64 kTile = 32;

// Out axis j reads input stride ps[j]; the input's contiguous axis sits at out axis q and the
// output's contiguous axis reads with stride ps[r-1] > 1. Copies in square tiles so both sides
// stay in cache.
template <typename T>
void TransposeTiled(const T* __restrict src, T* __restrict dst, const std::vector<i64>& os,
                    const std::vector<i64>& ps, int q) {
  const int r = static_cast<int>(os.size());
  std::vector<i64> ost = Strides(os);
  const i64 A = os[q], B = os[r - 1];
  const i64 aStrideOut = ost[q];
  const i64 bStrideIn = ps[r - 1];
  std::vector<int> batchAxes;
  for (int j = 0; j < r - 1; j++)
    if (j != q) batchAxes.push_back(j);
  i64 nBatch = 1;
  for (int j : batchAxes) nBatch *= os[j];
  const i64 aTiles = (A + kTile - 1) / kTile;
  const i64 items = nBatch * aTiles;
  ParallelFor(items, std::max<i64>(1, 16384 / (kTile * std::max<i64>(B, 1))), [&](i64 ib, i64 ie) {
    for (i64 it = ib; it < ie; it++) {
      i64 bidx = it / aTiles;
      const i64 a0 = (it % aTiles) * kTile;
      const i64 a1 = std::min(A, a0 + kTile);
      i64 inBase = 0, outBase = 0;
      for (size_t t = batchAxes.size(); t-- > 0;) {
        int j = batchAxes[t];
        i64 c = bidx % os[j];
        bidx /= os[j];
        inBase += c * ps[j];
        outBase += c * ost[j];
      }
      for (i64 b0 = 0; b0 < B; b0 += kTile) {
        const i64 b1 = std::min(B, b0 + kTile);
        for (i64 a = a0; a < a1; a++) {
          const T* s = src + inBase + a;
          T* d = dst + outBase + a * aStrideOut;
          for (i64 b = b0; b < b1; b++) d[b] = s[b * bStrideIn];
        }
      }
    }
  });
}

template <size_t ES>
void TransposeTyped(const void* srcv, void* dstv, const std::vector<i64>& os, const std::vector<i64>& ps,
                    int q) {
  using T = Elem<ES>;
  TransposeTiled<T>(static_cast<const T*>(srcv), static_cast<T*>(dstv), os, ps, q);
}

// Copies a block of `shape` from src (strides ss, offset so) to dst (strides ds, offset dOff),
// both contiguous along the last axis; offsets and strides are in elements.
void CopyBlock(const uint8_t* src, i64 so, std::vector<i64> ss, uint8_t* dst, i64 dOff, std::vector<i64> ds,
               std::vector<i64> shape, size_t es) {
  // Merge axes that are contiguous in both source and destination.
  std::vector<i64> sh, s1, d1;
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    if (!sh.empty() && s1.back() == ss[i] * shape[i] && d1.back() == ds[i] * shape[i]) {
      sh.back() *= shape[i];
      s1.back() = ss[i];
      d1.back() = ds[i];
      continue;
    }
    sh.push_back(shape[i]);
    s1.push_back(ss[i]);
    d1.push_back(ds[i]);
  }
  i64 total = Product(sh);
  if (total == 0) return;
  if (sh.empty()) {
    std::memcpy(dst + dOff * es, src + so * es, es);
    return;
  }
  const int r = static_cast<int>(sh.size());
  const i64 inner = sh[r - 1];
  // The last axis may be strided when the block is a single column of a wider array.
  const bool contiguous = s1[r - 1] == 1 && d1[r - 1] == 1;
  const i64 rows = total / inner;
  ParallelFor(rows, std::max<i64>(1, 65536 / std::max<i64>(inner * static_cast<i64>(es), 1)), [&](i64 rb, i64 re) {
    // The row's index over the outer axes: divided out once, then counted on (see BinaryRun).
    i64 idx[kMaxRank];
    i64 rem = rb, sOff = so, dOffRow = dOff;
    for (int d = r - 2; d >= 0; d--) {
      idx[d] = rem % sh[d];
      rem /= sh[d];
      sOff += idx[d] * s1[d];
      dOffRow += idx[d] * d1[d];
    }
    for (i64 row = rb; row < re; row++) {
      if (row > rb) {
        for (int d = r - 2; d >= 0; d--) {
          sOff += s1[d];
          dOffRow += d1[d];
          if (++idx[d] < sh[d]) break;
          sOff -= sh[d] * s1[d];
          dOffRow -= sh[d] * d1[d];
          idx[d] = 0;
        }
      }
      if (contiguous) {
        std::memcpy(dst + dOffRow * es, src + sOff * es, static_cast<size_t>(inner) * es);
      } else {
        for (i64 i = 0; i < inner; i++)
          std::memcpy(dst + (dOffRow + i * d1[r - 1]) * es, src + (sOff + i * s1[r - 1]) * es, es);
      }
    }
  });
}

Napi::Value Transpose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr o = GetArr(env, info[1], "out");
  std::vector<i64> shape = GetInts(env, info[2], "shape");
  std::vector<i64> perm = GetInts(env, info[3], "perm");
  if (perm.size() != shape.size()) throw Napi::RangeError::New(env, "transpose: perm rank mismatch");
  std::vector<char> seen(shape.size(), 0);
  for (i64 p : perm) {
    if (p < 0 || p >= static_cast<i64>(shape.size()) || seen[p]) throw Napi::RangeError::New(env, "transpose: bad perm");
    seen[p] = 1;
  }
  i64 n = Product(shape);
  if (static_cast<i64>(x.length) < n || static_cast<i64>(o.length) < n || x.type != o.type)
    throw Napi::RangeError::New(env, "transpose: size mismatch");
  TransposeRaw(x.data, o.data, ElemSize(x), shape, perm);
  return env.Undefined();
}

// slice(x, out, shape, begin, size)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr o = GetArr(env, info[1], "out");
  std::vector<i64> shape = GetInts(env, info[2], "shape");
  std::vector<i64> begin = GetInts(env, info[3], "begin");
  std::vector<i64> size = GetInts(env, info[4], "size");
  if (begin.size() != shape.size() || size.size() != shape.size() || x.type != o.type)
    throw Napi::RangeError::New(env, "slice: rank mismatch");
  for (size_t i = 0; i < shape.size(); i++)
    if (begin[i] < 0 || size[i] < 0 || begin[i] + size[i] > shape[i]) throw Napi::RangeError::New(env, "slice: out of range");
  if (static_cast<i64>(x.length) < Product(shape) || static_cast<i64>(o.length) < Product(size))
    throw Napi::RangeError::New(env, "slice: size mismatch");
  std::vector<i64> ss = Strides(shape), ds = Strides(size);
  i64 so = 0;
  for (size_t i = 0; i < shape.size(); i++) so += begin[i] * ss[i];
  CopyBlock(static_cast<const uint8_t*>(x.data), so, ss, static_cast<uint8_t*>(o.data), 0, ds, size, ElemSize(x));
  return env.Undefined();
}

// pad(x, out, shape, before, value): out already has the padded shape.
Napi::Value Pad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr o = GetArr(env, info[1], "out");
  std::vector<i64> shape = GetInts(env, info[2], "shape");
  std::vector<i64> before = GetInts(env, info[3], "before");
  std::vector<i64> outShape = GetInts(env, info[4], "outShape");
  double value = info[5].As<Napi::Number>().DoubleValue();
  if (before.size() != shape.size() || outShape.size() != shape.size() || x.type != o.type)
    throw Napi::RangeError::New(env, "pad: rank mismatch");
  for (size_t i = 0; i < shape.size(); i++)
    if (before[i] < 0 || before[i] + shape[i] > outShape[i]) throw Napi::RangeError::New(env, "pad: bad paddings");
  i64 on = Product(outShape);
  if (static_cast<i64>(x.length) < Product(shape) || static_cast<i64>(o.length) < on)
    throw Napi::RangeError::New(env, "pad: size mismatch");
  if (value != 0.0) {
    if (IsF32(o)) {
      std::fill_n(static_cast<float*>(o.data), on, static_cast<float>(value));
    } else if (IsI32(o)) {
      std::fill_n(static_cast<int32_t*>(o.data), on, JsToInt32(value));
    } else if (IsU8(o)) {
      std::fill_n(static_cast<uint8_t*>(o.data), on, static_cast<uint8_t>(JsToInt32(value)));
    } else {
      return Napi::Boolean::New(env, false);
    }
  }
  std::vector<i64> ss = Strides(shape), ds = Strides(outShape);
  i64 dOff = 0;
  for (size_t i = 0; i < shape.size(); i++) dOff += before[i] * ds[i];
  CopyBlock(static_cast<const uint8_t*>(x.data), 0, ss, static_cast<uint8_t*>(o.data), dOff, ds, shape, ElemSize(x));
  return Napi::Boolean::New(env, true);
}

// concat(inputs[], out, outer, inners[]): each input is [outer, inner_j]; out is [outer, sum inner_j].
Napi::Value Concat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = info[0].As<Napi::Array>();
  Arr o = GetArr(env, info[1], "out");
  i64 outer = GetInt(info[2]);
  Napi::Array innersArr = info[3].As<Napi::Array>();
  uint32_t k = list.Length();
  if (innersArr.Length() != k) throw Napi::RangeError::New(env, "concat: length mismatch");
  std::vector<const uint8_t*> ptrs(k);
  std::vector<i64> inners(k), offs(k);
  i64 width = 0;
  size_t es = ElemSize(o);
  for (uint32_t j = 0; j < k; j++) {
    Arr a = GetArr(env, list.Get(j), "input");
    if (a.type != o.type) throw Napi::TypeError::New(env, "concat: dtype mismatch");
    inners[j] = GetInt(innersArr.Get(j));
    if (static_cast<i64>(a.length) < outer * inners[j]) throw Napi::RangeError::New(env, "concat: input too small");
    ptrs[j] = static_cast<const uint8_t*>(a.data);
    offs[j] = width;
    width += inners[j];
  }
  if (static_cast<i64>(o.length) < outer * width) throw Napi::RangeError::New(env, "concat: output too small");
  uint8_t* dst = static_cast<uint8_t*>(o.data);
  ParallelFor(outer, std::max<i64>(1, 65536 / std::max<i64>(width * static_cast<i64>(es), 1)), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      for (uint32_t j = 0; j < k; j++) {
        std::memcpy(dst + (r * width + offs[j]) * es, ptrs[j] + r * inners[j] * es, static_cast<size_t>(inners[j]) * es);
      }
    }
  });
  return env.Undefined();
}

// tile(x, out, shape, reps)
Napi::Value Tile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr o = GetArr(env, info[1], "out");
  std::vector<i64> shape = GetInts(env, info[2], "shape");
  std::vector<i64> reps = GetInts(env, info[3], "reps");
  if (reps.size() != shape.size() || x.type != o.type) throw Napi::RangeError::New(env, "tile: rank mismatch");
  std::vector<i64> os(shape.size());
  for (size_t i = 0; i < shape.size(); i++) os[i] = shape[i] * reps[i];
  i64 on = Product(os);
  if (static_cast<i64>(x.length) < Product(shape) || static_cast<i64>(o.length) < on)
    throw Napi::RangeError::New(env, "tile: size mismatch");
  if (on == 0) return env.Undefined();
  size_t es = ElemSize(x);
  const uint8_t* src = static_cast<const uint8_t*>(x.data);
  uint8_t* dst = static_cast<uint8_t*>(o.data);
  if (shape.empty()) {
    std::memcpy(dst, src, es);
    return env.Undefined();
  }
  const int r = static_cast<int>(shape.size());
  std::vector<i64> xs = Strides(shape);
  const i64 L = shape[r - 1], W = os[r - 1];
  const i64 rows = on / W;
  ParallelFor(rows, std::max<i64>(1, 65536 / std::max<i64>(W * static_cast<i64>(es), 1)), [&](i64 b, i64 e) {
    for (i64 row = b; row < e; row++) {
      i64 rem = row, sOff = 0;
      for (int d = r - 2; d >= 0; d--) {
        i64 c = rem % os[d];
        rem /= os[d];
        sOff += (c % shape[d]) * xs[d];
      }
      uint8_t* drow = dst + row * W * es;
      const uint8_t* srow = src + sOff * es;
      if (L == 1 && es == 4) {
        // Broadcasting a column (e.g. a per-row gradient over a feature axis): a fill.
        uint32_t v;
        std::memcpy(&v, srow, 4);
        std::fill_n(reinterpret_cast<uint32_t*>(drow), W, v);
      } else if (L == 1 && es == 1) {
        std::memset(drow, *srow, static_cast<size_t>(W));
      } else {
        for (i64 t = 0; t < reps[r - 1]; t++) std::memcpy(drow + t * L * es, srow, static_cast<size_t>(L) * es);
      }
    }
  });
  return env.Undefined();
}

// gather(x, indices: Int32Array, out, batch, outer, dimSize, slice) -> -1, or the position of
// the first index outside [0, dimSize) (nothing written then).
Napi::Value Gather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr ix = GetArrOf(env, info[1], napi_int32_array, "indices");
  Arr o = GetArr(env, info[2], "out");
  i64 batch = GetInt(info[3]), outer = GetInt(info[4]), dim = GetInt(info[5]), slice = GetInt(info[6]);
  if (x.type != o.type) throw Napi::TypeError::New(env, "gather: dtype mismatch");
  const int32_t* idx = static_cast<const int32_t*>(ix.data);
  i64 nIdx = static_cast<i64>(ix.length);
  for (i64 i = 0; i < nIdx; i++)
    if (idx[i] < 0 || idx[i] >= dim) return Napi::Number::New(env, static_cast<double>(i));
  i64 per = batch > 0 ? nIdx / batch : 0;
  size_t es = ElemSize(x);
  if (static_cast<i64>(x.length) < batch * outer * dim * slice || static_cast<i64>(o.length) < batch * outer * per * slice)
    throw Napi::RangeError::New(env, "gather: size mismatch");
  const uint8_t* src = static_cast<const uint8_t*>(x.data);
  uint8_t* dst = static_cast<uint8_t*>(o.data);
  const i64 rows = batch * outer * per;
  ParallelFor(rows, std::max<i64>(1, 65536 / std::max<i64>(slice * static_cast<i64>(es), 1)), [&](i64 b, i64 e) {
    for (i64 row = b; row < e; row++) {
      i64 n = row % per;
      i64 bo = row / per;  // b * outer + o
      i64 bi = bo / outer;
      i64 srcRow = bo * dim + idx[bi * per + n];
      std::memcpy(dst + row * slice * es, src + srcRow * slice * es, static_cast<size_t>(slice) * es);
    }
  });
  return Napi::Number::New(env, -1);
}

// segmentSum(x, ids: Int32Array, out, slice, numSegments): out[ids[i]] += x[i]; out is zeroed.
Napi::Value SegmentSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr x = GetArr(env, info[0], "x");
  Arr ids = GetArrOf(env, info[1], napi_int32_array, "segmentIds");
  Arr o = GetArr(env, info[2], "out");
  i64 slice = GetInt(info[3]);
  i64 numSeg = GetInt(info[4]);
  i64 n = static_cast<i64>(ids.length);
  if (x.type != o.type) return Napi::Boolean::New(env, false);
  if (static_cast<i64>(x.length) < n * slice || static_cast<i64>(o.length) < numSeg * slice)
    throw Napi::RangeError::New(env, "segmentSum: size mismatch");
  const int32_t* id = static_cast<const int32_t*>(ids.data);
  auto run = [&](const auto* xp, auto* op) {
    // Columns are independent, so threads split the slice and never write the same element.
    ParallelFor(slice, 1024, [&](i64 cb, i64 ce) {
      for (i64 i = 0; i < n; i++) {
        int32_t s = id[i];
        if (s < 0 || s >= numSeg) continue;
        auto* d = op + s * slice;
        const auto* v = xp + i * slice;
#pragma omp simd
        for (i64 c = cb; c < ce; c++) d[c] += v[c];
      }
    });
  };
  if (IsF32(x)) {
    run(static_cast<const float*>(x.data), static_cast<float*>(o.data));
  } else if (IsI32(x)) {
    run(static_cast<const uint32_t*>(x.data), static_cast<uint32_t*>(o.data));
  } else {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void TransposeRaw(const void* src, void* dst, size_t es, const std::vector<i64>& shape, const std::vector<i64>& perm) {
  const int rank = static_cast<int>(shape.size());
  i64 total = Product(shape);
  if (total == 0) return;
  // Drop size-1 axes, renumbering the permutation.
  std::vector<i64> newIndex(rank, -1);
  std::vector<i64> dims;
  for (int i = 0; i < rank; i++) {
    if (shape[i] != 1) {
      newIndex[i] = static_cast<i64>(dims.size());
      dims.push_back(shape[i]);
    }
  }
  std::vector<i64> p;
  for (int j = 0; j < rank; j++)
    if (newIndex[perm[j]] >= 0) p.push_back(newIndex[perm[j]]);
  // Group runs of consecutive input axes in output order.
  std::vector<std::pair<i64, i64>> runs;  // (first input axis, last input axis) in output order
  for (size_t j = 0; j < p.size(); j++) {
    if (j > 0 && p[j] == runs.back().second + 1) {
      runs.back().second = p[j];
    } else {
      runs.push_back({p[j], p[j]});
    }
  }
  // Input order of the runs gives the merged input shape.
  std::vector<size_t> order(runs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return runs[a].first < runs[b].first; });
  std::vector<i64> runInputPos(runs.size());
  std::vector<i64> inDims(runs.size());
  for (size_t k = 0; k < order.size(); k++) {
    size_t rj = order[k];
    runInputPos[rj] = static_cast<i64>(k);
    i64 sz = 1;
    for (i64 a = runs[rj].first; a <= runs[rj].second; a++) sz *= dims[a];
    inDims[k] = sz;
  }
  const int r = static_cast<int>(runs.size());
  bool identity = true;
  for (int j = 0; j < r; j++)
    if (runInputPos[j] != j) identity = false;
  if (r <= 1 || identity) {
    // The bytes are already in output order.
    i64 bytes = total * static_cast<i64>(es);
    ParallelFor(bytes, 1 << 20, [&](i64 b, i64 e) {
      std::memcpy(static_cast<uint8_t*>(dst) + b, static_cast<const uint8_t*>(src) + b, static_cast<size_t>(e - b));
    });
    return;
  }
  std::vector<i64> inStrides = Strides(inDims);
  std::vector<i64> os(r), ps(r);
  for (int j = 0; j < r; j++) {
    os[j] = inDims[runInputPos[j]];
    ps[j] = inStrides[runInputPos[j]];
  }
  if (runInputPos[r - 1] == r - 1) {
    // The innermost input axis stays innermost: copy whole rows.
    CopyBlock(static_cast<const uint8_t*>(src), 0, ps, static_cast<uint8_t*>(dst), 0, Strides(os), os, es);
    return;
  }
  int q = 0;
  for (int j = 0; j < r; j++)
    if (runInputPos[j] == r - 1) q = j;
  switch (es) {
    case 1: TransposeTyped<1>(src, dst, os, ps, q); break;
    case 2: TransposeTyped<2>(src, dst, os, ps, q); break;
    case 4: TransposeTyped<4>(src, dst, os, ps, q); break;
    default: TransposeTyped<8>(src, dst, os, ps, q); break;
  }
}

void InitLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("transpose", Napi::Function::New(env, Transpose, "transpose"));
  exports.Set("slice", Napi::Function::New(env, Slice, "slice"));
  exports.Set("pad", Napi::Function::New(env, Pad, "pad"));
  exports.Set("concat", Napi::Function::New(env, Concat, "concat"));
  exports.Set("tile", Napi::Function::New(env, Tile, "tile"));
  exports.Set("gather", Napi::Function::New(env, Gather, "gather"));
  exports.Set("segmentSum", Napi::Function::New(env, SegmentSum, "segmentSum"));
}

}  // namespace ssfer
