// Decode attention: a few new queries per sequence (T small, typically the one new token) against a KV cache,
// forward only; the CUDA counterpart of native/cpu/attention_decode.cc.
//   q, out [B, T, NH, HD] bf16;  k, v [B, Tk, NKV, HD] bf16 (the cache's first Tk positions)
// Query head h reads KV head h / (NH / NKV); scores are scaled by `scale` (1/sqrt(HD)); with `causal`, query t
// sits at absolute position Tk - T + t and sees keys 0 .. Tk - T + t. HD a multiple of 16, at most 128.
//
// The training kernel (attention.cu) needs Tk = T and tiles 64 queries at a time; here one block takes one query
// row (b, t, h), and its 4 warps take chunks of 32 keys in turn. In a chunk, lane l scores key j0 + l (a whole
// dot product against the query, which the block keeps in shared memory), the warp updates its online softmax
// once for all 32 keys, and then adds the 32 weighted value rows, each lane owning HD/32 of the output dims:
//   s_l = scale q.k_l;  m' = max(m, max_l s_l);  p_l = e^(s_l - m');  l = l e^(m - m') + sum_l p_l
//   acc = acc e^(m - m') + sum_l p_l v_l                                              (all in fp32)
// So a warp pays one max and one sum reduction per 32 keys, and the value loads of a chunk are independent of
// each other. Then the warps' (m, l, acc) are merged through shared memory:
//   out = sum_w acc_w e^(m_w - M) / sum_w l_w e^(m_w - M),  M = max_w m_w.
// Memory-bound on the cache: every key and value row is read once per query row.
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
  MM_SHARED(float, query, [kMaxHeadDim]);
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

  // The query, pre-scaled, for every lane's dot products.
  for (int d = threadIdx.x; d < s.HD; d += blockDim.x) query[d] = __bfloat162float(q[int64_t(row) * s.HD + d]) * s.scale;
  __syncthreads();

  // Lane `lane` owns output dims lane, lane + 32, ... (below HD).
  float acc[kDimsPerLane] = {};
  float running_max = -INFINITY, running_sum = 0.f;
  for (int j0 = warp * 32; j0 < key_end; j0 += kWarps * 32) {
    const int j = j0 + lane;
    float score = -INFINITY;
    if (j < key_end) {
      const bf16* key = k_head + j * kv_stride;
      score = 0.f;
      for (int d = 0; d < s.HD; ++d) score += query[d] * __bfloat162float(key[d]);
    }
    // Key j0 is always in range, so the new maximum is finite.
    const float new_max = fmaxf(running_max, warp_max(score));
    const float rescale = __expf(running_max - new_max);  // 0 at the first chunk (running_max = -inf)
    const float p = j < key_end ? __expf(score - new_max) : 0.f;
    running_sum = running_sum * rescale + warp_sum(p);
    running_max = new_max;
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= rescale;
    const int keys = min(32, key_end - j0);
    for (int l = 0; l < keys; ++l) {
      const float weight = __shfl_sync(0xffffffffu, p, l);
      const bf16* value = v_head + (j0 + l) * kv_stride;
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < s.HD) acc[i] += weight * __bfloat162float(value[d]);
      }
    }
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
