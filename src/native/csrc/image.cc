// Image resampling: CropAndResize as TensorFlow's CPU kernel and tfjs's cpu backend compute it.
// The coordinates and the interpolation are taken in double and each output rounded once to
// float32, as the JS kernel does with its numbers, so both backends give the same values.
#pragma GCC optimize("fp-contract=off")
#include <cmath>

#include "common.h"

namespace ssfer {

namespace {

// JavaScript's Math.round: the nearest integer, ties toward +∞.
inline double RoundHalfUp(double x) {
  const double f = std::floor(x);
  return x - f >= 0.5 ? f + 1.0 : f;
}

// cropAndResize(image, boxes, boxInd: Int32Array, out, [batch, h, w, c], [cropH, cropW], bilinear,
// extrapolationValue) -> false (nothing written) for a negative box index or a box coordinate
// that is not finite, where the JS kernel reads outside its array (the caller then runs it). A
// box index at or past the batch gets a crop of zeros, as the JS kernel leaves its fresh buffer.
Napi::Value CropAndResize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Arr im = GetArrOf(env, info[0], napi_float32_array, "image");
  Arr bx = GetArrOf(env, info[1], napi_float32_array, "boxes");
  Arr bi = GetArrOf(env, info[2], napi_int32_array, "boxInd");
  Arr o = GetArrOf(env, info[3], napi_float32_array, "out");
  std::vector<i64> shape = GetInts(env, info[4], "shape");
  std::vector<i64> crop = GetInts(env, info[5], "cropSize");
  const bool bilinear = info[6].As<Napi::Boolean>().Value();
  const double extrapolation = info[7].As<Napi::Number>().DoubleValue();
  if (shape.size() != 4 || crop.size() != 2) throw Napi::RangeError::New(env, "cropAndResize: shape needs 4 sizes and cropSize 2");
  const i64 batch = shape[0], H = shape[1], W = shape[2], C = shape[3], cropH = crop[0], cropW = crop[1];
  const i64 n = static_cast<i64>(bi.length);
  if (static_cast<i64>(im.length) < batch * H * W * C || static_cast<i64>(bx.length) < n * 4 ||
      static_cast<i64>(o.length) < n * cropH * cropW * C)
    throw Napi::RangeError::New(env, "cropAndResize: size mismatch");
  const float* image = static_cast<const float*>(im.data);
  const float* boxes = static_cast<const float*>(bx.data);
  const int32_t* ind = static_cast<const int32_t*>(bi.data);
  float* out = static_cast<float*>(o.data);
  for (i64 b = 0; b < n; b++)
    if (ind[b] < 0) return Napi::Boolean::New(env, false);
  for (i64 k = 0; k < n * 4; k++)
    if (!std::isfinite(boxes[k])) return Napi::Boolean::New(env, false);
  const float fill = static_cast<float>(extrapolation);
  const i64 rowFloats = cropW * C;
  ParallelFor(n * cropH, std::max<i64>(1, 16384 / std::max<i64>(rowFloats, 1)), [&](i64 rb, i64 re) {
    for (i64 r = rb; r < re; r++) {
      const i64 b = r / cropH, y = r % cropH;
      float* orow = out + r * rowFloats;
      if (ind[b] >= batch) {
        std::fill_n(orow, rowFloats, 0.0f);
        continue;
      }
      const double y1 = boxes[b * 4], x1 = boxes[b * 4 + 1], y2 = boxes[b * 4 + 2], x2 = boxes[b * 4 + 3];
      const float* img = image + ind[b] * H * W * C;
      const double heightScale = cropH > 1 ? (y2 - y1) * static_cast<double>(H - 1) / static_cast<double>(cropH - 1) : 0.0;
      const double widthScale = cropW > 1 ? (x2 - x1) * static_cast<double>(W - 1) / static_cast<double>(cropW - 1) : 0.0;
      const double yIn = cropH > 1 ? y1 * static_cast<double>(H - 1) + static_cast<double>(y) * heightScale : 0.5 * (y1 + y2) * static_cast<double>(H - 1);
      if (yIn < 0 || yIn > static_cast<double>(H - 1)) {
        std::fill_n(orow, rowFloats, fill);
        continue;
      }
      const double yFloor = std::floor(yIn);
      const i64 top = static_cast<i64>(yFloor), bottom = static_cast<i64>(std::ceil(yIn));
      const double yLerp = yIn - yFloor;
      for (i64 x = 0; x < cropW; x++) {
        const double xIn = cropW > 1 ? x1 * static_cast<double>(W - 1) + static_cast<double>(x) * widthScale : 0.5 * (x1 + x2) * static_cast<double>(W - 1);
        float* op = orow + x * C;
        if (xIn < 0 || xIn > static_cast<double>(W - 1)) {
          std::fill_n(op, C, fill);
          continue;
        }
        if (bilinear) {
          const double xFloor = std::floor(xIn);
          const i64 left = static_cast<i64>(xFloor), right = static_cast<i64>(std::ceil(xIn));
          const double xLerp = xIn - xFloor;
          const float* tl = img + (top * W + left) * C;
          const float* tr = img + (top * W + right) * C;
          const float* bl = img + (bottom * W + left) * C;
          const float* br = img + (bottom * W + right) * C;
          for (i64 c = 0; c < C; c++) {
            const double t = static_cast<double>(tl[c]) + (static_cast<double>(tr[c]) - static_cast<double>(tl[c])) * xLerp;
            const double btm = static_cast<double>(bl[c]) + (static_cast<double>(br[c]) - static_cast<double>(bl[c])) * xLerp;
            op[c] = static_cast<float>(t + (btm - t) * yLerp);
          }
        } else {
          const i64 cx = static_cast<i64>(RoundHalfUp(xIn)), cy = static_cast<i64>(RoundHalfUp(yIn));
          const float* src = img + (cy * W + cx) * C;
          for (i64 c = 0; c < C; c++) op[c] = src[c];
        }
      }
    }
  });
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitImage(Napi::Env env, Napi::Object exports) {
  exports.Set("cropAndResize", Napi::Function::New(env, CropAndResize, "cropAndResize"));
}

}  // namespace ssfer
