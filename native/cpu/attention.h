// Causal multi-head attention with grouped KV heads (GQA), flash-style (native/cpu/attention.cc).
//
// Layouts (row-major, contiguous), as MiniMind holds them before its transpose:
//   q, out, dout, dq   [B, T,  NH,  HD]
//   k, v, dk, dv       [B, Tk, NKV, HD]
//   lse                [B, NH, T]        natural-log logsumexp of each query's scaled scores (fp32)
// Query head h reads KV head h / (NH / NKV). Scores are scaled by 1/sqrt(HD). With `causal`, query i sits
// at absolute position Tk - T + i (a KV cache holds the first Tk - T keys, so Tk >= T) and sees keys
// 0 .. Tk - T + i. HD must be a multiple of 16, at most kMaxHeadDim.
#pragma once
#include <cstdint>

namespace mm::cpu {

constexpr int64_t kMaxHeadDim = 128;

struct AttentionShape {
  int64_t B, T, Tk, NH, NKV, HD;
  bool causal;
};

// Which vector code runs: kBest picks the widest the CPU has; tests force the others to check every path.
// A request the CPU cannot run falls back to the next narrower one.
enum class VectorIsa { kBest = 0, kPortable = 1, kAvx2 = 2, kAvx512 = 3 };

// out = softmax(q k^T / sqrt(HD) + mask) v, and the logsumexp each row needs for the backward.
void attention_forward(const AttentionShape& s, float* out, float* lse, const float* q, const float* k,
                       const float* v, VectorIsa isa = VectorIsa::kBest);

// Accumulates (+=) the gradients of q, k and v given dout, recomputing the probabilities from lse.
// Deterministic: each (batch, KV head) is one task that owns its slices of dq, dk and dv.
void attention_backward(const AttentionShape& s, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out, const float* lse,
                        VectorIsa isa = VectorIsa::kBest);

}  // namespace mm::cpu
