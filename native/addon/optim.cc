// Bindings: optimizer kernels (see native/cpu/optim.h).
#include "binding.h"
#include "optim.h"

namespace {

// adamStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, decoupled, step)
Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  const mm::cpu::AdamHyper h{mm::num(info, 5), mm::num(info, 6), mm::num(info, 7), mm::num(info, 8),
                             mm::num(info, 9), mm::flag(info, 10), mm::i64(info, 11)};
  mm::cpu::adam_step(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3), mm::i64(info, 4), h);
  return info.Env().Undefined();
}

// sumSquares(x, n) -> number (double)
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), mm::cpu::sum_squares(mm::ptr(info, 0), mm::i64(info, 1)));
}

}  // namespace

MM_BINDINGS(optim) {
  mm::def(env, cpu, "adamStep", AdamStep);
  mm::def(env, cpu, "sumSquares", SumSquares);
}
