// Bindings: flash-style attention (see native/cpu/attention.h for layouts). Arguments are tensor addresses,
// then B, T, Tk, NH, NKV, HD, causal, and an ISA (0 best, 1 portable, 2 AVX2, 3 AVX-512; tests force each).
//   attentionForward(out, lse, q, k, v, B, T, Tk, NH, NKV, HD, causal, isa)
//   attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, Tk, NH, NKV, HD, causal, isa)
#include "attention.h"
#include "binding.h"

namespace {

mm::cpu::AttentionShape shape_at(const Napi::CallbackInfo& info, size_t i) {
  return {mm::i64(info, i), mm::i64(info, i + 1), mm::i64(info, i + 2), mm::i64(info, i + 3),
          mm::i64(info, i + 4), mm::i64(info, i + 5), mm::flag(info, i + 6)};
}

mm::cpu::VectorIsa isa_at(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<mm::cpu::VectorIsa>(info.Length() > i ? mm::i32(info, i) : 0);
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  mm::cpu::attention_forward(shape_at(info, 5), mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2),
                             mm::ptr(info, 3), mm::ptr(info, 4), isa_at(info, 12));
  return info.Env().Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  mm::cpu::attention_backward(shape_at(info, 9), mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2),
                              mm::ptr(info, 3), mm::ptr(info, 4), mm::ptr(info, 5), mm::ptr(info, 6),
                              mm::ptr(info, 7), mm::ptr(info, 8), isa_at(info, 16));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(attention) {
  mm::def(env, cpu, "attentionForward", AttentionForward);
  mm::def(env, cpu, "attentionBackward", AttentionBackward);
}
