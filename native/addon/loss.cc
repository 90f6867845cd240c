// Bindings: softmax cross-entropy (see native/cpu/loss.h). Bad targets throw a RangeError that names the
// row and the value. An ignore index of null/undefined means "none".
#include <limits>
#include <string>

#include "binding.h"
#include "loss.h"

namespace {

constexpr int32_t kNoIgnoreIndex = std::numeric_limits<int32_t>::min();

int32_t ignore_index(const Napi::CallbackInfo& info, size_t i) {
  return info[i].IsNumber() ? mm::i32(info, i) : kNoIgnoreIndex;
}

void check_targets(const Napi::CallbackInfo& info, const char* op, const int32_t* targets, int64_t N, int64_t V,
                   int32_t ignore) {
  const int64_t bad = mm::cpu::first_invalid_target(targets, N, V, ignore);
  if (bad >= 0) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": targets[" + std::to_string(bad) + "] = " +
                                                std::to_string(targets[bad]) + " is outside the vocabulary [0, " +
                                                std::to_string(V) + ")");
  }
}

// crossEntropyForward(loss, lse, logits, targets, mask, N, V, ignoreIndex) -> sum of weights
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  const int32_t* targets = mm::ptr<int32_t>(info, 3);
  const int64_t N = mm::i64(info, 5), V = mm::i64(info, 6);
  const int32_t ignore = ignore_index(info, 7);
  check_targets(info, "crossEntropy", targets, N, V, ignore);
  const double weights = mm::cpu::cross_entropy_forward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2),
                                                        targets, mm::ptr(info, 4), N, V, ignore);
  return Napi::Number::New(info.Env(), weights);
}

// tokenLogprobsForward(logp, lse, logits, targets, N, V)
Napi::Value TokenLogprobsForward(const Napi::CallbackInfo& info) {
  const int32_t* targets = mm::ptr<int32_t>(info, 3);
  const int64_t N = mm::i64(info, 4), V = mm::i64(info, 5);
  check_targets(info, "tokenLogProbs", targets, N, V, kNoIgnoreIndex);
  mm::cpu::token_logprobs_forward(mm::ptr(info, 0), mm::ptr(info, 1), mm::ptr(info, 2), targets, N, V);
  return info.Env().Undefined();
}

// softmaxXentBackward(grad, accumulate, logits, lse, targets, rowScale, scalar, scale, N, V, ignoreIndex)
Napi::Value SoftmaxXentBackward(const Napi::CallbackInfo& info) {
  mm::cpu::softmax_xent_backward(mm::ptr(info, 0), mm::flag(info, 1), mm::ptr(info, 2), mm::ptr(info, 3),
                                 mm::ptr<int32_t>(info, 4), mm::ptr(info, 5), mm::ptr(info, 6), mm::num(info, 7),
                                 mm::i64(info, 8), mm::i64(info, 9), ignore_index(info, 10));
  return info.Env().Undefined();
}

}  // namespace

MM_BINDINGS(loss) {
  mm::def(env, cpu, "crossEntropyForward", CrossEntropyForward);
  mm::def(env, cpu, "tokenLogprobsForward", TokenLogprobsForward);
  mm::def(env, cpu, "softmaxXentBackward", SoftmaxXentBackward);
}
