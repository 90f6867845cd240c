// Attention for decoding (native/cpu/attention_decode.cc): a few new queries (T small, typically 1) against a
// KV cache, forward only. Same layouts and semantics as attention_forward (attention.h):
//   q, out [B, T, NH, HD],  k, v [B, Tk, NKV, HD]
// Query head h reads KV head h / (NH / NKV); scores are scaled by 1/sqrt(HD); with `causal`, query i sits at
// absolute position Tk - T + i and sees keys 0 .. Tk - T + i. HD must be a multiple of 16, at most kMaxHeadDim.
#pragma once
#include <cstdint>

#include "attention.h"

namespace mm::cpu {

// out = softmax(q k^T / sqrt(HD) + mask) v. No logsumexp (there is no backward). kAvx2 runs the portable code.
void attention_decode(const AttentionShape& s, float* out, const float* q, const float* k, const float* v,
                      VectorIsa isa = VectorIsa::kBest);

}  // namespace mm::cpu
