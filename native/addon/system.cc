// Bindings for memory, threads and machine information (not an op family, but registered the same way).
//   alloc(bytes) -> address      zeroed, 64-byte aligned, freed with free(address)
//   upload(address, typedArray)  host -> native copy;  download(typedArray, address) native -> host copy
//   fill(address, count, value)  f32 fill;  zero(address, bytes)
//   setThreads(n) / threads()    the native thread pool
//   cpuInfo()                    {avx2, fma, avx512f, kernelPath}
#include <cstring>

#include "binding.h"
#include "gemm.h"
#include "mm.h"

namespace {

void* typed_data(const Napi::Value& v, size_t* bytes) {
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *bytes = ta.ByteLength();
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  int64_t bytes = mm::i64(info, 0);
  if (bytes < 0) throw Napi::RangeError::New(info.Env(), "alloc: negative size");
  return mm::address(info.Env(), mm::aligned_alloc_zeroed(static_cast<size_t>(bytes)));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  mm::aligned_free(mm::ptr<void>(info, 0));
  return info.Env().Undefined();
}

Napi::Value Upload(const Napi::CallbackInfo& info) {
  size_t bytes;
  void* src = typed_data(info[1], &bytes);
  std::memcpy(mm::ptr<void>(info, 0), src, bytes);
  return info.Env().Undefined();
}

Napi::Value Download(const Napi::CallbackInfo& info) {
  size_t bytes;
  void* dst = typed_data(info[0], &bytes);
  std::memcpy(dst, mm::ptr<void>(info, 1), bytes);
  return info.Env().Undefined();
}

Napi::Value Copy(const Napi::CallbackInfo& info) {
  std::memmove(mm::ptr<void>(info, 0), mm::ptr<void>(info, 1), static_cast<size_t>(mm::i64(info, 2)));
  return info.Env().Undefined();
}

Napi::Value Zero(const Napi::CallbackInfo& info) {
  std::memset(mm::ptr<void>(info, 0), 0, static_cast<size_t>(mm::i64(info, 1)));
  return info.Env().Undefined();
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  float* p = mm::ptr(info, 0);
  int64_t n = mm::i64(info, 1);
  float v = mm::f32(info, 2);
  for (int64_t i = 0; i < n; ++i) p[i] = v;
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  mm::set_num_threads(mm::i32(info, 0));
  return Napi::Number::New(info.Env(), mm::num_threads());
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), mm::num_threads()); }

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const mm::CpuFeatures& f = mm::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("avx512f", f.avx512f);
  o.Set("kernelPath", mm::cpu::sgemm_isa());
  return o;
}

}  // namespace

MM_BINDINGS(system) {
  mm::def(env, cpu, "alloc", Alloc);
  mm::def(env, cpu, "free", Free);
  mm::def(env, cpu, "upload", Upload);
  mm::def(env, cpu, "download", Download);
  mm::def(env, cpu, "copy", Copy);
  mm::def(env, cpu, "zero", Zero);
  mm::def(env, cpu, "fill", Fill);
  mm::def(env, cpu, "setThreads", SetThreads);
  mm::def(env, cpu, "threads", Threads);
  mm::def(env, cpu, "cpuInfo", CpuInfo);
}
