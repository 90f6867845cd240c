// Softmax cross-entropy kernels (native/cpu/loss.cc) over logits[N, V] (N = B*T tokens, V = vocab) and
// i32 targets[N]. Only per-row statistics are kept: lse[i] = logsumexp(logits[i, :]) (never a V-wide
// probability buffer). loss_i = lse_i - logits[i, target_i].
#pragma once
#include <cstdint>

namespace mm::cpu {

// Index of the first target outside [0, V) that is not ignore_index, or -1 when all are valid.
int64_t first_invalid_target(const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index);

// Mean loss: *loss = sum_i loss_i * w_i / sum_i w_i (0 when the sum of weights is 0), where
// w_i = 0 for target == ignore_index, else mask[i] (1 when mask is null). Saves lse[N]; returns sum_i w_i.
// The sums run in double, serially, in row order (deterministic).
double cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets,
                             const float* mask, int64_t N, int64_t V, int32_t ignore_index);

// logp[i] = logits[i, targets[i]] - lse[i]; lse[N] is saved too. Targets must be valid.
void token_logprobs_forward(float* logp, float* lse, const float* logits, const int32_t* targets, int64_t N,
                            int64_t V);

// The gradient of both: grad[i, :] = (softmax(logits[i, :]) - onehot(targets[i])) * c_i with
//   c_i = (row_scale ? row_scale[i] : 1) * (scalar ? *scalar : 1) * scale,   and c_i = 0 when
//   targets[i] == ignore_index.
// grad may be the logits buffer itself (the gradient then overwrites the logits, row by row); otherwise
// grad accumulates (+=) when `accumulate` is set and is overwritten when not.
void softmax_xent_backward(float* grad, bool accumulate, const float* logits, const float* lse,
                           const int32_t* targets, const float* row_scale, const float* scalar, double scale,
                           int64_t N, int64_t V, int32_t ignore_index);

}  // namespace mm::cpu
