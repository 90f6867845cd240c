// Bindings: rotary position embeddings (see native/cpu/rope.h).
//   ropeTable(cos, sin, maxT, headDim, theta)
//   rope(out, x, cos, sin, B, T, H, HD, offset, style (0 interleaved, 1 half), inverse)
#include "binding.h"
#include "rope.h"

namespace {

Napi::Value RopeTable(const Napi::CallbackInfo& info) {
  mm::cpu::rope_table(mm::ptr(info, 0), mm::ptr(info, 1), mm::i64(info, 2), mm::i64(info, 3), mm::f32(info, 4));
  return info.Env().Undefined();
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  mm::cpu::rope(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), mm::ptr(info, 3), mm::i64(info, 4),
                mm::i64(info, 5), mm::i64(info, 6), mm::i64(info, 7), mm::i64(info, 8),
                static_cast<mm::cpu::RopeStyle>(mm::i32(info, 9)), mm::flag(info, 10));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(rope) {
  mm::def(env, cpu, "ropeTable", RopeTable);
  mm::def(env, cpu, "rope", Rope);
}
