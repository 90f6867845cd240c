// Bindings: RMSNorm (see native/cpu/norm.h). Arguments are addresses (0 for "none"), sizes and flags.
#include "binding.h"
#include "norm.h"

namespace {

// rmsnormForward(y, rstd, x, weight, rows, C, eps)
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  mm::cpu::rmsnorm_forward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                           mm::i64(info, 4), mm::i64(info, 5), mm::f32(info, 6));
  return info.Env().Undefined();
}

// addRmsnormForward(sum, y, rstd, residual, x, weight, rows, C, eps)
Napi::Value AddRmsnormForward(const Napi::CallbackInfo& info) {
  mm::cpu::add_rmsnorm_forward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                               mm::ptr(info, 4), mm::ptr(info, 5), mm::i64(info, 6), mm::i64(info, 7),
                               mm::f32(info, 8));
  return info.Env().Undefined();
}

// rmsnormBackward(dx, dxAccumulate, dx2, dx2Accumulate, dweight, dy, dsum, x, weight, rstd, rows, C)
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  mm::cpu::rmsnorm_backward(mm::ptr(info, 0), mm::flag(info, 1), mm::ptr(info, 2), mm::flag(info, 3),
                            mm::ptr(info, 4), mm::ptr(info, 5), mm::ptr(info, 6), mm::ptr(info, 7),
                            mm::ptr(info, 8), mm::ptr(info, 9), mm::i64(info, 10), mm::i64(info, 11));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(norm) {
  mm::def(env, cpu, "rmsnormForward", RmsnormForward);
  mm::def(env, cpu, "addRmsnormForward", AddRmsnormForward);
  mm::def(env, cpu, "rmsnormBackward", RmsnormBackward);
}
