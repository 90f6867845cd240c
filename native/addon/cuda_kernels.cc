// Bindings of the CUDA backend's memory and kernels (declared in native/cuda/kernels.h), registered twice from
// one template: into `cuda` for the GPU (when nvcc compiled it) and into `cudaEmu` for the same kernels run by
// the CPU emulator. Arguments are addresses and sizes; a failing call throws with the backend's message.
#include <cstdint>
#include <string>

#include "binding.h"
#if defined(MINIMIND_WITH_CUDA) || defined(MINIMIND_WITH_CUDA_EMU)
#include "mm_cuda.h"

namespace {

template <typename K>
void check(const Napi::CallbackInfo& info, int status, const char* name) {
  if (status != 0) throw Napi::Error::New(info.Env(), std::string("cuda.") + name + ": " + K::error_text());
}

void* typed_data(const Napi::Value& v, size_t* bytes) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), "expected a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  *bytes = ta.ByteLength();
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

template <typename K>
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  void* p = nullptr;
  check<K>(info, K::alloc(&p, static_cast<size_t>(mm::i64(info, 0))), "alloc");
  return mm::address(info.Env(), p);
}
template <typename K>
Napi::Value Free(const Napi::CallbackInfo& info) {
  check<K>(info, K::free(mm::ptr<void>(info, 0)), "free");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Upload(const Napi::CallbackInfo& info) {
  size_t bytes;
  const void* src = typed_data(info[1], &bytes);
  check<K>(info, K::upload(mm::ptr<void>(info, 0), src, bytes), "upload");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Download(const Napi::CallbackInfo& info) {
  size_t bytes;
  void* dst = typed_data(info[0], &bytes);
  check<K>(info, K::download(dst, mm::ptr<void>(info, 1), bytes), "download");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Copy(const Napi::CallbackInfo& info) {
  check<K>(info, K::copy(mm::ptr<void>(info, 0), mm::ptr<void>(info, 1), mm::i64(info, 2)), "copy");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Zero(const Napi::CallbackInfo& info) {
  check<K>(info, K::zero(mm::ptr<void>(info, 0), mm::i64(info, 1)), "zero");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Fill(const Napi::CallbackInfo& info) {
  check<K>(info, K::fill_f32(mm::ptr(info, 0), mm::i64(info, 1), mm::f32(info, 2)), "fill");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  check<K>(info, K::synchronize(), "synchronize");
  return info.Env().Undefined();
}

// ---- kernels ----
template <typename K>
Napi::Value CastF32ToBf16(const Napi::CallbackInfo& info) {
  check<K>(info, K::cast_f32_to_bf16(mm::ptr<uint16_t>(info, 0), mm::ptr(info, 1), mm::i64(info, 2)),
           "castF32ToBf16");
  return info.Env().Undefined();
}
template <typename K>
Napi::Value CastBf16ToF32(const Napi::CallbackInfo& info) {
  check<K>(info, K::cast_bf16_to_f32(mm::ptr(info, 0), mm::ptr<uint16_t>(info, 1), mm::i64(info, 2)),
           "castBf16ToF32");
  return info.Env().Undefined();
}
// axpy(y, yBf16, x, xBf16, alpha, n): y += alpha * x
template <typename K>
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::axpy(mm::ptr<void>(info, 0), mm::flag(info, 1), mm::ptr<void>(info, 2), mm::flag(info, 3),
                   mm::f32(info, 4), mm::i64(info, 5)),
           "axpy");
  return info.Env().Undefined();
}
// rmsnormForward(y, h, rstd, x, residual|0, weight, N, C, eps)
template <typename K>
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::rmsnorm_forward(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2),
                              mm::ptr<uint16_t>(info, 3), mm::ptr<uint16_t>(info, 4), mm::ptr<uint16_t>(info, 5),
                              mm::i64(info, 6), mm::i32(info, 7), mm::f32(info, 8)),
           "rmsnormForward");
  return info.Env().Undefined();
}
// rmsnormBackward(dh, dweight, dy, h, weight, rstd, N, C)
template <typename K>
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::rmsnorm_backward(mm::ptr<uint16_t>(info, 0), mm::ptr(info, 1), mm::ptr<uint16_t>(info, 2),
                               mm::ptr<uint16_t>(info, 3), mm::ptr<uint16_t>(info, 4), mm::ptr(info, 5),
                               mm::i64(info, 6), mm::i32(info, 7)),
           "rmsnormBackward");
  return info.Env().Undefined();
}

// swigluForward(out, gate, up, n)
template <typename K>
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::swiglu_forward(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                             mm::i64(info, 3)),
           "swigluForward");
  return info.Env().Undefined();
}
// swigluBackward(dgate, dup, dout, gate, up, n)
template <typename K>
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::swiglu_backward(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                              mm::ptr<uint16_t>(info, 3), mm::ptr<uint16_t>(info, 4), mm::i64(info, 5)),
           "swigluBackward");
  return info.Env().Undefined();
}
// rope(out, in, cos, sin, B, T, NH, HD, pos0, interleaved, backward)
template <typename K>
Napi::Value Rope(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::rope(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                   mm::i32(info, 4), mm::i32(info, 5), mm::i32(info, 6), mm::i32(info, 7), mm::i32(info, 8),
                   mm::flag(info, 9), mm::flag(info, 10)),
           "rope");
  return info.Env().Undefined();
}
// embeddingForward(out, ids, table, N, C, V)
template <typename K>
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::embedding_forward(mm::ptr<uint16_t>(info, 0), mm::ptr<int32_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                                mm::i64(info, 3), mm::i32(info, 4), mm::i32(info, 5)),
           "embeddingForward");
  return info.Env().Undefined();
}
// embeddingBackward(dtable, ids, dout, N, C, V)
template <typename K>
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::embedding_backward(mm::ptr(info, 0), mm::ptr<int32_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                                 mm::i64(info, 3), mm::i32(info, 4), mm::i32(info, 5)),
           "embeddingBackward");
  return info.Env().Undefined();
}
// crossEntropy(losses, logits, targets, N, V, dloss)
template <typename K>
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::cross_entropy(mm::ptr(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<int32_t>(info, 2), mm::i64(info, 3),
                            mm::i32(info, 4), mm::f32(info, 5)),
           "crossEntropy");
  return info.Env().Undefined();
}
// adamw(master, param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale, seed)
template <typename K>
Napi::Value Adamw(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::adamw(mm::ptr(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2), mm::ptr(info, 3), mm::ptr(info, 4),
                    mm::i64(info, 5), mm::f32(info, 6), mm::f32(info, 7), mm::f32(info, 8), mm::f32(info, 9),
                    mm::f32(info, 10), mm::f32(info, 11), mm::f32(info, 12), mm::f32(info, 13),
                    static_cast<uint64_t>(mm::i64(info, 14))),
           "adamw");
  return info.Env().Undefined();
}
// sumSquares(out, x, n): out[0] += sum x^2; out holds 1 + 128 floats.
template <typename K>
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  check<K>(info, K::sum_squares(mm::ptr(info, 0), mm::ptr(info, 1), mm::i64(info, 2)), "sumSquares");
  return info.Env().Undefined();
}
// gemm(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, cBf16, ldc, strideC, batch)
template <typename K, bool kTiled>
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  auto fn = kTiled ? &K::gemm_tiled : &K::gemm;
  check<K>(info,
           fn(mm::flag(info, 0), mm::flag(info, 1), mm::i64(info, 2), mm::i64(info, 3), mm::i64(info, 4),
              mm::f32(info, 5), mm::ptr<uint16_t>(info, 6), mm::i64(info, 7), mm::i64(info, 8),
              mm::ptr<uint16_t>(info, 9), mm::i64(info, 10), mm::i64(info, 11), mm::f32(info, 12),
              mm::ptr<void>(info, 13), mm::flag(info, 14), mm::i64(info, 15), mm::i64(info, 16), mm::i64(info, 17)),
           kTiled ? "gemmTiled" : "gemm");
  return info.Env().Undefined();
}
// attentionForward(out, lse, q, k, v, B, T, NH, NKV, HD, scale)
template <typename K>
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::attention_forward(mm::ptr<uint16_t>(info, 0), mm::ptr(info, 1), mm::ptr<uint16_t>(info, 2),
                                mm::ptr<uint16_t>(info, 3), mm::ptr<uint16_t>(info, 4), mm::i32(info, 5),
                                mm::i32(info, 6), mm::i32(info, 7), mm::i32(info, 8), mm::i32(info, 9),
                                mm::f32(info, 10)),
           "attentionForward");
  return info.Env().Undefined();
}
// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, B, T, NH, NKV, HD, scale)
template <typename K>
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::attention_backward(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                                 mm::ptr<uint16_t>(info, 3), mm::ptr<uint16_t>(info, 4), mm::ptr(info, 5),
                                 mm::ptr<uint16_t>(info, 6), mm::ptr<uint16_t>(info, 7), mm::ptr<uint16_t>(info, 8),
                                 mm::i32(info, 9), mm::i32(info, 10), mm::i32(info, 11), mm::i32(info, 12),
                                 mm::i32(info, 13), mm::f32(info, 14)),
           "attentionBackward");
  return info.Env().Undefined();
}

// ---- mixture-of-experts routing (moe.cu); gradient pointers may be 0 (skipped) ----
// moeRoute(logits, N, E, k, renorm, scores, weights, experts, offsets, order, positions)
template <typename K>
Napi::Value MoeRoute(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_route(mm::ptr<uint16_t>(info, 0), mm::i64(info, 1), mm::i32(info, 2), mm::i32(info, 3),
                        mm::flag(info, 4), mm::ptr(info, 5), mm::ptr(info, 6), mm::ptr<int32_t>(info, 7),
                        mm::ptr<int32_t>(info, 8), mm::ptr<int32_t>(info, 9), mm::ptr<int32_t>(info, 10)),
           "moeRoute");
  return info.Env().Undefined();
}
// moeRouteBackward(dlogits, scores, weights, experts, dweights|0, dscores|0, N, E, k, renorm)
template <typename K>
Napi::Value MoeRouteBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_route_backward(mm::ptr<uint16_t>(info, 0), mm::ptr(info, 1), mm::ptr(info, 2),
                                 mm::ptr<int32_t>(info, 3), mm::ptr(info, 4), mm::ptr(info, 5), mm::i64(info, 6),
                                 mm::i32(info, 7), mm::i32(info, 8), mm::flag(info, 9)),
           "moeRouteBackward");
  return info.Env().Undefined();
}
// moeAuxLoss(out, scores, coef, B, T, E)
template <typename K>
Napi::Value MoeAuxLoss(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_aux_loss(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3), mm::i64(info, 4),
                           mm::i32(info, 5)),
           "moeAuxLoss");
  return info.Env().Undefined();
}
// moeAuxLossBackward(dscores, dloss, coef, B, T, E)
template <typename K>
Napi::Value MoeAuxLossBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_aux_loss_backward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3),
                                    mm::i64(info, 4), mm::i32(info, 5)),
           "moeAuxLossBackward");
  return info.Env().Undefined();
}
// moeDispatch(out, x, order, N, k, C)
template <typename K>
Napi::Value MoeDispatch(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_dispatch(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<int32_t>(info, 2),
                           mm::i64(info, 3), mm::i32(info, 4), mm::i64(info, 5)),
           "moeDispatch");
  return info.Env().Undefined();
}
// moeDispatchBackward(dx, dout, positions, N, k, C)
template <typename K>
Napi::Value MoeDispatchBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_dispatch_backward(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1),
                                    mm::ptr<int32_t>(info, 2), mm::i64(info, 3), mm::i32(info, 4), mm::i64(info, 5)),
           "moeDispatchBackward");
  return info.Env().Undefined();
}
// moeCombine(y, expertOut, weights, positions, N, k, C)
template <typename K>
Napi::Value MoeCombine(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_combine(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2),
                          mm::ptr<int32_t>(info, 3), mm::i64(info, 4), mm::i32(info, 5), mm::i64(info, 6)),
           "moeCombine");
  return info.Env().Undefined();
}
// moeCombineBackward(dexpertOut|0, dweights|0, dy, expertOut, weights, order, positions, N, k, C)
template <typename K>
Napi::Value MoeCombineBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::moe_combine_backward(mm::ptr<uint16_t>(info, 0), mm::ptr(info, 1), mm::ptr<uint16_t>(info, 2),
                                   mm::ptr<uint16_t>(info, 3), mm::ptr(info, 4), mm::ptr<int32_t>(info, 5),
                                   mm::ptr<int32_t>(info, 6), mm::i64(info, 7), mm::i32(info, 8), mm::i64(info, 9)),
           "moeCombineBackward");
  return info.Env().Undefined();
}

// ---- appended: the rest of the training stages and decoding ----
// mul(out, outBf16, a, aBf16, b, bBf16, n): out = a * b
template <typename K>
Napi::Value Mul(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::mul(mm::ptr<void>(info, 0), mm::flag(info, 1), mm::ptr<void>(info, 2), mm::flag(info, 3),
                  mm::ptr<void>(info, 4), mm::flag(info, 5), mm::i64(info, 6)),
           "mul");
  return info.Env().Undefined();
}
// tokenLogprobs(logp, lse, logits, targets, N, V)
template <typename K>
Napi::Value TokenLogprobs(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::token_logprobs(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr<uint16_t>(info, 2), mm::ptr<int32_t>(info, 3),
                             mm::i64(info, 4), mm::i32(info, 5)),
           "tokenLogprobs");
  return info.Env().Undefined();
}
// tokenLogprobsBackward(grad, accumulate, logits, lse, targets, dlogp, N, V)
template <typename K>
Napi::Value TokenLogprobsBackward(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::token_logprobs_backward(mm::ptr<uint16_t>(info, 0), mm::flag(info, 1), mm::ptr<uint16_t>(info, 2),
                                      mm::ptr(info, 3), mm::ptr<int32_t>(info, 4), mm::ptr(info, 5), mm::i64(info, 6),
                                      mm::i32(info, 7)),
           "tokenLogprobsBackward");
  return info.Env().Undefined();
}
// adamL2(master, param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale, seed)
template <typename K>
Napi::Value AdamL2(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::adam_l2(mm::ptr(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                      mm::ptr(info, 4), mm::i64(info, 5), mm::f32(info, 6), mm::f32(info, 7), mm::f32(info, 8),
                      mm::f32(info, 9), mm::f32(info, 10), mm::f32(info, 11), mm::f32(info, 12), mm::f32(info, 13),
                      static_cast<uint64_t>(mm::i64(info, 14))),
           "adamL2");
  return info.Env().Undefined();
}
// attentionDecode(out, q, k, v, B, T, Tk, NH, NKV, HD, scale, causal)
template <typename K>
Napi::Value AttentionDecode(const Napi::CallbackInfo& info) {
  check<K>(info,
           K::attention_decode(mm::ptr<uint16_t>(info, 0), mm::ptr<uint16_t>(info, 1), mm::ptr<uint16_t>(info, 2),
                               mm::ptr<uint16_t>(info, 3), mm::i32(info, 4), mm::i32(info, 5), mm::i32(info, 6),
                               mm::i32(info, 7), mm::i32(info, 8), mm::i32(info, 9), mm::f32(info, 10),
                               mm::flag(info, 11)),
           "attentionDecode");
  return info.Env().Undefined();
}

template <typename K>
void bind_backend(Napi::Env env, Napi::Object table) {
  mm::def(env, table, "alloc", Alloc<K>);
  mm::def(env, table, "free", Free<K>);
  mm::def(env, table, "upload", Upload<K>);
  mm::def(env, table, "download", Download<K>);
  mm::def(env, table, "copy", Copy<K>);
  mm::def(env, table, "zero", Zero<K>);
  mm::def(env, table, "fill", Fill<K>);
  mm::def(env, table, "synchronize", Synchronize<K>);
  mm::def(env, table, "castF32ToBf16", CastF32ToBf16<K>);
  mm::def(env, table, "castBf16ToF32", CastBf16ToF32<K>);
  mm::def(env, table, "axpy", Axpy<K>);
  mm::def(env, table, "rmsnormForward", RmsnormForward<K>);
  mm::def(env, table, "rmsnormBackward", RmsnormBackward<K>);
  mm::def(env, table, "swigluForward", SwigluForward<K>);
  mm::def(env, table, "swigluBackward", SwigluBackward<K>);
  mm::def(env, table, "rope", Rope<K>);
  mm::def(env, table, "embeddingForward", EmbeddingForward<K>);
  mm::def(env, table, "embeddingBackward", EmbeddingBackward<K>);
  mm::def(env, table, "crossEntropy", CrossEntropy<K>);
  mm::def(env, table, "adamw", Adamw<K>);
  mm::def(env, table, "sumSquares", SumSquares<K>);
  mm::def(env, table, "gemm", Gemm<K, false>);
  mm::def(env, table, "gemmTiled", Gemm<K, true>);
  mm::def(env, table, "attentionForward", AttentionForward<K>);
  mm::def(env, table, "attentionBackward", AttentionBackward<K>);
  mm::def(env, table, "moeRoute", MoeRoute<K>);
  mm::def(env, table, "moeRouteBackward", MoeRouteBackward<K>);
  mm::def(env, table, "moeAuxLoss", MoeAuxLoss<K>);
  mm::def(env, table, "moeAuxLossBackward", MoeAuxLossBackward<K>);
  mm::def(env, table, "moeDispatch", MoeDispatch<K>);
  mm::def(env, table, "moeDispatchBackward", MoeDispatchBackward<K>);
  mm::def(env, table, "moeCombine", MoeCombine<K>);
  mm::def(env, table, "moeCombineBackward", MoeCombineBackward<K>);
  mm::def(env, table, "mul", Mul<K>);
  mm::def(env, table, "tokenLogprobs", TokenLogprobs<K>);
  mm::def(env, table, "tokenLogprobsBackward", TokenLogprobsBackward<K>);
  mm::def(env, table, "adamL2", AdamL2<K>);
  mm::def(env, table, "attentionDecode", AttentionDecode<K>);
}

#ifdef MINIMIND_WITH_CUDA_EMU
// configure(schedule: 0 forward | 1 reverse | 2 random, seed, poison): how the emulator runs kernels.
Napi::Value Configure(const Napi::CallbackInfo& info) {
  const int schedule = mm::i32(info, 0);
  if (schedule < 0 || schedule > 2) throw Napi::RangeError::New(info.Env(), "cudaEmu.configure: schedule must be 0, 1 or 2");
  mm::emu_configure(static_cast<mm::EmuSchedule>(schedule), static_cast<uint64_t>(mm::i64(info, 1)), mm::flag(info, 2));
  return info.Env().Undefined();
}
#endif

}  // namespace

MM_DEVICE_BINDINGS(cuda_kernels) {
#ifdef MINIMIND_WITH_CUDA
  bind_backend<mm::CudaDevice>(env, cuda);
#endif
#ifdef MINIMIND_WITH_CUDA_EMU
  bind_backend<mm::CudaEmulated>(env, cuda_emu);
  mm::def(env, cuda_emu, "configure", Configure);
#endif
}

#endif
