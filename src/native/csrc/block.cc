// The pre-norm ViT block as one kernel, forward and backward:
//   h = x + proj(attention(LN1(x))),   y = h + fc2(gelu(fc1(LN2(h))))
// with the heads read from and written to the fused qkv rows in place (strided GEMMs, no per-head
// copies), the biases added by the GEMMs themselves (the output starts as the bias, beta = 1) and
// everything backward needs kept in one workspace array that the forward fills.
#include <memory>

#include "common.h"
#include "layers.h"
#include "mathfn.h"

namespace ssfer {

namespace {

const float* F(const Arr& a) { return static_cast<const float*>(a.data); }
float* W(const Arr& a) { return static_cast<float*>(a.data); }

struct Dims {
  i64 B, T, D, H, M;
  i64 hd() const { return D / H; }
  i64 R() const { return B * T; }
};

// Offsets of the saved activations in the workspace, in floats.
struct Layout {
  i64 x, mean1, rstd1, xn1, qkv, probs, merged, h, mean2, rstd2, xn2, f1, g, c, total;
};

Layout LayoutOf(const Dims& d) {
  const i64 R = d.R();
  Layout l{};
  i64 o = 0;
  auto take = [&](i64 n) {
    i64 at = o;
    o += n;
    return at;
  };
  l.x = take(R * d.D);  // the input, so the backward needs nothing but the workspace and the weights
  l.mean1 = take(R);
  l.rstd1 = take(R);
  l.xn1 = take(R * d.D);
  l.qkv = take(R * 3 * d.D);
  l.probs = take(d.B * d.H * d.T * d.T);
  l.merged = take(R * d.D);
  l.h = take(R * d.D);
  l.mean2 = take(R);
  l.rstd2 = take(R);
  l.xn2 = take(R * d.D);
  l.f1 = take(R * d.M);
  l.g = take(R * d.M);
  l.c = take(R * d.M);  // the exact GELU's erf(f1·√½) + 1, so the backward need not take erf again
  l.total = o;
  return l;
}

std::unique_ptr<float[]> Scratch(i64 n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(std::max<i64>(n, 1))]); }

// A GEMM over the whole batch: OpenBLAS threads it, so the pool's spinning workers step aside.
void BigGemm(bool ta, bool tb, i64 m, i64 n, i64 k, const float* a, i64 lda, const float* b, i64 ldb, float beta,
             float* c, i64 ldc) {
  if (NumThreads() > 1) ParkWorkers();
  Sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

// c[r, :] = bias (+ add[r, :]) for every row: the GEMM then accumulates onto it.
void FillRows(float* c, const float* bias, const float* add, i64 rows, i64 n) {
  ParallelFor(rows, std::max<i64>(1, 32768 / std::max<i64>(n, 1)), [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      float* cr = c + r * n;
      if (add) {
        const float* ar = add + r * n;
#pragma omp simd
        for (i64 j = 0; j < n; j++) cr[j] = ar[j] + bias[j];
      } else {
        std::memcpy(cr, bias, sizeof(float) * n);
      }
    }
  });
}

// out[j] = Σ_r x[r, j], rows in order (the same result whatever the thread count).
void ColumnSums(const float* x, float* out, i64 rows, i64 n) {
  ParallelFor(n, 64, [&](i64 jb, i64 je) {
    const i64 w = je - jb;
    std::vector<double> acc(static_cast<size_t>(w), 0.0);
    for (i64 r = 0; r < rows; r++) {
      const float* xr = x + r * n + jb;
#pragma omp simd
      for (i64 j = 0; j < w; j++) acc[j] += xr[j];
    }
    for (i64 j = 0; j < w; j++) out[jb + j] = static_cast<float>(acc[j]);
  });
}

// Runs the per-(sample, head) attention products one pair per task on the pool, each an
// OpenBLAS call on its own thread (the matrices are too small for OpenBLAS's threading).
template <typename Fn>
void ForEachHead(const Dims& d, i64 scratchFloats, Fn&& fn) {
  const int saved = BlasThreads();
  if (saved != 1) SetBlasThreads(1);
  ParallelFor(d.B * d.H, 1, [&](i64 pb, i64 pe) {
    auto scratch = Scratch(scratchFloats);
    for (i64 p = pb; p < pe; p++) fn(p / d.H, p % d.H, scratch.get());
  });
  if (saved != 1) SetBlasThreads(saved);
}

void SoftmaxRowsInPlace(float* s, i64 rows, i64 cols) {
  for (i64 r = 0; r < rows; r++) {
    float* row = s + r * cols;
    float m = row[0];
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (i64 i = 0; i < cols; i++) {
      m = row[i] > m ? row[i] : m;
      nan |= row[i] != row[i] ? 1 : 0;
    }
    if (nan) m = NAN;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (i64 i = 0; i < cols; i++) {
      const float e = ExpF(row[i] - m);
      row[i] = e;
      sum += e;
    }
    const float fs = static_cast<float>(sum);
#pragma omp simd
    for (i64 i = 0; i < cols; i++) row[i] = row[i] / fs;
  }
}

struct Weights {
  const float *ln1g, *ln1b, *qkvW, *qkvB, *projW, *projB, *ln2g, *ln2b, *fc1W, *fc1B, *fc2W, *fc2B;
};

void Forward(const Dims& d, const float* x, const Weights& w, float eps1, float eps2, bool tanhGelu, float* y, float* ws) {
  const Layout l = LayoutOf(d);
  const i64 R = d.R(), D = d.D, M = d.M, T = d.T, hd = d.hd();
  float *mean1 = ws + l.mean1, *rstd1 = ws + l.rstd1, *xn1 = ws + l.xn1, *qkv = ws + l.qkv, *probs = ws + l.probs,
        *merged = ws + l.merged, *h = ws + l.h, *mean2 = ws + l.mean2, *rstd2 = ws + l.rstd2, *xn2 = ws + l.xn2,
        *f1 = ws + l.f1, *g = ws + l.g, *c = ws + l.c;
  std::memcpy(ws + l.x, x, sizeof(float) * R * D);
  LayerNorm(x, w.ln1g, w.ln1b, xn1, mean1, rstd1, R, D, eps1);
  FillRows(qkv, w.qkvB, nullptr, R, 3 * D);
  BigGemm(false, false, R, 3 * D, D, xn1, D, w.qkvW, 3 * D, 1.0f, qkv, 3 * D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ForEachHead(d, 0, [&](i64 b, i64 hh, float*) {
    const float* q = qkv + b * T * 3 * D + hh * hd;
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* s = probs + (b * d.H + hh) * T * T;
    Sgemm(false, true, T, T, hd, scale, q, 3 * D, k, 3 * D, 0.0f, s, T);
    SoftmaxRowsInPlace(s, T, T);
    Sgemm(false, false, T, hd, T, 1.0f, s, T, v, 3 * D, 0.0f, merged + b * T * D + hh * hd, D);
  });
  FillRows(h, w.projB, x, R, D);
  BigGemm(false, false, R, D, D, merged, D, w.projW, D, 1.0f, h, D);
  LayerNorm(h, w.ln2g, w.ln2b, xn2, mean2, rstd2, R, D, eps2);
  FillRows(f1, w.fc1B, nullptr, R, M);
  BigGemm(false, false, R, M, D, xn2, D, w.fc1W, M, 1.0f, f1, M);
  ParallelFor(R * M, 8192, [&](i64 b, i64 e) {
    if (tanhGelu) {
#pragma omp simd
      for (i64 i = b; i < e; i++) g[i] = GeluTanhF(f1[i]);
    } else {
#pragma omp simd
      for (i64 i = b; i < e; i++) {
        c[i] = GeluErfC(f1[i]);
        g[i] = GeluErfOfC(f1[i], c[i]);
      }
    }
  });
  FillRows(y, w.fc2B, h, R, D);
  BigGemm(false, false, R, D, M, g, M, w.fc2W, D, 1.0f, y, D);
}

struct Grads {
  float *dx, *ln1g, *ln1b, *qkvW, *qkvB, *projW, *projB, *ln2g, *ln2b, *fc1W, *fc1B, *fc2W, *fc2B;
};

void Backward(const Dims& d, const float* dy, const float* ws, const Weights& w, bool tanhGelu, const Grads& o) {
  const Layout l = LayoutOf(d);
  const i64 R = d.R(), D = d.D, M = d.M, T = d.T, hd = d.hd();
  const float* x = ws + l.x;
  const float *mean1 = ws + l.mean1, *rstd1 = ws + l.rstd1, *xn1 = ws + l.xn1, *qkv = ws + l.qkv,
              *probs = ws + l.probs, *merged = ws + l.merged, *h = ws + l.h, *mean2 = ws + l.mean2,
              *rstd2 = ws + l.rstd2, *xn2 = ws + l.xn2, *f1 = ws + l.f1, *g = ws + l.g, *c = ws + l.c;
  auto df1 = Scratch(R * M);
  auto rd = Scratch(R * D);  // dxn2, then dmerged, then dxn1
  auto dh = Scratch(R * D);
  auto dqkv = Scratch(R * 3 * D);

  // MLP: y = h + g·W2 + b2, g = gelu(f1), f1 = xn2·W1 + b1
  BigGemm(true, false, M, D, R, g, M, dy, D, 0.0f, o.fc2W, D);
  ColumnSums(dy, o.fc2B, R, D);
  BigGemm(false, true, R, M, D, dy, D, w.fc2W, D, 0.0f, df1.get(), M);
  float* df = df1.get();
  ParallelFor(R * M, 8192, [&](i64 b, i64 e) {
    if (tanhGelu) {
#pragma omp simd
      for (i64 i = b; i < e; i++) df[i] = df[i] * GeluTanhGradF(f1[i]);
    } else {
#pragma omp simd
      for (i64 i = b; i < e; i++) df[i] = df[i] * GeluErfGradOfC(f1[i], c[i]);
    }
  });
  BigGemm(true, false, D, M, R, xn2, D, df, M, 0.0f, o.fc1W, M);
  ColumnSums(df, o.fc1B, R, M);
  BigGemm(false, true, R, D, M, df, M, w.fc1W, M, 0.0f, rd.get(), D);
  LayerNormGrad(rd.get(), h, mean2, rstd2, w.ln2g, dh.get(), o.ln2g, o.ln2b, R, D, dy);

  // Attention: h = x + merged·Wp + bp
  BigGemm(true, false, D, D, R, merged, D, dh.get(), D, 0.0f, o.projW, D);
  ColumnSums(dh.get(), o.projB, R, D);
  float* dmerged = rd.get();
  BigGemm(false, true, R, D, D, dh.get(), D, w.projW, D, 0.0f, dmerged, D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  float* dq0 = dqkv.get();
  ForEachHead(d, T * T, [&](i64 b, i64 hh, float* dp) {
    const i64 rowOff = b * T * 3 * D + hh * hd;
    const float* q = qkv + rowOff;
    const float* k = q + D;
    const float* v = q + 2 * D;
    float* dq = dq0 + rowOff;
    float* dk = dq + D;
    float* dv = dq + 2 * D;
    const float* p = probs + (b * d.H + hh) * T * T;
    const float* dO = dmerged + b * T * D + hh * hd;
    Sgemm(false, true, T, T, hd, 1.0f, dO, D, v, 3 * D, 0.0f, dp, T);   // dP = dO·vᵀ
    Sgemm(true, false, T, hd, T, 1.0f, p, T, dO, D, 0.0f, dv, 3 * D);   // dv = Pᵀ·dO
    for (i64 i = 0; i < T; i++) {                                      // dS = P ⊙ (dP − Σ dP ⊙ P)·scale
      const float* pr = p + i * T;
      float* dr = dp + i * T;
      double s = 0.0;
      for (i64 j = 0; j < T; j++) s += static_cast<double>(dr[j] * pr[j]);
      const float fs = static_cast<float>(s);
#pragma omp simd
      for (i64 j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - fs) * scale;
    }
    Sgemm(false, false, T, hd, T, 1.0f, dp, T, k, 3 * D, 0.0f, dq, 3 * D);  // dq = dS·k
    Sgemm(true, false, T, hd, T, 1.0f, dp, T, q, 3 * D, 0.0f, dk, 3 * D);   // dk = dSᵀ·q
  });
  BigGemm(true, false, D, 3 * D, R, xn1, D, dq0, 3 * D, 0.0f, o.qkvW, 3 * D);
  ColumnSums(dq0, o.qkvB, R, 3 * D);
  float* dxn1 = rd.get();
  BigGemm(false, true, R, D, 3 * D, dq0, 3 * D, w.qkvW, 3 * D, 0.0f, dxn1, D);
  LayerNormGrad(dxn1, x, mean1, rstd1, w.ln1g, o.dx, o.ln1g, o.ln1b, R, D, dh.get());
}

Dims DimsOf(const Napi::Env& env, const Napi::Value& v) {
  std::vector<i64> s = GetInts(env, v, "dims");
  if (s.size() != 5) throw Napi::TypeError::New(env, "vitBlock: dims must be [batch, tokens, dim, heads, mlpDim]");
  Dims d{s[0], s[1], s[2], s[3], s[4]};
  if (d.B <= 0 || d.T <= 0 || d.D <= 0 || d.H <= 0 || d.M <= 0 || d.D % d.H != 0) {
    throw Napi::RangeError::New(env, "vitBlock: bad dims");
  }
  return d;
}

const float* Need(const Napi::Env& env, const Napi::Value& v, size_t n, const char* what) {
  Arr a = GetArrOf(env, v, napi_float32_array, what);
  if (a.length != n) throw Napi::RangeError::New(env, std::string("vitBlock: wrong length of ") + what);
  return F(a);
}

float* NeedOut(const Napi::Env& env, const Napi::Value& v, size_t n, const char* what) {
  Arr a = GetArrOf(env, v, napi_float32_array, what);
  if (a.length != n) throw Napi::RangeError::New(env, std::string("vitBlock: wrong length of ") + what);
  return W(a);
}

Weights WeightsOf(const Napi::Env& env, const Napi::Array& p, const Dims& d) {
  const size_t D = d.D, M = d.M;
  if (p.Length() != 12) throw Napi::TypeError::New(env, "vitBlock: expected 12 parameter arrays");
  return Weights{Need(env, p.Get(0u), D, "ln1.gamma"), Need(env, p.Get(1u), D, "ln1.beta"),
                 Need(env, p.Get(2u), D * 3 * D, "qkv.weight"), Need(env, p.Get(3u), 3 * D, "qkv.bias"),
                 Need(env, p.Get(4u), D * D, "proj.weight"), Need(env, p.Get(5u), D, "proj.bias"),
                 Need(env, p.Get(6u), D, "ln2.gamma"), Need(env, p.Get(7u), D, "ln2.beta"),
                 Need(env, p.Get(8u), D * M, "fc1.weight"), Need(env, p.Get(9u), M, "fc1.bias"),
                 Need(env, p.Get(10u), M * D, "fc2.weight"), Need(env, p.Get(11u), D, "fc2.bias")};
}

// vitBlockWorkspace(dims): floats the forward saves for the backward.
Napi::Value WorkspaceSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(LayoutOf(DimsOf(info.Env(), info[0])).total));
}

// vitBlock(x, params[12], y, ws, dims, eps1, eps2, tanhGelu)
Napi::Value Block(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Dims d = DimsOf(env, info[4]);
  const size_t n = static_cast<size_t>(d.R() * d.D);
  const float* x = Need(env, info[0], n, "x");
  const Weights w = WeightsOf(env, info[1].As<Napi::Array>(), d);
  float* y = NeedOut(env, info[2], n, "y");
  float* ws = NeedOut(env, info[3], static_cast<size_t>(LayoutOf(d).total), "workspace");
  Forward(d, x, w, info[5].As<Napi::Number>().FloatValue(), info[6].As<Napi::Number>().FloatValue(), info[7].ToBoolean().Value(), y, ws);
  return env.Undefined();
}

// vitBlockGrad(dy, ws, params[12], grads[13], dims, tanhGelu); grads: dx then one per parameter.
Napi::Value BlockGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Dims d = DimsOf(env, info[4]);
  const size_t n = static_cast<size_t>(d.R() * d.D);
  const size_t D = d.D, M = d.M;
  const float* dy = Need(env, info[0], n, "dy");
  const float* ws = Need(env, info[1], static_cast<size_t>(LayoutOf(d).total), "workspace");
  const Weights w = WeightsOf(env, info[2].As<Napi::Array>(), d);
  Napi::Array g = info[3].As<Napi::Array>();
  if (g.Length() != 13) throw Napi::TypeError::New(env, "vitBlockGrad: expected 13 gradient arrays");
  const Grads o{NeedOut(env, g.Get(0u), n, "dx"),
                NeedOut(env, g.Get(1u), D, "d ln1.gamma"), NeedOut(env, g.Get(2u), D, "d ln1.beta"),
                NeedOut(env, g.Get(3u), D * 3 * D, "d qkv.weight"), NeedOut(env, g.Get(4u), 3 * D, "d qkv.bias"),
                NeedOut(env, g.Get(5u), D * D, "d proj.weight"), NeedOut(env, g.Get(6u), D, "d proj.bias"),
                NeedOut(env, g.Get(7u), D, "d ln2.gamma"), NeedOut(env, g.Get(8u), D, "d ln2.beta"),
                NeedOut(env, g.Get(9u), D * M, "d fc1.weight"), NeedOut(env, g.Get(10u), M, "d fc1.bias"),
                NeedOut(env, g.Get(11u), M * D, "d fc2.weight"), NeedOut(env, g.Get(12u), D, "d fc2.bias")};
  Backward(d, dy, ws, w, info[5].ToBoolean().Value(), o);
  return env.Undefined();
}

// linearGrad(dy, x, w, dx, dw, db, rows, in, out): the gradients of y = x·w + b
//   dx = dy·wᵀ, dw = xᵀ·dy, db = Σ_rows dy
Napi::Value LinearGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const i64 rows = GetInt(info[6]), in = GetInt(info[7]), out = GetInt(info[8]);
  if (rows < 0 || in <= 0 || out <= 0) throw Napi::RangeError::New(env, "linearGrad: bad sizes");
  const float* dy = Need(env, info[0], static_cast<size_t>(rows * out), "dy");
  const float* x = Need(env, info[1], static_cast<size_t>(rows * in), "x");
  const float* w = Need(env, info[2], static_cast<size_t>(in * out), "w");
  float* dx = NeedOut(env, info[3], static_cast<size_t>(rows * in), "dx");
  float* dw = NeedOut(env, info[4], static_cast<size_t>(in * out), "dw");
  float* db = NeedOut(env, info[5], static_cast<size_t>(out), "db");
  BigGemm(false, true, rows, in, out, dy, out, w, out, 0.0f, dx, in);
  if (rows > 0) {
    BigGemm(true, false, in, out, rows, x, in, dy, out, 0.0f, dw, out);
  } else {
    std::memset(dw, 0, sizeof(float) * in * out);
  }
  ColumnSums(dy, db, rows, out);
  return env.Undefined();
}

// softmaxCrossEntropy(logits, targets, loss, logp, rows, cols):
//   logp = logits − max − log Σ exp(logits − max);  loss[r] = −Σ_c targets·logp
Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const i64 rows = GetInt(info[4]), cols = GetInt(info[5]);
  if (rows < 0 || cols <= 0) throw Napi::RangeError::New(env, "softmaxCrossEntropy: bad sizes");
  const float* z = Need(env, info[0], static_cast<size_t>(rows * cols), "logits");
  const float* t = Need(env, info[1], static_cast<size_t>(rows * cols), "targets");
  float* loss = NeedOut(env, info[2], static_cast<size_t>(rows), "loss");
  float* lp = NeedOut(env, info[3], static_cast<size_t>(rows * cols), "logp");
  ParallelFor(rows, std::max<i64>(1, 4096 / cols), [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      const float* zr = z + r * cols;
      const float* tr = t + r * cols;
      float* lr = lp + r * cols;
      float m = zr[0];
      for (i64 c = 1; c < cols; c++) m = zr[c] > m ? zr[c] : m;
      double s = 0.0;
      for (i64 c = 0; c < cols; c++) s += ExpF(zr[c] - m);
      const float ls = std::log(static_cast<float>(s));
      double l = 0.0;
      for (i64 c = 0; c < cols; c++) {
        lr[c] = (zr[c] - m) - ls;
        l += static_cast<double>(tr[c] * lr[c]);
      }
      loss[r] = static_cast<float>(-l);
    }
  });
  return env.Undefined();
}

// softmaxCrossEntropyGrad(dloss, targets, logp, dlogits, dtargets, rows, cols):
//   dlogits = dloss·(exp(logp)·Σ_c targets − targets);  dtargets = −dloss·logp
Napi::Value SoftmaxCrossEntropyGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const i64 rows = GetInt(info[5]), cols = GetInt(info[6]);
  if (rows < 0 || cols <= 0) throw Napi::RangeError::New(env, "softmaxCrossEntropyGrad: bad sizes");
  const float* dl = Need(env, info[0], static_cast<size_t>(rows), "dloss");
  const float* t = Need(env, info[1], static_cast<size_t>(rows * cols), "targets");
  const float* lp = Need(env, info[2], static_cast<size_t>(rows * cols), "logp");
  float* dz = NeedOut(env, info[3], static_cast<size_t>(rows * cols), "dlogits");
  float* dt = NeedOut(env, info[4], static_cast<size_t>(rows * cols), "dtargets");
  ParallelFor(rows, std::max<i64>(1, 4096 / cols), [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      const float* tr = t + r * cols;
      const float* lr = lp + r * cols;
      double st = 0.0;
      for (i64 c = 0; c < cols; c++) st += tr[c];
      const float sum = static_cast<float>(st);
      for (i64 c = 0; c < cols; c++) {
        dz[r * cols + c] = dl[r] * (ExpF(lr[c]) * sum - tr[c]);
        dt[r * cols + c] = -dl[r] * lr[c];
      }
    }
  });
  return env.Undefined();
}

}  // namespace

void InitBlock(Napi::Env env, Napi::Object exports) {
  exports.Set("softmaxCrossEntropy", Napi::Function::New(env, SoftmaxCrossEntropy, "softmaxCrossEntropy"));
  exports.Set("softmaxCrossEntropyGrad", Napi::Function::New(env, SoftmaxCrossEntropyGrad, "softmaxCrossEntropyGrad"));
  exports.Set("linearGrad", Napi::Function::New(env, LinearGrad, "linearGrad"));
  exports.Set("vitBlockWorkspace", Napi::Function::New(env, WorkspaceSize, "vitBlockWorkspace"));
  exports.Set("vitBlock", Napi::Function::New(env, Block, "vitBlock"));
  exports.Set("vitBlockGrad", Napi::Function::New(env, BlockGrad, "vitBlockGrad"));
}

}  // namespace ssfer
