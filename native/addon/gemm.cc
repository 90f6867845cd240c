// Bindings: GEMM (native/cpu/gemm.cc). Matrices cross as addresses with explicit strides.
//   gemm(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch)
//   gemmIsa(name?) -> the micro-kernel in use; with a name ('auto', 'avx512', 'avx2', 'portable') forces it
//                     first, throwing if this CPU lacks it (tests compare the paths in one process)
//   openblasGemm(...same arguments as gemm...) -> false when no OpenBLAS library is installed. For the bench
//                     only: libopenblas is looked up with dlopen at the first call, never linked.
#include <dlfcn.h>

#include <string>

#include "binding.h"
#include "gemm.h"

namespace {

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  if (info.Length() != 17) throw Napi::TypeError::New(info.Env(), "gemm: expected 17 arguments");
  mm::cpu::sgemm(mm::flag(info, 0), mm::flag(info, 1), mm::i64(info, 2), mm::i64(info, 3), mm::i64(info, 4),
                 mm::f32(info, 5), mm::ptr(info, 6), mm::i64(info, 7), mm::i64(info, 8), mm::ptr(info, 9),
                 mm::i64(info, 10), mm::i64(info, 11), mm::f32(info, 12), mm::ptr(info, 13), mm::i64(info, 14),
                 mm::i64(info, 15), mm::i64(info, 16));
  return info.Env().Undefined();
}

Napi::Value GemmIsa(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!mm::cpu::sgemm_force_isa(name.c_str()))
      throw Napi::Error::New(info.Env(), "gemmIsa: unknown or unsupported on this CPU: '" + name + "'");
  }
  return Napi::String::New(info.Env(), mm::cpu::sgemm_isa());
}

// cblas_sgemm(layout, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) with CBLAS's enum values.
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                            float*, int);
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;

CblasSgemm openblas_sgemm() {
  static const CblasSgemm fn = [] {
    for (const char* lib : {"libopenblas.so.0", "libopenblas.so"}) {
      if (void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) return reinterpret_cast<CblasSgemm>(dlsym(h, "cblas_sgemm"));
    }
    return CblasSgemm{nullptr};
  }();
  return fn;
}

Napi::Value OpenblasGemm(const Napi::CallbackInfo& info) {
  CblasSgemm sgemm = openblas_sgemm();
  if (!sgemm) return Napi::Boolean::New(info.Env(), false);
  const int64_t batch = mm::i64(info, 16);
  for (int64_t b = 0; b < batch; ++b) {
    sgemm(kCblasRowMajor, mm::flag(info, 0) ? kCblasTrans : kCblasNoTrans,
          mm::flag(info, 1) ? kCblasTrans : kCblasNoTrans, mm::i32(info, 2), mm::i32(info, 3), mm::i32(info, 4),
          mm::f32(info, 5), mm::ptr(info, 6) + b * mm::i64(info, 8), mm::i32(info, 7),
          mm::ptr(info, 9) + b * mm::i64(info, 11), mm::i32(info, 10), mm::f32(info, 12),
          mm::ptr(info, 13) + b * mm::i64(info, 15), mm::i32(info, 14));
  }
  return Napi::Boolean::New(info.Env(), true);
}

}  // namespace

MM_BINDINGS(gemm) {
  mm::def(env, cpu, "gemm", Gemm);
  mm::def(env, cpu, "gemmIsa", GemmIsa);
  mm::def(env, cpu, "openblasGemm", OpenblasGemm);
}
