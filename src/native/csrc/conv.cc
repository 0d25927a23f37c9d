// Convolutions, pooling and batch normalisation for CNN backbones, NHWC as tfjs lays them out.
//   conv2d and its two gradients: im2col rows gathered a chunk at a time into a small buffer and
//   multiplied by the filter (as a [kh·kw·C, F] matrix) with OpenBLAS; a 1×1, stride-1,
//   unpadded convolution is one plain GEMM.
//   depthwise conv2d and its gradients, max and average pooling: direct loops.
#include <memory>

#include "common.h"

namespace ssfer {

namespace {

const float* F(const Arr& a) { return static_cast<const float*>(a.data); }
float* W(const Arr& a) { return static_cast<float*>(a.data); }

// The geometry of a 2-D convolution or pooling window (tfjs's Conv2DInfo, NHWC).
struct Geo {
  i64 N, H, W, C;      // input
  i64 KH, KW, F;       // filter (F: output channels; the channel multiplier for depthwise)
  i64 OH, OW;          // output
  i64 SH, SW, DH, DW;  // strides, dilations
  i64 PT, PL;          // padding before
  i64 K() const { return KH * KW * C; }
  i64 Rows() const { return N * OH * OW; }
  bool Pointwise() const { return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PT == 0 && PL == 0 && OH == H && OW == W; }
};

Geo GeoOf(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 15) throw Napi::TypeError::New(env, "conv: geometry must be an array of 15 numbers");
  Napi::Array a = v.As<Napi::Array>();
  i64 g[15];
  for (uint32_t i = 0; i < 15; i++) g[i] = GetInt(a.Get(i));
  Geo o{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14]};
  for (i64 d : {o.N, o.H, o.W, o.C, o.KH, o.KW, o.F, o.OH, o.OW, o.SH, o.SW, o.DH, o.DW}) {
    if (d <= 0) throw Napi::RangeError::New(env, "conv: sizes, strides and dilations must be positive");
  }
  return o;
}

const float* In(const Napi::Env& env, const Napi::Value& v, i64 n, const char* what) {
  Arr a = GetArrOf(env, v, napi_float32_array, what);
  if (static_cast<i64>(a.length) != n) throw Napi::RangeError::New(env, std::string("conv: wrong length of ") + what);
  return F(a);
}

float* Out(const Napi::Env& env, const Napi::Value& v, i64 n, const char* what) {
  Arr a = GetArrOf(env, v, napi_float32_array, what);
  if (static_cast<i64>(a.length) != n) throw Napi::RangeError::New(env, std::string("conv: wrong length of ") + what);
  return W(a);
}

// Rows of the im2col matrix per chunk: about 128 K floats, which stays in L2.
i64 ChunkRows(const Geo& g) { return std::max<i64>(4, std::min<i64>(g.OH * g.OW, 131072 / std::max<i64>(g.K(), 1))); }

// col[i, (kh·KW + kw)·C + c] = x[n, oh·SH + kh·DH − PT, ow·SW + kw·DW − PL, c] (0 outside), rows r0 ≤ r < r1.
void Im2Col(const Geo& g, const float* x, i64 r0, i64 r1, float* col) {
  const i64 K = g.K();
  for (i64 r = r0; r < r1; r++) {
    const i64 n = r / (g.OH * g.OW);
    const i64 oh = (r / g.OW) % g.OH;
    const i64 ow = r % g.OW;
    float* dst = col + (r - r0) * K;
    for (i64 kh = 0; kh < g.KH; kh++) {
      const i64 ih = oh * g.SH + kh * g.DH - g.PT;
      for (i64 kw = 0; kw < g.KW; kw++) {
        const i64 iw = ow * g.SW + kw * g.DW - g.PL;
        float* d = dst + (kh * g.KW + kw) * g.C;
        if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
          std::memset(d, 0, sizeof(float) * g.C);
        } else {
          std::memcpy(d, x + ((n * g.H + ih) * g.W + iw) * g.C, sizeof(float) * g.C);
        }
      }
    }
  }
}

// dx[n, ih, iw, c] += dcol[i, (kh·KW + kw)·C + c]: the adjoint of Im2Col, rows r0 ≤ r < r1 of one image.
void Col2Im(const Geo& g, const float* dcol, i64 r0, i64 r1, float* dx) {
  const i64 K = g.K();
  for (i64 r = r0; r < r1; r++) {
    const i64 n = r / (g.OH * g.OW);
    const i64 oh = (r / g.OW) % g.OH;
    const i64 ow = r % g.OW;
    const float* src = dcol + (r - r0) * K;
    for (i64 kh = 0; kh < g.KH; kh++) {
      const i64 ih = oh * g.SH + kh * g.DH - g.PT;
      if (ih < 0 || ih >= g.H) continue;
      for (i64 kw = 0; kw < g.KW; kw++) {
        const i64 iw = ow * g.SW + kw * g.DW - g.PL;
        if (iw < 0 || iw >= g.W) continue;
        const float* s = src + (kh * g.KW + kw) * g.C;
        float* d = dx + ((n * g.H + ih) * g.W + iw) * g.C;
#pragma omp simd
        for (i64 c = 0; c < g.C; c++) d[c] += s[c];
      }
    }
  }
}

// OpenBLAS on one thread inside the pool's tasks (each task runs its own small GEMMs).
template <typename Fn>
void WithSerialBlas(Fn&& fn) {
  const int saved = BlasThreads();
  if (saved != 1) SetBlasThreads(1);
  fn();
  if (saved != 1) SetBlasThreads(saved);
}

void ParkForBlas() {
  if (NumThreads() > 1) ParkWorkers();
}

// conv2d(x, filter, out, geometry)
Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const float* x = In(env, info[0], g.N * g.H * g.W * g.C, "x");
  const float* f = In(env, info[1], g.K() * g.F, "filter");
  float* out = Out(env, info[2], g.Rows() * g.F, "out");
  if (g.Pointwise()) {
    ParkForBlas();
    Sgemm(false, false, g.Rows(), g.F, g.C, 1.0f, x, g.C, f, g.F, 0.0f, out, g.F);
    return env.Undefined();
  }
  const i64 rows = g.Rows(), chunk = ChunkRows(g), K = g.K();
  const i64 chunks = (rows + chunk - 1) / chunk;
  WithSerialBlas([&] {
    ParallelFor(chunks, 1, [&](i64 cb, i64 ce) {
      std::unique_ptr<float[]> col(new float[static_cast<size_t>(chunk * K)]);
      for (i64 c = cb; c < ce; c++) {
        const i64 r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
        Im2Col(g, x, r0, r1, col.get());
        Sgemm(false, false, r1 - r0, g.F, K, 1.0f, col.get(), K, f, g.F, 0.0f, out + r0 * g.F, g.F);
      }
    });
  });
  return env.Undefined();
}

// conv2dBackpropInput(dy, filter, dx, geometry): dx = col2im(dy·filterᵀ)
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const float* dy = In(env, info[0], g.Rows() * g.F, "dy");
  const float* f = In(env, info[1], g.K() * g.F, "filter");
  float* dx = Out(env, info[2], g.N * g.H * g.W * g.C, "dx");
  if (g.Pointwise()) {
    ParkForBlas();
    Sgemm(false, true, g.Rows(), g.C, g.F, 1.0f, dy, g.F, f, g.F, 0.0f, dx, g.C);
    return env.Undefined();
  }
  const i64 per = g.OH * g.OW, chunk = ChunkRows(g), K = g.K();
  const i64 imageFloats = g.H * g.W * g.C;
  // One image per task: the scatter of one image's rows never touches another's pixels.
  WithSerialBlas([&] {
    ParallelFor(g.N, 1, [&](i64 nb, i64 ne) {
      std::unique_ptr<float[]> dcol(new float[static_cast<size_t>(chunk * K)]);
      for (i64 n = nb; n < ne; n++) {
        std::memset(dx + n * imageFloats, 0, sizeof(float) * imageFloats);
        for (i64 r0 = n * per; r0 < (n + 1) * per; r0 += chunk) {
          const i64 r1 = std::min((n + 1) * per, r0 + chunk);
          Sgemm(false, true, r1 - r0, K, g.F, 1.0f, dy + r0 * g.F, g.F, f, g.F, 0.0f, dcol.get(), K);
          Col2Im(g, dcol.get(), r0, r1, dx);
        }
      }
    });
  });
  return env.Undefined();
}

// conv2dBackpropFilter(x, dy, dfilter, geometry): dfilter = Σ_rows im2col(x)ᵀ·dy
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const float* x = In(env, info[0], g.N * g.H * g.W * g.C, "x");
  const float* dy = In(env, info[1], g.Rows() * g.F, "dy");
  const i64 K = g.K(), KF = K * g.F;
  float* df = Out(env, info[2], KF, "dfilter");
  if (g.Pointwise()) {
    ParkForBlas();
    Sgemm(true, false, g.C, g.F, g.Rows(), 1.0f, x, g.C, dy, g.F, 0.0f, df, g.F);
    return env.Undefined();
  }
  const i64 rows = g.Rows(), chunk = ChunkRows(g);
  const i64 chunks = (rows + chunk - 1) / chunk;
  // A fixed number of lanes, each summing its own chunks in order, then the lanes in order: the
  // same result however the pool schedules them.
  const i64 lanes = std::max<i64>(1, std::min<i64>(NumThreads(), chunks));
  std::vector<float> partial(static_cast<size_t>((lanes - 1) * KF));
  WithSerialBlas([&] {
    ParallelFor(lanes, 1, [&](i64 lb, i64 le) {
      std::unique_ptr<float[]> col(new float[static_cast<size_t>(chunk * K)]);
      for (i64 l = lb; l < le; l++) {
        float* acc = l == 0 ? df : partial.data() + (l - 1) * KF;
        bool first = true;
        for (i64 c = l; c < chunks; c += lanes) {
          const i64 r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
          Im2Col(g, x, r0, r1, col.get());
          Sgemm(true, false, K, g.F, r1 - r0, 1.0f, col.get(), K, dy + r0 * g.F, g.F, first ? 0.0f : 1.0f, acc, g.F);
          first = false;
        }
        if (first) std::memset(acc, 0, sizeof(float) * KF);
      }
    });
  });
  for (i64 l = 1; l < lanes; l++) {
    const float* p = partial.data() + (l - 1) * KF;
#pragma omp simd
    for (i64 i = 0; i < KF; i++) df[i] += p[i];
  }
  return env.Undefined();
}

// depthwiseConv2d(x, filter, out, geometry): out[.., c·M + q] = Σ x[.., c]·filter[kh, kw, c, q]; F = M.
Napi::Value Depthwise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const i64 M = g.F, CM = g.C * M;
  const float* x = In(env, info[0], g.N * g.H * g.W * g.C, "x");
  const float* f = In(env, info[1], g.KH * g.KW * CM, "filter");
  float* out = Out(env, info[2], g.Rows() * CM, "out");
  ParallelFor(g.N * g.OH, std::max<i64>(1, 4096 / std::max<i64>(g.OW * CM, 1)), [&](i64 b, i64 e) {
    for (i64 row = b; row < e; row++) {
      const i64 n = row / g.OH, oh = row % g.OH;
      for (i64 ow = 0; ow < g.OW; ow++) {
        float* o = out + ((n * g.OH + oh) * g.OW + ow) * CM;
        std::memset(o, 0, sizeof(float) * CM);
        for (i64 kh = 0; kh < g.KH; kh++) {
          const i64 ih = oh * g.SH + kh * g.DH - g.PT;
          if (ih < 0 || ih >= g.H) continue;
          for (i64 kw = 0; kw < g.KW; kw++) {
            const i64 iw = ow * g.SW + kw * g.DW - g.PL;
            if (iw < 0 || iw >= g.W) continue;
            const float* xp = x + ((n * g.H + ih) * g.W + iw) * g.C;
            const float* fp = f + (kh * g.KW + kw) * CM;
            if (M == 1) {
#pragma omp simd
              for (i64 c = 0; c < g.C; c++) o[c] += xp[c] * fp[c];
            } else {
              for (i64 c = 0; c < g.C; c++)
                for (i64 q = 0; q < M; q++) o[c * M + q] += xp[c] * fp[c * M + q];
            }
          }
        }
      }
    }
  });
  return env.Undefined();
}

// depthwiseConv2dBackpropInput(dy, filter, dx, geometry)
Napi::Value DepthwiseBackpropInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const i64 M = g.F, CM = g.C * M;
  const float* dy = In(env, info[0], g.Rows() * CM, "dy");
  const float* f = In(env, info[1], g.KH * g.KW * CM, "filter");
  float* dx = Out(env, info[2], g.N * g.H * g.W * g.C, "dx");
  const i64 imageFloats = g.H * g.W * g.C;
  ParallelFor(g.N, 1, [&](i64 nb, i64 ne) {
    for (i64 n = nb; n < ne; n++) {
      std::memset(dx + n * imageFloats, 0, sizeof(float) * imageFloats);
      for (i64 oh = 0; oh < g.OH; oh++) {
        for (i64 ow = 0; ow < g.OW; ow++) {
          const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * CM;
          for (i64 kh = 0; kh < g.KH; kh++) {
            const i64 ih = oh * g.SH + kh * g.DH - g.PT;
            if (ih < 0 || ih >= g.H) continue;
            for (i64 kw = 0; kw < g.KW; kw++) {
              const i64 iw = ow * g.SW + kw * g.DW - g.PL;
              if (iw < 0 || iw >= g.W) continue;
              float* xp = dx + ((n * g.H + ih) * g.W + iw) * g.C;
              const float* fp = f + (kh * g.KW + kw) * CM;
              if (M == 1) {
#pragma omp simd
                for (i64 c = 0; c < g.C; c++) xp[c] += d[c] * fp[c];
              } else {
                for (i64 c = 0; c < g.C; c++) {
                  float s = 0.0f;
                  for (i64 q = 0; q < M; q++) s += d[c * M + q] * fp[c * M + q];
                  xp[c] += s;
                }
              }
            }
          }
        }
      }
    }
  });
  return env.Undefined();
}

// depthwiseConv2dBackpropFilter(x, dy, dfilter, geometry): one task per filter tap, each summing
// over every output position in order.
Napi::Value DepthwiseBackpropFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const i64 M = g.F, CM = g.C * M;
  const float* x = In(env, info[0], g.N * g.H * g.W * g.C, "x");
  const float* dy = In(env, info[1], g.Rows() * CM, "dy");
  float* df = Out(env, info[2], g.KH * g.KW * CM, "dfilter");
  ParallelFor(g.KH * g.KW, 1, [&](i64 tb, i64 te) {
    std::vector<double> acc(static_cast<size_t>(CM));
    for (i64 t = tb; t < te; t++) {
      const i64 kh = t / g.KW, kw = t % g.KW;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (i64 n = 0; n < g.N; n++) {
        for (i64 oh = 0; oh < g.OH; oh++) {
          const i64 ih = oh * g.SH + kh * g.DH - g.PT;
          if (ih < 0 || ih >= g.H) continue;
          for (i64 ow = 0; ow < g.OW; ow++) {
            const i64 iw = ow * g.SW + kw * g.DW - g.PL;
            if (iw < 0 || iw >= g.W) continue;
            const float* xp = x + ((n * g.H + ih) * g.W + iw) * g.C;
            const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * CM;
            double* a = acc.data();
            if (M == 1) {
#pragma omp simd
              for (i64 c = 0; c < g.C; c++) a[c] += static_cast<double>(xp[c] * d[c]);
            } else {
              for (i64 c = 0; c < g.C; c++)
                for (i64 q = 0; q < M; q++) a[c * M + q] += static_cast<double>(xp[c] * d[c * M + q]);
            }
          }
        }
      }
      float* o = df + t * CM;
      for (i64 i = 0; i < CM; i++) o[i] = static_cast<float>(acc[i]);
    }
  });
  return env.Undefined();
}

// The window of output (oh, ow) clipped to the image: [h0, h1) × [w0, w1) (dilation 1).
struct Window {
  i64 h0, h1, w0, w1;
};

inline Window WindowOf(const Geo& g, i64 oh, i64 ow) {
  const i64 hc = oh * g.SH - g.PT, wc = ow * g.SW - g.PL;
  return {std::max<i64>(0, hc), std::min(g.H, hc + g.KH), std::max<i64>(0, wc), std::min(g.W, wc + g.KW)};
}

// maxPool(x, out, geometry) and avgPool: as the tfjs cpu kernel, the max is the first largest value
// in scan order (NaN is never larger), the average is over the window's pixels inside the image.
Napi::Value Pool(const Napi::CallbackInfo& info, bool max) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[2]);
  const float* x = In(env, info[0], g.N * g.H * g.W * g.C, "x");
  float* out = Out(env, info[1], g.Rows() * g.C, "out");
  ParallelFor(g.N * g.OH, std::max<i64>(1, 4096 / std::max<i64>(g.OW * g.C, 1)), [&](i64 b, i64 e) {
    std::vector<float> acc(static_cast<size_t>(g.C));
    for (i64 row = b; row < e; row++) {
      const i64 n = row / g.OH, oh = row % g.OH;
      for (i64 ow = 0; ow < g.OW; ow++) {
        const Window w = WindowOf(g, oh, ow);
        float* a = acc.data();
        std::fill(acc.begin(), acc.end(), max ? -INFINITY : 0.0f);
        for (i64 ih = w.h0; ih < w.h1; ih++) {
          for (i64 iw = w.w0; iw < w.w1; iw++) {
            const float* xp = x + ((n * g.H + ih) * g.W + iw) * g.C;
            if (max) {
#pragma omp simd
              for (i64 c = 0; c < g.C; c++) a[c] = xp[c] > a[c] ? xp[c] : a[c];
            } else {
#pragma omp simd
              for (i64 c = 0; c < g.C; c++) a[c] += xp[c];
            }
          }
        }
        float* o = out + ((n * g.OH + oh) * g.OW + ow) * g.C;
        const float count = static_cast<float>((w.h1 - w.h0) * (w.w1 - w.w0));
        for (i64 c = 0; c < g.C; c++) o[c] = max ? a[c] : a[c] / count;
      }
    }
  });
  return env.Undefined();
}

Napi::Value MaxPool(const Napi::CallbackInfo& info) { return Pool(info, true); }
Napi::Value AvgPool(const Napi::CallbackInfo& info) { return Pool(info, false); }

// maxPoolGrad(dy, x, dx, geometry): each output's gradient goes to the first largest pixel of its
// window (none when the window holds only NaN or −∞), as the tfjs cpu kernel routes it.
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[3]);
  const float* dy = In(env, info[0], g.Rows() * g.C, "dy");
  const float* x = In(env, info[1], g.N * g.H * g.W * g.C, "x");
  float* dx = Out(env, info[2], g.N * g.H * g.W * g.C, "dx");
  const i64 imageFloats = g.H * g.W * g.C;
  ParallelFor(g.N, 1, [&](i64 nb, i64 ne) {
    std::vector<float> best(static_cast<size_t>(g.C));
    std::vector<i64> at(static_cast<size_t>(g.C));
    for (i64 n = nb; n < ne; n++) {
      float* dxn = dx + n * imageFloats;
      std::memset(dxn, 0, sizeof(float) * imageFloats);
      for (i64 oh = 0; oh < g.OH; oh++) {
        for (i64 ow = 0; ow < g.OW; ow++) {
          const Window w = WindowOf(g, oh, ow);
          std::fill(best.begin(), best.end(), -INFINITY);
          std::fill(at.begin(), at.end(), -1);
          for (i64 ih = w.h0; ih < w.h1; ih++) {
            for (i64 iw = w.w0; iw < w.w1; iw++) {
              const i64 off = (ih * g.W + iw) * g.C;
              const float* xp = x + n * imageFloats + off;
              for (i64 c = 0; c < g.C; c++) {
                if (xp[c] > best[c]) {
                  best[c] = xp[c];
                  at[c] = off + c;
                }
              }
            }
          }
          const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * g.C;
          for (i64 c = 0; c < g.C; c++) {
            if (at[c] >= 0) dxn[at[c]] += d[c];
          }
        }
      }
    }
  });
  return env.Undefined();
}

// avgPoolGrad(dy, dx, geometry): the gradient of avgPool as computed above, dy/count to every
// pixel of the window inside the image.
Napi::Value AvgPoolGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Geo g = GeoOf(env, info[2]);
  const float* dy = In(env, info[0], g.Rows() * g.C, "dy");
  float* dx = Out(env, info[1], g.N * g.H * g.W * g.C, "dx");
  const i64 imageFloats = g.H * g.W * g.C;
  ParallelFor(g.N, 1, [&](i64 nb, i64 ne) {
    for (i64 n = nb; n < ne; n++) {
      float* dxn = dx + n * imageFloats;
      std::memset(dxn, 0, sizeof(float) * imageFloats);
      for (i64 oh = 0; oh < g.OH; oh++) {
        for (i64 ow = 0; ow < g.OW; ow++) {
          const Window w = WindowOf(g, oh, ow);
          const float inv = 1.0f / static_cast<float>((w.h1 - w.h0) * (w.w1 - w.w0));
          const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * g.C;
          for (i64 ih = w.h0; ih < w.h1; ih++) {
            for (i64 iw = w.w0; iw < w.w1; iw++) {
              float* p = dxn + (ih * g.W + iw) * g.C;
#pragma omp simd
              for (i64 c = 0; c < g.C; c++) p[c] += d[c] * inv;
            }
          }
        }
      }
    }
  });
  return env.Undefined();
}

// batchNorm(x, mean, variance, offset, scale, out, eps): out[i] = offset[i] + (x[i] − mean[i])·scale[i]/√(var[i] + eps)
// with each parameter indexed modulo its length and the arithmetic in double, as the tfjs cpu
// kernel (FusedBatchNorm) computes it; offset and scale may be empty (0 and 1).
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr xa = GetArrOf(env, info[0], napi_float32_array, "x");
  Arr ma = GetArrOf(env, info[1], napi_float32_array, "mean");
  Arr va = GetArrOf(env, info[2], napi_float32_array, "variance");
  Arr oa = GetArrOf(env, info[3], napi_float32_array, "offset");
  Arr sa = GetArrOf(env, info[4], napi_float32_array, "scale");
  Arr ya = GetArrOf(env, info[5], napi_float32_array, "out");
  const double eps = info[6].As<Napi::Number>().DoubleValue();
  const i64 n = static_cast<i64>(xa.length);
  if (static_cast<i64>(ya.length) != n || ma.length == 0 || va.length == 0) throw Napi::RangeError::New(env, "batchNorm: bad lengths");
  const float *x = F(xa), *m = F(ma), *v = F(va), *o = F(oa), *s = F(sa);
  const i64 lm = ma.length, lv = va.length, lo = oa.length, ls = sa.length;
  float* y = W(ya);
  ParallelFor(n, 16384, [&](i64 b, i64 e) {
    i64 im = b % lm, iv = b % lv, io = lo ? b % lo : 0, is = ls ? b % ls : 0;
    for (i64 i = b; i < e; i++) {
      const double off = lo ? static_cast<double>(o[io]) : 0.0;
      const double sc = ls ? static_cast<double>(s[is]) : 1.0;
      y[i] = static_cast<float>(off + (static_cast<double>(x[i]) - m[im]) * sc / std::sqrt(static_cast<double>(v[iv]) + eps));
      if (++im == lm) im = 0;
      if (++iv == lv) iv = 0;
      if (lo && ++io == lo) io = 0;
      if (ls && ++is == ls) is = 0;
    }
  });
  return env.Undefined();
}

}  // namespace

void InitConv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2D, "conv2d"));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2DBackpropInput, "conv2dBackpropInput"));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2DBackpropFilter, "conv2dBackpropFilter"));
  exports.Set("depthwiseConv2d", Napi::Function::New(env, Depthwise, "depthwiseConv2d"));
  exports.Set("depthwiseConv2dBackpropInput", Napi::Function::New(env, DepthwiseBackpropInput, "depthwiseConv2dBackpropInput"));
  exports.Set("depthwiseConv2dBackpropFilter", Napi::Function::New(env, DepthwiseBackpropFilter, "depthwiseConv2dBackpropFilter"));
  exports.Set("maxPool", Napi::Function::New(env, MaxPool, "maxPool"));
  exports.Set("maxPoolGrad", Napi::Function::New(env, MaxPoolGrad, "maxPoolGrad"));
  exports.Set("avgPool", Napi::Function::New(env, AvgPool, "avgPool"));
  exports.Set("avgPoolGrad", Napi::Function::New(env, AvgPoolGrad, "avgPoolGrad"));
  exports.Set("batchNorm", Napi::Function::New(env, BatchNorm, "batchNorm"));
}

}  // namespace ssfer
