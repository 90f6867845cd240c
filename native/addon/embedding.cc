// Bindings: embedding lookup and gradient (see native/cpu/embedding.h). Bad ids throw a RangeError that
// names the position and the value.
#include <string>

#include "binding.h"
#include "embedding.h"

namespace {

void check_ids(const Napi::CallbackInfo& info, const int32_t* ids, int64_t n, int64_t V) {
  const int64_t bad = mm::cpu::first_invalid_id(ids, n, V);
  if (bad >= 0) {
    throw Napi::RangeError::New(info.Env(), "embedding: ids[" + std::to_string(bad) + "] = " +
                                                std::to_string(ids[bad]) + " is outside the vocabulary [0, " +
                                                std::to_string(V) + ")");
  }
}

// embeddingForward(out, ids, weight, n, V, C): checks every id first.
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  const int32_t* ids = mm::ptr<int32_t>(info, 1);
  const int64_t n = mm::i64(info, 3), V = mm::i64(info, 4);
  check_ids(info, ids, n, V);
  mm::cpu::embedding_forward(mm::ptr(info, 0), ids, mm::ptr(info, 2), n, mm::i64(info, 5));
  return info.Env().Undefined();
}

// embeddingBackward(dweight, ids, dout, n, V, C)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  const int32_t* ids = mm::ptr<int32_t>(info, 1);
  const int64_t n = mm::i64(info, 3), V = mm::i64(info, 4);
  check_ids(info, ids, n, V);
  mm::cpu::embedding_backward(mm::ptr(info, 0), ids, mm::ptr(info, 2), n, V, mm::i64(info, 5));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(embedding) {
  mm::def(env, cpu, "embeddingForward", EmbeddingForward);
  mm::def(env, cpu, "embeddingBackward", EmbeddingBackward);
}
