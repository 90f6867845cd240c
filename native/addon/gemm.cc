// Bindings: GEMM (native/cpu/gemm.cc). Matrices cross as addresses with explicit strides.
//   gemm(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch)
//   gemmIsa(name?) -> the micro-kernel in use; with a name ('auto', 'avx512', 'avx2', 'portable') forces it
//                     first, throwing if this CPU lacks it (tests compare the paths in one process)
//   gemmHalfWeights(type, M, N, K, A, lda, B, ldb, C, ldc) -> C = A @ Bᵀ with B half precision (type 1 bf16,
//                     2 f16; see gemm.h gemm_half_weights)
//   embeddingHalfWeights(type, out, ids, n, weight, V, C) -> the embedding lookup of a half-precision weight;
//                     throws a RangeError for an id outside [0, V)
//   narrowWeights(type, dst, src, n) -> dst (bf16 or f16 bits) = src (f32) rounded to nearest even
//   openblasGemm(...same arguments as gemm...) -> false when no OpenBLAS library is installed. For the bench
//                     only: libopenblas is looked up with dlopen at the first call, never linked.
#include <dlfcn.h>

#include <string>

#include "binding.h"
#include "embedding.h"
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

mm::cpu::WeightType half_type(const Napi::CallbackInfo& info, size_t i) {
  const int type = mm::i32(info, i);
  if (type != 1 && type != 2) throw Napi::TypeError::New(info.Env(), "half weights: type must be 1 (bf16) or 2 (f16)");
  return static_cast<mm::cpu::WeightType>(type);
}

Napi::Value GemmHalfWeights(const Napi::CallbackInfo& info) {
  mm::cpu::gemm_half_weights(half_type(info, 0), mm::i64(info, 1), mm::i64(info, 2), mm::i64(info, 3),
                             mm::ptr(info, 4), mm::i64(info, 5), mm::ptr<uint16_t>(info, 6), mm::i64(info, 7),
                             mm::ptr(info, 8), mm::i64(info, 9));
  return info.Env().Undefined();
}

Napi::Value EmbeddingHalfWeights(const Napi::CallbackInfo& info) {
  const int32_t* ids = mm::ptr<int32_t>(info, 2);
  const int64_t n = mm::i64(info, 3), V = mm::i64(info, 5);
  const int64_t bad = mm::cpu::first_invalid_id(ids, n, V);
  if (bad >= 0) {
    throw Napi::RangeError::New(info.Env(), "embedding: ids[" + std::to_string(bad) + "] = " +
                                                std::to_string(ids[bad]) + " is outside the vocabulary [0, " +
                                                std::to_string(V) + ")");
  }
  mm::cpu::embedding_half_weights(half_type(info, 0), mm::ptr(info, 1), ids, n, mm::ptr<uint16_t>(info, 4),
                                  mm::i64(info, 6));
  return info.Env().Undefined();
}

Napi::Value NarrowWeights(const Napi::CallbackInfo& info) {
  mm::cpu::narrow_weights(half_type(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
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
  mm::def(env, cpu, "gemmHalfWeights", GemmHalfWeights);
  mm::def(env, cpu, "embeddingHalfWeights", EmbeddingHalfWeights);
  mm::def(env, cpu, "narrowWeights", NarrowWeights);
}
