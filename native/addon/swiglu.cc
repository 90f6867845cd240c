// Bindings: SwiGLU (see native/cpu/swiglu.h). Arguments are addresses (0 for "none"), counts and flags.
#include "binding.h"
#include "swiglu.h"

namespace {

// swigluForward(out, a, b, n)
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  mm::cpu::swiglu_forward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
}

// swigluBackward(da, daAccumulate, db, dbAccumulate, dout, a, b, n)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  mm::cpu::swiglu_backward(mm::ptr(info, 0), mm::flag(info, 1), mm::ptr(info, 2), mm::flag(info, 3),
                           mm::ptr(info, 4), mm::ptr(info, 5), mm::ptr(info, 6), mm::i64(info, 7));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(swiglu) {
  mm::def(env, cpu, "swigluForward", SwigluForward);
  mm::def(env, cpu, "swigluBackward", SwigluBackward);
}
