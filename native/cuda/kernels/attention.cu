// Causal self-attention with grouped key/value heads, computed flash-style: the T x T score matrix is never
// stored. Per query row an online softmax keeps a running max m, sum l and weighted value sum; the forward saves
// lse = m + log(l) per row, from which the backward recomputes every probability.
//   forward:  out_t = sum_{s<=t} P_ts v_s,  P_ts = exp(scale q_t.k_s - lse_t)
//   backward: D_t = dO_t.out_t;  dS_ts = P_ts (dO_t.v_s - D_t)
//             dq_t += scale sum_s dS_ts k_s;  dk_s += scale sum_t dS_ts q_t;  dv_s += sum_t P_ts dO_t
// Shapes: q, out, dout, dq [B, T, NH, HD]; k, v, dk, dv [B, T, NKV, HD] (query head h reads key/value head
// h / (NH / NKV)); lse [B, NH, T] fp32. bf16 storage, fp32 math; HD a multiple of 32, at most 256.
// One warp per row; dq walks keys, dk/dv walk queries (and the group's heads), so no two warps write the same
// gradient and the sums have a fixed order: deterministic, without atomics.
// This is the simple CUDA-core version (dot products by warp shuffles); a tensor-core (WMMA) tiling is future work.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kWarps = 4;        // rows per block
constexpr int kMaxPerLane = 8;   // HD / 32 <= 8

struct Shape {
  int B, T, NH, NKV, HD;
  float scale;
  __device__ int64_t q_row(int b, int t, int h) const { return ((int64_t(b) * T + t) * NH + h) * HD; }
  __device__ int64_t kv_row(int b, int t, int g) const { return ((int64_t(b) * T + t) * NKV + g) * HD; }
  __device__ int64_t lse_index(int b, int h, int t) const { return (int64_t(b) * NH + h) * T + t; }
};

// x[lane + 32 j] for the lane's j < HD/32, as floats (zeros past HD).
__device__ inline void load_row(float* dst, const bf16* row, int per_lane, int lane) {
  for (int j = 0; j < kMaxPerLane; ++j) dst[j] = j < per_lane ? __bfloat162float(row[lane + 32 * j]) : 0.f;
}
__device__ inline float row_dot(const float* a, const bf16* row, int per_lane, int lane) {
  float sum = 0.f;
  for (int j = 0; j < kMaxPerLane; ++j)
    if (j < per_lane) sum += a[j] * __bfloat162float(row[lane + 32 * j]);
  return warp_sum(sum);
}
__device__ inline void add_row(bf16* row, const float* add, int per_lane, int lane) {
  for (int j = 0; j < kMaxPerLane; ++j)
    if (j < per_lane) row[lane + 32 * j] = __float2bfloat16(__bfloat162float(row[lane + 32 * j]) + add[j]);
}

__global__ void attention_forward_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, Shape s) {
  const int lane = threadIdx.x % 32, per_lane = s.HD / 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;  // ((b T + t) NH + h)
  if (row >= int64_t(s.B) * s.T * s.NH) return;
  const int h = row % s.NH, t = row / s.NH % s.T, b = row / (int64_t(s.NH) * s.T), g = h / (s.NH / s.NKV);
  float qv[kMaxPerLane], acc[kMaxPerLane], vv[kMaxPerLane];
  load_row(qv, q + s.q_row(b, t, h), per_lane, lane);
  for (int j = 0; j < kMaxPerLane; ++j) acc[j] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int key = 0; key <= t; ++key) {
    const float score = row_dot(qv, k + s.kv_row(b, key, g), per_lane, lane) * s.scale;
    const float m_new = fmaxf(m, score), correction = __expf(m - m_new), p = __expf(score - m_new);
    l = l * correction + p;
    load_row(vv, v + s.kv_row(b, key, g), per_lane, lane);
    for (int j = 0; j < kMaxPerLane; ++j) acc[j] = acc[j] * correction + p * vv[j];
    m = m_new;
  }
  bf16* o = out + s.q_row(b, t, h);
  for (int j = 0; j < kMaxPerLane; ++j)
    if (j < per_lane) o[lane + 32 * j] = __float2bfloat16(acc[j] / l);
  if (lane == 0) lse[s.lse_index(b, h, t)] = m + logf(l);
}

__global__ void attention_backward_dq_kernel(bf16* dq, const bf16* dout, const bf16* out, const float* lse,
                                             const bf16* q, const bf16* k, const bf16* v, Shape s) {
  const int lane = threadIdx.x % 32, per_lane = s.HD / 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= int64_t(s.B) * s.T * s.NH) return;
  const int h = row % s.NH, t = row / s.NH % s.T, b = row / (int64_t(s.NH) * s.T), g = h / (s.NH / s.NKV);
  float qv[kMaxPerLane], dov[kMaxPerLane], kv[kMaxPerLane], grad[kMaxPerLane];
  load_row(qv, q + s.q_row(b, t, h), per_lane, lane);
  load_row(dov, dout + s.q_row(b, t, h), per_lane, lane);
  const float D = row_dot(dov, out + s.q_row(b, t, h), per_lane, lane);
  const float row_lse = lse[s.lse_index(b, h, t)];
  for (int j = 0; j < kMaxPerLane; ++j) grad[j] = 0.f;
  for (int key = 0; key <= t; ++key) {
    const float p = __expf(row_dot(qv, k + s.kv_row(b, key, g), per_lane, lane) * s.scale - row_lse);
    const float dscore = p * (row_dot(dov, v + s.kv_row(b, key, g), per_lane, lane) - D);
    load_row(kv, k + s.kv_row(b, key, g), per_lane, lane);
    for (int j = 0; j < kMaxPerLane; ++j) grad[j] += dscore * s.scale * kv[j];
  }
  add_row(dq + s.q_row(b, t, h), grad, per_lane, lane);
}

__global__ void attention_backward_dkv_kernel(bf16* dk, bf16* dv, const bf16* dout, const bf16* out,
                                              const float* lse, const bf16* q, const bf16* k, const bf16* v,
                                              Shape s) {
  const int lane = threadIdx.x % 32, per_lane = s.HD / 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;  // ((b T + key) NKV + g)
  if (row >= int64_t(s.B) * s.T * s.NKV) return;
  const int g = row % s.NKV, key = row / s.NKV % s.T, b = row / (int64_t(s.NKV) * s.T);
  const int group = s.NH / s.NKV;
  float kv[kMaxPerLane], vv[kMaxPerLane], qv[kMaxPerLane], dov[kMaxPerLane], dk_acc[kMaxPerLane], dv_acc[kMaxPerLane];
  load_row(kv, k + s.kv_row(b, key, g), per_lane, lane);
  load_row(vv, v + s.kv_row(b, key, g), per_lane, lane);
  for (int j = 0; j < kMaxPerLane; ++j) dk_acc[j] = dv_acc[j] = 0.f;
  for (int h = g * group; h < (g + 1) * group; ++h)
    for (int t = key; t < s.T; ++t) {
      load_row(qv, q + s.q_row(b, t, h), per_lane, lane);
      load_row(dov, dout + s.q_row(b, t, h), per_lane, lane);
      float score = 0.f, dp = 0.f;
      for (int j = 0; j < kMaxPerLane; ++j) {
        score += qv[j] * kv[j];
        dp += dov[j] * vv[j];
      }
      const float p = __expf(warp_sum(score) * s.scale - lse[s.lse_index(b, h, t)]);
      const float dscore = p * (warp_sum(dp) - row_dot(dov, out + s.q_row(b, t, h), per_lane, lane));
      for (int j = 0; j < kMaxPerLane; ++j) {
        dv_acc[j] += p * dov[j];
        dk_acc[j] += dscore * s.scale * qv[j];
      }
    }
  add_row(dk + s.kv_row(b, key, g), dk_acc, per_lane, lane);
  add_row(dv + s.kv_row(b, key, g), dv_acc, per_lane, lane);
}

int check_shape(int B, int T, int NH, int NKV, int HD) {
  if (B <= 0 || T <= 0) return 0;
  if (HD % 32 != 0 || HD > 32 * kMaxPerLane) return MM_BACKEND::fail("attention: HD must be a multiple of 32, at most 256");
  if (NKV <= 0 || NH % NKV != 0) return MM_BACKEND::fail("attention: NH must be a multiple of NKV");
  return 0;
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::attention_forward(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                  int B, int T, int NH, int NKV, int HD, float scale) {
  if (int bad = check_shape(B, T, NH, NKV, HD)) return bad;
  if (B <= 0 || T <= 0) return 0;
  const Shape s{B, T, NH, NKV, HD, scale};
  MM_LAUNCH(attention_forward_kernel, blocks_for(int64_t(B) * T * NH, kWarps), 32 * kWarps, 0, 0)(
      as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s);
  return launch_status("attention_forward");
}

int MM_BACKEND::attention_backward(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout,
                                   const uint16_t* out, const float* lse, const uint16_t* q, const uint16_t* k,
                                   const uint16_t* v, int B, int T, int NH, int NKV, int HD, float scale) {
  if (int bad = check_shape(B, T, NH, NKV, HD)) return bad;
  if (B <= 0 || T <= 0) return 0;
  const Shape s{B, T, NH, NKV, HD, scale};
  MM_LAUNCH(attention_backward_dq_kernel, blocks_for(int64_t(B) * T * NH, kWarps), 32 * kWarps, 0, 0)(
      as_bf16(dq), as_bf16(dout), as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s);
  MM_LAUNCH(attention_backward_dkv_kernel, blocks_for(int64_t(B) * T * NKV, kWarps), 32 * kWarps, 0, 0)(
      as_bf16(dk), as_bf16(dv), as_bf16(dout), as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s);
  return launch_status("attention_backward");
}

}  // namespace mm
