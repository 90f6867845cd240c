// How op families expose their kernels to JavaScript.
//
// Each binding file (native/addon/<family>.cc) registers itself with MM_BINDINGS(family) { ... } and adds
// functions to `cpu` (and, when the CUDA backend is compiled, to `cuda`). addon.cc builds the module from
// the registry, so adding an op family never touches a shared file.
//
// Calling convention: tensors cross the boundary as raw addresses (JS numbers; x86-64 and arm64 user-space
// addresses fit in 53 bits) plus explicit sizes and strides. TypeScript owns shapes; kernels trust them.
#pragma once
#include <napi.h>

#include <cstdint>

namespace mm {

using BindingInit = void (*)(Napi::Env env, Napi::Object cpu, Napi::Object cuda);

struct Registrar {
  Registrar(const char* family, BindingInit init);
};

// CUDA op families register with MM_DEVICE_BINDINGS(family) { ... }: their kernels go into `cuda` (the GPU, when
// compiled) and `cuda_emu` (the same kernels run by the CPU emulator; exported as `cudaEmu`).
using DeviceBindingInit = void (*)(Napi::Env env, Napi::Object cuda, Napi::Object cuda_emu);

struct DeviceRegistrar {
  DeviceRegistrar(const char* family, DeviceBindingInit init);
};

// Arguments as kernels want them.
inline double num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }
inline int64_t i64(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
inline int i32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
inline float f32(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().FloatValue(); }
inline bool flag(const Napi::CallbackInfo& info, size_t i) { return info[i].ToBoolean().Value(); }
template <typename T = float>
inline T* ptr(const Napi::CallbackInfo& info, size_t i) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(info[i].As<Napi::Number>().Int64Value()));
}
inline Napi::Value address(Napi::Env env, const void* p) {
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

// Adds `fn` as obj[name].
inline void def(Napi::Env env, Napi::Object obj, const char* name, Napi::Function::Callback fn) {
  obj.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace mm

#define MM_BINDINGS(family)                                                              \
  static void mm_bind_##family(Napi::Env env, Napi::Object cpu, Napi::Object cuda);      \
  static ::mm::Registrar mm_registrar_##family(#family, mm_bind_##family);               \
  static void mm_bind_##family(Napi::Env env, [[maybe_unused]] Napi::Object cpu,         \
                               [[maybe_unused]] Napi::Object cuda)

#define MM_DEVICE_BINDINGS(family)                                                              \
  static void mm_bind_##family(Napi::Env env, Napi::Object cuda, Napi::Object cuda_emu);        \
  static ::mm::DeviceRegistrar mm_registrar_##family(#family, mm_bind_##family);                \
  static void mm_bind_##family(Napi::Env env, [[maybe_unused]] Napi::Object cuda,              \
                               [[maybe_unused]] Napi::Object cuda_emu)
