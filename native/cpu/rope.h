// Rotary position embeddings (native/cpu/rope.cc).
//   rope_table: cos/sin tables [max_t, HD/2], angle(p, i) = p * theta^(-2i/HD), computed in float32 exactly as
//               MiniMind's precompute_pos_cis (and MiniMind2's rotate_half tables, which hold the same numbers).
//   rope:       rotates x [B, T, H, HD] (rows of H*HD floats) at positions offset .. offset + T - 1.
//               kInterleaved pairs (x[2i], x[2i+1]) (MiniMind v1's complex form); kHalf pairs (x[i], x[i+HD/2])
//               (MiniMind2/Llama rotate_half). inverse rotates by the negative angle (the backward).
//               out may alias x (the in-place KV-cache path).
#pragma once
#include <cstdint>

namespace mm::cpu {

enum class RopeStyle { kInterleaved = 0, kHalf = 1 };

void rope_table(float* cos_table, float* sin_table, int64_t max_t, int64_t head_dim, float theta);

void rope(float* out, const float* x, const float* cos_table, const float* sin_table, int64_t B, int64_t T,
          int64_t H, int64_t HD, int64_t offset, RopeStyle style, bool inverse);

}  // namespace mm::cpu
