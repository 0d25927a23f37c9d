// Entry point of the native kernels addon.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

namespace ssfer {

int HardwareThreads();

namespace {

int DefaultThreads() {
  const char* env = std::getenv("SSFER_NATIVE_THREADS");
  if (env && std::atoi(env) > 0) return std::atoi(env);
  return HardwareThreads();
}

// setThreads(n): worker threads for both the elementwise kernels and OpenBLAS.
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = static_cast<int>(GetInt(info[0]));
  SetNumThreads(n);
  SetBlasThreads(NumThreads());
  return Napi::Number::New(info.Env(), NumThreads());
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), NumThreads()); }

}  // namespace

}  // namespace ssfer

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(__GLIBC__)
  // Kernel outputs are fresh multi-megabyte ArrayBuffers. By default glibc maps each one anew and
  // unmaps it when V8 frees it, so every write of every output page faults (about as slow as the
  // arithmetic itself); keeping such blocks on the heap lets freed ones be reused instead.
  if (!std::getenv("SSFER_NATIVE_DEFAULT_MALLOC")) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
  }
#endif
  ssfer::SetNumThreads(ssfer::DefaultThreads());
  if (std::getenv("SSFER_NATIVE_THREADS")) ssfer::SetBlasThreads(ssfer::NumThreads());
  ssfer::InitGemm(env, exports);
  ssfer::InitElementwise(env, exports);
  ssfer::InitReduce(env, exports);
  ssfer::InitLayout(env, exports);
  ssfer::InitOptim(env, exports);
  ssfer::InitLayers(env, exports);
  ssfer::InitBlock(env, exports);
  ssfer::InitConv(env, exports);
  ssfer::InitImage(env, exports);
  exports.Set("setThreads", Napi::Function::New(env, ssfer::SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, ssfer::GetThreads, "getThreads"));
  return exports;
}

NODE_API_MODULE(ssfer_native, Init)
