// SwiGLU kernels (native/cpu/swiglu.cc): the gated activation of MiniMind's FeedForward, elementwise over
// n = rows * F values (rows = B*T, F = hidden, e.g. 1408), a = w1 x ("gate"), b = w3 x ("up").
//   out = silu(a) * b,  silu(a) = a * sigmoid(a)
#pragma once
#include <cstdint>

namespace mm::cpu {

void swiglu_forward(float* out, const float* a, const float* b, int64_t n);

// One pass: da = dout * b * silu'(a), db = dout * silu(a), with silu'(a) = s * (1 + a * (1 - s)), s = sigmoid(a).
// Each gradient accumulates (+=) when its flag is set, otherwise it is overwritten; either may be null.
void swiglu_backward(float* da, bool da_accumulate, float* db, bool db_accumulate, const float* dout,
                     const float* a, const float* b, int64_t n);

}  // namespace mm::cpu
