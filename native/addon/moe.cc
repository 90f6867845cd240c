// Bindings: mixture-of-experts routing (see native/cpu/moe.cc). Arguments are addresses and sizes; an
// optional gradient buffer is passed as address 0 when no gradient reached it.
#include "binding.h"
#include "moe.h"

namespace {

Napi::Value MoeRoute(const Napi::CallbackInfo& info) {
  mm::cpu::moe_route(mm::ptr(info, 0), mm::i64(info, 1), mm::i32(info, 2), mm::i32(info, 3), mm::flag(info, 4),
                     mm::ptr(info, 5), mm::ptr(info, 6), mm::ptr<int32_t>(info, 7), mm::ptr<int32_t>(info, 8),
                     mm::ptr<int32_t>(info, 9), mm::ptr<int32_t>(info, 10));
  return info.Env().Undefined();
}

Napi::Value MoeRouteBackward(const Napi::CallbackInfo& info) {
  mm::cpu::moe_route_backward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr<int32_t>(info, 3),
                              mm::ptr(info, 4), mm::ptr(info, 5), mm::i64(info, 6), mm::i32(info, 7),
                              mm::i32(info, 8), mm::flag(info, 9));
  return info.Env().Undefined();
}

Napi::Value MoeAuxLoss(const Napi::CallbackInfo& info) {
  mm::cpu::moe_aux_loss(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3), mm::i64(info, 4),
                        mm::i32(info, 5));
  return info.Env().Undefined();
}

Napi::Value MoeAuxLossBackward(const Napi::CallbackInfo& info) {
  mm::cpu::moe_aux_loss_backward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3),
                                 mm::i64(info, 4), mm::i32(info, 5));
  return info.Env().Undefined();
}

Napi::Value MoeDispatch(const Napi::CallbackInfo& info) {
  mm::cpu::moe_dispatch(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr<int32_t>(info, 2), mm::i64(info, 3),
                        mm::i32(info, 4), mm::i64(info, 5));
  return info.Env().Undefined();
}

Napi::Value MoeDispatchBackward(const Napi::CallbackInfo& info) {
  mm::cpu::moe_dispatch_backward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr<int32_t>(info, 2), mm::i64(info, 3),
                                 mm::i32(info, 4), mm::i64(info, 5));
  return info.Env().Undefined();
}

Napi::Value MoeCombine(const Napi::CallbackInfo& info) {
  mm::cpu::moe_combine(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr<int32_t>(info, 3),
                       mm::i64(info, 4), mm::i32(info, 5), mm::i64(info, 6));
  return info.Env().Undefined();
}

Napi::Value MoeCombineBackward(const Napi::CallbackInfo& info) {
  mm::cpu::moe_combine_backward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                                mm::ptr(info, 4), mm::ptr<int32_t>(info, 5), mm::ptr<int32_t>(info, 6),
                                mm::i64(info, 7), mm::i32(info, 8), mm::i64(info, 9));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(moe) {
  mm::def(env, cpu, "moeRoute", MoeRoute);
  mm::def(env, cpu, "moeRouteBackward", MoeRouteBackward);
  mm::def(env, cpu, "moeAuxLoss", MoeAuxLoss);
  mm::def(env, cpu, "moeAuxLossBackward", MoeAuxLossBackward);
  mm::def(env, cpu, "moeDispatch", MoeDispatch);
  mm::def(env, cpu, "moeDispatchBackward", MoeDispatchBackward);
  mm::def(env, cpu, "moeCombine", MoeCombine);
  mm::def(env, cpu, "moeCombineBackward", MoeCombineBackward);
}
