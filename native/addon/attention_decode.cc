// Bindings: decode attention (see native/cpu/attention_decode.h for layouts). Arguments are tensor addresses,
// then B, T, Tk, NH, NKV, HD, causal, and an ISA (0 best, 1 portable, 2 AVX2 = portable here, 3 AVX-512).
//   attentionDecode(out, q, k, v, B, T, Tk, NH, NKV, HD, causal, isa)
#include "attention_decode.h"
#include "binding.h"

namespace {

Napi::Value AttentionDecode(const Napi::CallbackInfo& info) {
  const mm::cpu::AttentionShape s{mm::i64(info, 4), mm::i64(info, 5), mm::i64(info, 6), mm::i64(info, 7),
                                  mm::i64(info, 8), mm::i64(info, 9), mm::flag(info, 10)};
  const auto isa = static_cast<mm::cpu::VectorIsa>(info.Length() > 11 ? mm::i32(info, 11) : 0);
  mm::cpu::attention_decode(s, mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3), isa);
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(attention_decode) { mm::def(env, cpu, "attentionDecode", AttentionDecode); }
