// Bindings: elementwise ops (see native/cpu/elementwise.cc). Arguments are addresses and counts.
#include "binding.h"
#include "elementwise.h"

namespace {

Napi::Value Add(const Napi::CallbackInfo& info) {
  mm::cpu::add(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
}

Napi::Value Mul(const Napi::CallbackInfo& info) {
  mm::cpu::mul(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
}

Napi::Value Scale(const Napi::CallbackInfo& info) {
  mm::cpu::scale(mm::ptr(info, 0), mm::ptr(info, 1), mm::f32(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
}

Napi::Value Axpy(const Napi::CallbackInfo& info) {
  mm::cpu::axpy(mm::ptr(info, 0), mm::ptr(info, 1), mm::f32(info, 2), mm::i64(info, 3));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(elementwise) {
  mm::def(env, cpu, "add", Add);
  mm::def(env, cpu, "mul", Mul);
  mm::def(env, cpu, "scale", Scale);
  mm::def(env, cpu, "axpy", Axpy);
}
