// Branch-free float approximations of exp/log/tanh/erf that GCC can vectorise (the libm calls
// cannot be vectorised without -ffast-math, which would also break NaN handling elsewhere).
// Polynomials are Cephes' single-precision ones (about 1 ulp); erf uses the same
// Abramowitz-Stegun 7.1.26 formula as the tfjs cpu kernel so both backends agree.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__)
#define SSFER_INLINE inline __attribute__((always_inline))
#else
#define SSFER_INLINE inline
#endif

namespace ssfer {

SSFER_INLINE float BitsToF(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}

SSFER_INLINE int32_t FToBits(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i;
}

SSFER_INLINE float ExpF(float x) {
  bool isnan = x != x;
  // Clamp beyond the range where the result saturates to 0 or inf; NaN is patched at the end.
  float xc = isnan ? 0.0f : (x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x));
  float fx = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
  float z = r * r;
  float y = (((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r + 4.1665795894E-2f) * r +
              1.6666665459E-1f) * r + 5.0000001201E-1f) * z + r + 1.0f;
  int32_t n = static_cast<int32_t>(fx);
  // Two half-size scalings so that results near overflow and in the subnormal range stay right.
  int32_t n1 = n >> 1;
  int32_t n2 = n - n1;
  float s1 = BitsToF((n1 + 127) << 23);
  float s2 = BitsToF((n2 + 127) << 23);
  float res = y * s1 * s2;
  return isnan ? x : res;
}

SSFER_INLINE float LogF(float x) {
  int32_t ix0 = FToBits(x);
  bool sub = ix0 > 0 && ix0 < 0x00800000;
  float xs = sub ? x * 8388608.0f : x;
  int32_t ix = FToBits(xs);
  int32_t e = ((ix >> 23) & 0xff) - 127 - (sub ? 23 : 0);
  float m = BitsToF((ix & 0x007fffff) | 0x3f800000);
  bool big = m > 1.41421356237f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  float f = m - 1.0f;
  float z = f * f;
  float y = ((((((((7.0376836292E-2f * f - 1.1514610310E-1f) * f + 1.1676998740E-1f) * f - 1.2420140846E-1f) * f +
                 1.4249322787E-1f) * f - 1.6668057665E-1f) * f + 2.0000714765E-1f) * f - 2.4999993993E-1f) * f +
            3.3333331174E-1f) * f * z;
  float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = f + y + 0.693359375f * fe;
  r = (x == 0.0f) ? -INFINITY : r;
  r = (x == INFINITY) ? INFINITY : r;
  r = (x < 0.0f || x != x) ? NAN : r;
  return r;
}

SSFER_INLINE float TanhF(float x) {
  float ax = std::fabs(x);
  float z = x * x;
  float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z + 1.33314422036E-1f) * z -
                 3.33332819422E-1f) * z * x + x;
  float e = ExpF(2.0f * ax);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0.0f ? -big : big;
  return ax < 0.625f ? small : big;
}

SSFER_INLINE float SigmoidF(float x) { return 1.0f / (1.0f + ExpF(-x)); }

SSFER_INLINE float ErfF(float x) {
  const float p = 0.3275911f, a1 = 0.254829592f, a2 = -0.284496736f, a3 = 1.421413741f, a4 = -1.453152027f,
              a5 = 1.061405429f;
  float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == x ? 0.0f : x));
  float v = std::fabs(x);
  float t = 1.0f / (1.0f + p * v);
  float poly = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t;
  return sign * (1.0f - poly * ExpF(-v * v));
}

// Exact GELU and its derivative, in the order of the op-by-op path of the ViT layers:
//   (x·0.5)·(erf(x·√½) + 1)   and   (erf(x·√½) + 1)·0.5 + x·(exp((x·x)·−0.5)·1/√(2π))
// Each also in two halves around c = erf(x·√½) + 1, which a forward can keep for its backward.
SSFER_INLINE float GeluErfC(float v) { return ErfF(v * 0.70710678118654752440f) + 1.0f; }
SSFER_INLINE float GeluErfOfC(float v, float c) { return (v * 0.5f) * c; }
SSFER_INLINE float GeluErfGradOfC(float v, float c) {
  const float cdf = c * 0.5f;
  const float pdf = ExpF((v * v) * -0.5f) * 0.39894228040143267794f;
  return cdf + v * pdf;
}
SSFER_INLINE float GeluErfF(float v) { return GeluErfOfC(v, GeluErfC(v)); }
SSFER_INLINE float GeluErfGradF(float v) { return GeluErfGradOfC(v, GeluErfC(v)); }

// The tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) and its derivative.
SSFER_INLINE float GeluTanhF(float v) {
  const float t = TanhF((v + v * v * v * 0.044715f) * 0.79788456080286535588f);
  return (v * 0.5f) * (t + 1.0f);
}

SSFER_INLINE float GeluTanhGradF(float v) {
  const float t = TanhF((v + v * v * v * 0.044715f) * 0.79788456080286535588f);
  return 0.5f * (1.0f + t) + (v * 0.5f) * (1.0f - t * t) * 0.79788456080286535588f * (1.0f + 0.134145f * v * v);
}

}  // namespace ssfer
