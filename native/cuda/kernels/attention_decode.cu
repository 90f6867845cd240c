// Decode attention: a few new queries per sequence (T small, typically the one new token) against a KV cache,
// forward only; the CUDA counterpart of native/cpu/attention_decode.cc.
//   q, out [B, T, NH, HD] bf16;  k, v [B, Tk, NKV, HD] bf16 (the cache's first Tk positions)
// Query head h reads KV head h / (NH / NKV); scores are scaled by `scale` (1/sqrt(HD)); with `causal`, query t
// sits at absolute position Tk - T + t and sees keys 0 .. Tk - T + t. HD a multiple of 16, at most 128.
//
// The training kernel (attention.cu) needs Tk = T and tiles 64 queries at a time; here one block takes one query
// row (b, t, h) and its 4 warps split the keys round-robin. Each key costs a warp one dot product (each lane
// holds HD/32 of the query's dims, then a warp sum) and an online-softmax step, in fp32:
//   s = scale q.k_j;  m' = max(m, s);  l = l e^(m - m') + e^(s - m');  acc = acc e^(m - m') + e^(s - m') v_j
// Then the warps' (m, l, acc) are merged through shared memory: out = sum_w acc_w e^(m_w - M) / sum_w l_w e^(m_w - M)
// with M = max_w m_w. Memory-bound on the cache: every key and value row is read once per query row.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 128;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

struct DecodeShape {
  int T, Tk, NH, NKV, HD;
  float scale;
  bool causal;
};

__global__ void attention_decode_kernel(bf16* out, const bf16* q, const bf16* k, const bf16* v, DecodeShape s) {
  MM_SHARED(float, warp_maxima, [kWarps]);
  MM_SHARED(float, warp_sums, [kWarps]);
  MM_SHARED(float, warp_acc, [kWarps][kMaxHeadDim]);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // blockIdx.x = (b * T + t) * NH + h: the row of q and out in their [B, T, NH, HD] layout.
  const int row = blockIdx.x;
  const int h = row % s.NH, t = (row / s.NH) % s.T, b = row / s.NH / s.T;
  const int kv_head = h / (s.NH / s.NKV);
  const int key_end = s.causal ? s.Tk - s.T + t + 1 : s.Tk;
  const int64_t kv_stride = int64_t(s.NKV) * s.HD;  // from one key position to the next
  const bf16* k_head = k + int64_t(b) * s.Tk * kv_stride + int64_t(kv_head) * s.HD;
  const bf16* v_head = v + int64_t(b) * s.Tk * kv_stride + int64_t(kv_head) * s.HD;

  // Lane `lane` owns dims lane, lane + 32, ... (below HD); the query is pre-scaled.
  float q_dims[kDimsPerLane], acc[kDimsPerLane];
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    q_dims[i] = d < s.HD ? __bfloat162float(q[int64_t(row) * s.HD + d]) * s.scale : 0.f;
    acc[i] = 0.f;
  }
  float running_max = -INFINITY, running_sum = 0.f;
  for (int j = warp; j < key_end; j += kWarps) {
    const bf16* key = k_head + j * kv_stride;
    const bf16* value = v_head + j * kv_stride;
    float dot = 0.f;
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < s.HD) dot += q_dims[i] * __bfloat162float(key[d]);
    }
    const float score = warp_sum(dot);
    const float new_max = fmaxf(running_max, score);
    const float rescale = __expf(running_max - new_max);  // 0 at the first key (running_max = -inf)
    const float p = __expf(score - new_max);
    running_sum = running_sum * rescale + p;
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < s.HD) acc[i] = acc[i] * rescale + p * __bfloat162float(value[d]);
    }
    running_max = new_max;
  }

  // Merge the warps. A warp that saw no key has max -inf and sum 0: its weight e^(-inf - M) is 0.
  if (lane == 0) {
    warp_maxima[warp] = running_max;
    warp_sums[warp] = running_sum;
  }
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < s.HD) warp_acc[warp][d] = acc[i];
  }
  __syncthreads();
  float block_max_score = -INFINITY;
  for (int w = 0; w < kWarps; ++w) block_max_score = fmaxf(block_max_score, warp_maxima[w]);
  for (int d = threadIdx.x; d < s.HD; d += blockDim.x) {
    float total = 0.f, weighted = 0.f;
    for (int w = 0; w < kWarps; ++w) {
      const float weight = __expf(warp_maxima[w] - block_max_score);
      total += warp_sums[w] * weight;
      weighted += warp_acc[w][d] * weight;
    }
    out[int64_t(row) * s.HD + d] = __float2bfloat16(weighted / total);
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::attention_decode(uint16_t* out, const uint16_t* q, const uint16_t* k, const uint16_t* v, int B, int T,
                                 int Tk, int NH, int NKV, int HD, float scale, bool causal) {
  if (B <= 0 || T <= 0) return 0;
  const char* where = "attention_decode (native/cuda/kernels/attention_decode.cu)";
  if (HD <= 0 || HD % 16 != 0 || HD > kMaxHeadDim)
    return fail((std::string(where) + ": HD must be a multiple of 16, at most 128").c_str());
  if (NKV <= 0 || NH % NKV != 0) return fail((std::string(where) + ": NH must be a multiple of NKV").c_str());
  if (Tk <= 0 || (causal && Tk < T)) return fail((std::string(where) + ": causal decoding needs Tk >= T > 0").c_str());
  const int64_t rows = int64_t(B) * T * NH;
  if (rows > 2147483647) return fail((std::string(where) + ": too many query rows for one launch").c_str());
  const DecodeShape s{T, Tk, NH, NKV, HD, scale, causal};
  MM_LAUNCH(attention_decode_kernel, static_cast<unsigned>(rows), 32 * kWarps, 0, 0)(as_bf16(out), as_bf16(q),
                                                                                     as_bf16(k), as_bf16(v), s);
  return launch_status("attention_decode");
}

}  // namespace mm
