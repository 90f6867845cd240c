// The module: collects every op family's bindings (see binding.h) into `cpu`, `cuda` and `cudaEmu` objects,
// plus build information.
#include <string>
#include <utility>
#include <vector>

#include "binding.h"

#ifndef MINIMIND_BUILD_BACKEND
#define MINIMIND_BUILD_BACKEND "unknown"
#endif

namespace mm {

static std::vector<std::pair<const char*, BindingInit>>& registry() {
  static std::vector<std::pair<const char*, BindingInit>> r;
  return r;
}

Registrar::Registrar(const char* family, BindingInit init) { registry().emplace_back(family, init); }

static std::vector<std::pair<const char*, DeviceBindingInit>>& device_registry() {
  static std::vector<std::pair<const char*, DeviceBindingInit>> r;
  return r;
}

DeviceRegistrar::DeviceRegistrar(const char* family, DeviceBindingInit init) {
  device_registry().emplace_back(family, init);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Object cpu = Napi::Object::New(env);
  Napi::Object cuda = Napi::Object::New(env);
  Napi::Object cuda_emu = Napi::Object::New(env);
  Napi::Array families = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& [family, init] : registry()) {
    init(env, cpu, cuda);
    families.Set(i++, Napi::String::New(env, family));
  }
  for (auto& [family, init] : device_registry()) {
    init(env, cuda, cuda_emu);
    families.Set(i++, Napi::String::New(env, family));
  }
  exports.Set("cpu", cpu);
  exports.Set("cuda", cuda);
  exports.Set("cudaEmu", cuda_emu);
  exports.Set("families", families);
  exports.Set("buildBackend", Napi::String::New(env, MINIMIND_BUILD_BACKEND));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace mm

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mm::Init(env, exports); }
NODE_API_MODULE(minimind, InitModule)
