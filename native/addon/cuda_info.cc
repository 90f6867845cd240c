// cudaInfo(): whether the CUDA backend was compiled, and what devices the driver reports.
#include "binding.h"
#ifdef MINIMIND_WITH_CUDA
#include "mm_cuda.h"
#endif

namespace {

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef MINIMIND_WITH_CUDA
  mm::cuda::Info q = mm::cuda::query();
  o.Set("compiled", true);
  o.Set("runtimeVersion", q.runtime_version);
  o.Set("driverVersion", q.driver_version);
  o.Set("deviceCount", q.device_count);
  if (q.error) o.Set("error", q.error_text);
  Napi::Array devices = Napi::Array::New(env);
  for (int d = 0; d < q.device_count && d < 8; ++d) {
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", q.names[d]);
    dev.Set("computeCapability", std::to_string(q.cc_major[d]) + "." + std::to_string(q.cc_minor[d]));
    dev.Set("totalMemoryBytes", static_cast<double>(q.total_mem[d]));
    devices.Set(d, dev);
  }
  o.Set("devices", devices);
#else
  o.Set("compiled", false);
  o.Set("deviceCount", 0);
  o.Set("devices", Napi::Array::New(env));
  o.Set("error", "the CUDA backend was not compiled (no nvcc at build time, or MINIMIND_CUDA=0)");
#endif
  return o;
}

}  // namespace

MM_BINDINGS(cuda_info) { mm::def(env, cpu, "cudaInfo", CudaInfo); }
