// Causal self-attention with grouped key/value heads (GQA) on tensor cores, FlashAttention-2 style: the T x T
// score matrix is never stored. bf16 inputs, fp32 accumulation, WMMA 16x16x16 bf16 fragments.
//   forward:  out_t = sum_{s<=t} P_ts v_s,  P_ts = exp(scale q_t.k_s - lse_t),  lse_t = log sum_{s<=t} exp(scale q_t.k_s)
//   backward: D_t = dO_t.out_t;  dP_ts = dO_t.v_s;  dS_ts = P_ts (dP_ts - D_t)
//             dq_t += scale sum_s dS_ts k_s;  dk_s += scale sum_t dS_ts q_t;  dv_s += sum_t P_ts dO_t
// Shapes: q, out, dout, dq [B, T, NH, HD]; k, v, dk, dv [B, T, NKV, HD] (query head h reads key/value head
// h / (NH / NKV)); lse [B, NH, T] fp32, saved by the forward. HD is one of 32, 48, 64, 96, 128 (multiples of the
// WMMA k-step 16). The backward ACCUMULATES into dq, dk, dv.
//
// Tiling. Keys (and, in the backward, queries) are cut into tiles of 64 rows; a block has 4 warps and each warp
// owns whole rows of its block's tile, so warps never combine partial results (FA2's split by rows).
//   forward   block = (query tile, b * NH + h); a warp owns 32 query rows when HD <= 64 (two row fragments:
//             O then takes 2 * HD / 16 accumulator fragments, 64 registers at HD = 64) and 16 rows above that,
//             so a block tile is 128 or 64 queries. The warp's Q rows are staged through shared memory into
//             register fragments once; K and V tiles of 64 keys stream through shared memory (zero-filled past T).
//             S = Q K^T (fp32) goes to the warp's shared scratch, where one or two lanes per row run the online
//             softmax; P (bf16) feeds O += P V on tensor cores. O stays in fp32 accumulator fragments; since
//             their element layout is opaque, the rescale by exp(m_old - m_new) goes through shared memory, and
//             only when some row's maximum actually grew (a warp vote): after the first tiles the maxima settle
//             and O stays in registers. Causal: key tiles past the block's last query are skipped, and so are the
//             16-key slices past each warp's last query; the remaining diagonal entries are masked. Query tiles
//             run longest first (blockIdx.x reversed) so the short causal tiles fill the tail of the grid.
//   backward  (1) D = rowsum(dO * out) by a small kernel into a workspace [B, NH, T];
//             (2) dK, dV: block = (key tile, b * NKV + g), warp = 16 keys; it walks the group's query heads and the
//                 query tiles from the diagonal down, recomputes S^T = K Q^T and P^T = exp(scale S^T - lse) (no
//                 max or sum pass: lse is exact), dP^T = V dO^T, dS^T = P^T (dP^T - D), and accumulates
//                 dV += P^T dO and dK += dS^T Q in register fragments, written once at the end;
//             (3) dQ: block = (query tile, b * NH + h), warp = 16 queries; it walks the key tiles like the forward
//                 and accumulates dQ += dS K.
//             Every gradient element is summed by one warp in a fixed order: deterministic, no atomics. The price
//             is computing S and dP twice (once per pass); FA2's dQ-by-atomics variant computes them once.
// Performance (H100/H200 at MiniMind-like shapes B=8, T=512..2048, NH=8..16, NKV=2..8, HD=32..128; not yet
// measured on a GPU). Per warp and key tile, the forward does 2 * rows * 64 * HD * 2 flops on tensor cores, reads
// each K and V fragment from shared memory once for all its rows, and makes one pass of S through shared memory
// (fp32 store, softmax read, bf16 P write, fragment read) plus rows * 64 exp2f. At HD = 32..64 the exponentials
// and these shared-memory passes, not the mma, set the pace (as in FA2, which reaches 35-45% of H100 peak with
// mma.sync); the 50%-of-peak target is most reachable at HD >= 64. Shared rows are padded by 16 bytes (bf16
// tiles: HD + 8; fp32 scratch: 64 + 4 floats) so the rows a fragment load touches fall in different banks, and
// softmax lanes visit their columns rotated by row for the same reason. Forward shared memory is
// 2 * 64 * (HD + 8) * 2 + rows_per_block * (72 * 2 + 68 * 4) bytes: 60 KiB at HD = 128 (room for 3 blocks per SM), 70 KiB
// at HD = 64 (room for 3). The K/V tiles are re-read by the NH / NKV query heads of a group, which are adjacent in
// blockIdx.y and so share them through L2. Registers (ptxas, sm_90, no spills): forward 153..200 (200 at HD = 64:
// 2 blocks per SM; __launch_bounds__(128, 3) gives 3 with a 52-byte spill, to try on a GPU), backward 80..254.
// Not done (ideas for later): cp.async double buffering of K/V, Hopper wgmma/TMA, 32-row warps in the backward.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kWarps = 4;
constexpr int kWarpRows = 16;                   // rows per warp = the WMMA tile edge
constexpr int kTileRows = kWarps * kWarpRows;   // queries (or keys) per block tile
constexpr int kKeyTile = 64;                    // keys (or queries) streamed per step
constexpr int kKeyFrags = kKeyTile / 16;
constexpr int kScoreLd = kKeyTile + 4;          // fp32 scratch row stride (floats)
constexpr int kProbLd = kKeyTile + 8;           // bf16 probability row stride
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
static_assert(kTileRows == kKeyTile, "the causal diagonal logic assumes square tiles");

using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, bf16, nvcuda::wmma::row_major>;
using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, bf16, nvcuda::wmma::row_major>;
using FragBT = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, bf16, nvcuda::wmma::col_major>;
using FragAcc = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

struct Shape {
  int B, T, NH, NKV, HD;
  float scale;
  __device__ int64_t q_row(int b, int t, int h) const { return ((int64_t(b) * T + t) * NH + h) * HD; }
  __device__ int64_t kv_row(int b, int t, int g) const { return ((int64_t(b) * T + t) * NKV + g) * HD; }
  __device__ int64_t row_index(int b, int h, int t) const { return (int64_t(b) * NH + h) * T + t; }  // lse, D
  __host__ __device__ int num_tiles(int rows) const { return (T + rows - 1) / rows; }
};

// The row stride of bf16 tiles (16 bytes of padding against bank conflicts), and the bytes of `rows` such rows.
template <int HD> constexpr int kTileLd = HD + 8;
template <int HD> constexpr size_t tile_bytes(int rows) { return size_t(rows) * kTileLd<HD> * sizeof(bf16); }
constexpr size_t kScoreBytes = size_t(kWarpRows) * kScoreLd * sizeof(float);  // one warp's fp32 scratch
constexpr size_t kProbBytes = size_t(kWarpRows) * kProbLd * sizeof(bf16);     // one warp's bf16 16 x 64
static_assert(tile_bytes<128>(kWarpRows) <= kScoreBytes, "a warp's Q rows are staged in its fp32 scratch");

// Copies rows [0, rows) of HD bf16 (row r at src + r * stride) into dst (row stride HD + 8) by 16-byte vectors,
// the work split over `threads` threads; rows from `valid` on become zeros (a NaN there would survive P = 0).
template <int HD>
__device__ inline void load_rows(bf16* dst, const bf16* src, int64_t stride, int rows, int valid, int thread,
                                 int threads) {
  constexpr int kVecs = HD / 8;
  for (int i = thread; i < rows * kVecs; i += threads) {
    const int r = i / kVecs, c = i % kVecs * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (r < valid) value = *reinterpret_cast<const uint4*>(src + r * stride + c);
    *reinterpret_cast<uint4*>(dst + r * kTileLd<HD> + c) = value;
  }
}

// Loads a warp's 16 rows of a [.., rows, heads, HD] tensor (first row at src) as HD/16 A fragments, staged
// through the warp's scratch.
template <int HD>
__device__ inline void load_warp_rows(FragA* frags, const bf16* src, int64_t stride, int valid, float* scratch) {
  bf16* stage = reinterpret_cast<bf16*>(scratch);
  load_rows<HD>(stage, src, stride, kWarpRows, valid, threadIdx.x % 32, 32);
  __syncwarp();
  for (int i = 0; i < HD / 16; ++i) nvcuda::wmma::load_matrix_sync(frags[i], stage + i * 16, kTileLd<HD>);
  __syncwarp();  // the scratch is reused at once
}

// dst[row, :] += scale * acc for the warp's 16 rows (bf16 read-modify-write); rows from `valid` on are dropped.
// `acc` goes through the warp's scratch one 16-column fragment at a time (the fragment layout is opaque).
template <int HD>
__device__ inline void add_warp_rows(bf16* dst, int64_t stride, int valid, const FragAcc* acc, float scale,
                                     float* scratch) {
  const int lane = threadIdx.x % 32, r = lane / 2, c0 = lane % 2 * 8;
  for (int i = 0; i < HD / 16; ++i) {
    nvcuda::wmma::store_matrix_sync(scratch, acc[i], kScoreLd, nvcuda::wmma::mem_row_major);
    __syncwarp();
    if (r < valid)
      for (int c = c0; c < c0 + 8; ++c) {
        bf16& out = dst[r * stride + i * 16 + c];
        out = __float2bfloat16(__bfloat162float(out) + scale * scratch[r * kScoreLd + c]);
      }
    __syncwarp();
  }
}

// ---- forward ----------------------------------------------------------------------------------------------
// Query rows per warp: 32 (two row fragments) while O fits in registers twice (HD <= 64), else 16. Each K or V
// fragment read from shared memory then feeds two mma instead of one.
template <int HD> constexpr int kRowFrags = HD <= 64 ? 2 : 1;

template <int HD>
constexpr size_t forward_smem_bytes() {
  return 2 * tile_bytes<HD>(kKeyTile) + kRowFrags<HD> * kWarps * (kProbBytes + kScoreBytes);
}

// Sum or max over the `lanes` consecutive lanes (1 or 2) that share a softmax row.
template <int lanes> __device__ inline float row_max(float v) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
template <int lanes> __device__ inline float row_sum(float v) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <int HD>
__global__ void __launch_bounds__(32 * kWarps)
    attention_forward_kernel(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, Shape s) {
  using namespace nvcuda;
  constexpr int R = kRowFrags<HD>, kFrags = HD / 16, kLd = kTileLd<HD>;
  constexpr int kRows = 16 * R, kBlockRows = kWarps * kRows;      // queries per warp, per block
  constexpr int kLanesPerRow = 32 / kRows, kColsPerLane = kKeyTile / kLanesPerRow;
  MM_EXTERN_SHARED(uint4, smem);
  bf16* k_tile = reinterpret_cast<bf16*>(smem);
  bf16* v_tile = k_tile + kKeyTile * kLd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  bf16* probs = v_tile + kKeyTile * kLd + warp * kRows * kProbLd;  // this warp's P, kRows x 64
  float* scores = reinterpret_cast<float*>(v_tile + kKeyTile * kLd + kBlockRows * kProbLd) + warp * kRows * kScoreLd;

  const int q_tile = s.num_tiles(kBlockRows) - 1 - int(blockIdx.x);
  const int h = blockIdx.y % s.NH, b = blockIdx.y / s.NH, g = h / (s.NH / s.NKV);
  const int row0 = q_tile * kBlockRows + warp * kRows;  // the warp's first query
  const int64_t q_stride = int64_t(s.NH) * HD, kv_stride = int64_t(s.NKV) * HD;
  FragA q_frags[R][kFrags];
  for (int f = 0; f < R; ++f)
    load_warp_rows<HD>(q_frags[f], q + s.q_row(b, min(row0 + 16 * f, s.T - 1), h), q_stride, s.T - row0 - 16 * f,
                       scores);
  FragAcc o_frags[R][kFrags];
  for (int f = 0; f < R; ++f)
    for (int i = 0; i < kFrags; ++i) wmma::fill_fragment(o_frags[f][i], 0.f);

  // Lane `part` of the kLanesPerRow lanes of row r takes the columns part + kLanesPerRow c, visited from c = r
  // on (rotated) so the lanes of one step hit different banks. m is in log2 units.
  const int r = lane / kLanesPerRow, part = lane % kLanesPerRow, last_key = min(row0 + r, s.T - 1);
  const int warp_last_key = min(row0 + kRows - 1, s.T - 1);
  const int key_tiles = (min((q_tile + 1) * kBlockRows, s.T) - 1) / kKeyTile + 1;  // through the block's last row
  const float scale_log2 = s.scale * kLog2e;
  float m = -INFINITY, l = 0.f;
  for (int kt = 0; kt < key_tiles; ++kt) {
    const int key0 = kt * kKeyTile;
    __syncthreads();  // every warp is done with the previous K and V tiles
    load_rows<HD>(k_tile, k + s.kv_row(b, key0, g), kv_stride, kKeyTile, s.T - key0, threadIdx.x, blockDim.x);
    load_rows<HD>(v_tile, v + s.kv_row(b, key0, g), kv_stride, kKeyTile, s.T - key0, threadIdx.x, blockDim.x);
    __syncthreads();
    // Key slices of 16 past the warp's last query are fully masked: skipped (all of them near the diagonal).
    const int slices = warp_last_key < key0 ? 0 : min(kKeyFrags, (warp_last_key - key0) / 16 + 1);
    if (slices == 0) continue;  // (warp-uniform)

    // (Loops run to constants with warp-uniform tests, so fragment arrays stay in registers.)
    for (int n = 0; n < kKeyFrags; ++n) {  // S = Q K^T, 16 keys at a time
      if (n >= slices) break;
      FragAcc s_frags[R];
      for (int f = 0; f < R; ++f) wmma::fill_fragment(s_frags[f], 0.f);
      for (int i = 0; i < kFrags; ++i) {
        FragBT k_frag;  // K^T: the K tile read column-major
        wmma::load_matrix_sync(k_frag, k_tile + n * 16 * kLd + i * 16, kLd);
        for (int f = 0; f < R; ++f) wmma::mma_sync(s_frags[f], q_frags[f][i], k_frag, s_frags[f]);
      }
      for (int f = 0; f < R; ++f)
        wmma::store_matrix_sync(scores + 16 * f * kScoreLd + n * 16, s_frags[f], kScoreLd, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax of row r over this tile's columns [0, valid) (the rest of [0, 16 slices) is masked).
    const float* row = scores + r * kScoreLd;
    const int valid = min(last_key - key0 + 1, slices * 16);
    float tile_max = -INFINITY;
    for (int c = 0; c < kColsPerLane; ++c) {
      const int j = part + kLanesPerRow * ((c + r) % kColsPerLane);
      if (j < valid) tile_max = fmaxf(tile_max, row[j]);
    }
    const float m_new = fmaxf(m, row_max<kLanesPerRow>(tile_max) * scale_log2);
    float sum = 0.f;
    for (int c = 0; c < kColsPerLane; ++c) {
      const int j = part + kLanesPerRow * ((c + r) % kColsPerLane);
      if (j >= slices * 16) continue;
      const float p = j < valid ? exp2f(row[j] * scale_log2 - m_new) : 0.f;
      sum += p;
      probs[r * kProbLd + j] = __float2bfloat16(p);
    }
    const float correction = exp2f(m - m_new);  // 0 on the first tile, where O and l are still zero
    l = l * correction + row_sum<kLanesPerRow>(sum);
    const bool grew = m > -INFINITY && m_new > m;
    m = m_new;
    if (__any_sync(0xffffffffu, grew)) {  // O *= correction per row, through the (now free) score scratch
      constexpr int kCols = 16 / kLanesPerRow;
      __syncwarp();
      for (int i = 0; i < kFrags; ++i) {
        for (int f = 0; f < R; ++f)
          wmma::store_matrix_sync(scores + 16 * f * kScoreLd, o_frags[f][i], kScoreLd, wmma::mem_row_major);
        __syncwarp();
        for (int c = part * kCols; c < part * kCols + kCols; ++c) scores[r * kScoreLd + c] *= correction;
        __syncwarp();
        for (int f = 0; f < R; ++f)
          wmma::load_matrix_sync(o_frags[f][i], scores + 16 * f * kScoreLd, kScoreLd, wmma::mem_row_major);
        __syncwarp();
      }
    }
    __syncwarp();  // P complete

    FragA p_frags[R][kKeyFrags];
    for (int n = 0; n < kKeyFrags; ++n)
      for (int f = 0; f < R; ++f)
        if (n < slices) wmma::load_matrix_sync(p_frags[f][n], probs + 16 * f * kProbLd + n * 16, kProbLd);
    for (int i = 0; i < kFrags; ++i)
      for (int n = 0; n < kKeyFrags; ++n) {  // O += P V
        if (n >= slices) break;
        FragB v_frag;
        wmma::load_matrix_sync(v_frag, v_tile + n * 16 * kLd + i * 16, kLd);
        for (int f = 0; f < R; ++f) wmma::mma_sync(o_frags[f][i], p_frags[f][n], v_frag, o_frags[f][i]);
      }
  }

  // out = O / l, through the scratch one column block at a time; lse = (m + log2 l) ln 2.
  constexpr int kCols = 16 / kLanesPerRow;
  __syncwarp();
  const float inv_l = 1.f / l;
  const bool in_range = row0 + r < s.T;
  bf16* out_row = out + s.q_row(b, min(row0 + r, s.T - 1), h);
  for (int i = 0; i < kFrags; ++i) {
    for (int f = 0; f < R; ++f)
      wmma::store_matrix_sync(scores + 16 * f * kScoreLd, o_frags[f][i], kScoreLd, wmma::mem_row_major);
    __syncwarp();
    if (in_range)
      for (int c = part * kCols; c < part * kCols + kCols; ++c)
        out_row[i * 16 + c] = __float2bfloat16(scores[r * kScoreLd + c] * inv_l);
    __syncwarp();
  }
  if (in_range && part == 0) lse[s.row_index(b, h, row0 + r)] = (m + log2f(l)) * kLn2;
}

// ---- backward ---------------------------------------------------------------------------------------------
// D[b, h, t] = dO_t . out_t, one warp per row.
__global__ void attention_row_dots_kernel(float* d_rows, const bf16* dout, const bf16* out, Shape s) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;  // (b T + t) NH + h
  if (row >= int64_t(s.B) * s.T * s.NH) return;
  const int h = row % s.NH, t = row / s.NH % s.T, b = row / (int64_t(s.NH) * s.T);
  const bf16* dout_row = dout + s.q_row(b, t, h);
  const bf16* out_row = out + s.q_row(b, t, h);
  float sum = 0.f;
  for (int d = lane; d < s.HD; d += 32) sum += __bfloat162float(dout_row[d]) * __bfloat162float(out_row[d]);
  sum = warp_sum(sum);
  if (lane == 0) d_rows[s.row_index(b, h, t)] = sum;
}

template <int HD>
constexpr size_t backward_dq_smem_bytes() {
  return 2 * tile_bytes<HD>(kKeyTile) + kWarps * (2 * kScoreBytes + kProbBytes);
}

template <int HD>
__global__ void __launch_bounds__(32 * kWarps)
    attention_backward_dq_kernel(bf16* dq, const bf16* dout, const float* lse, const float* d_rows, const bf16* q,
                                 const bf16* k, const bf16* v, Shape s) {
  using namespace nvcuda;
  constexpr int kFrags = HD / 16, kLd = kTileLd<HD>;
  MM_EXTERN_SHARED(uint4, smem);
  bf16* k_tile = reinterpret_cast<bf16*>(smem);
  bf16* v_tile = k_tile + kKeyTile * kLd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scores = reinterpret_cast<float*>(v_tile + kKeyTile * kLd) + warp * 2 * kWarpRows * kScoreLd;
  float* dprobs = scores + kWarpRows * kScoreLd;  // dP = dO V^T
  bf16* dscores = reinterpret_cast<bf16*>(reinterpret_cast<float*>(v_tile + kKeyTile * kLd) +
                                          kWarps * 2 * kWarpRows * kScoreLd) + warp * kWarpRows * kProbLd;

  const int q_tile = s.num_tiles(kTileRows) - 1 - int(blockIdx.x);
  const int h = blockIdx.y % s.NH, b = blockIdx.y / s.NH, g = h / (s.NH / s.NKV);
  const int row0 = q_tile * kTileRows + warp * kWarpRows, first = min(row0, s.T - 1);
  FragA q_frags[kFrags], do_frags[kFrags];
  load_warp_rows<HD>(q_frags, q + s.q_row(b, first, h), int64_t(s.NH) * HD, s.T - row0, scores);
  load_warp_rows<HD>(do_frags, dout + s.q_row(b, first, h), int64_t(s.NH) * HD, s.T - row0, scores);
  FragAcc dq_frags[kFrags];
  for (int i = 0; i < kFrags; ++i) wmma::fill_fragment(dq_frags[i], 0.f);

  const int r = lane / 2, half = lane % 2, t = min(row0 + r, s.T - 1), last_key = t;
  const float scale_log2 = s.scale * kLog2e;
  const float row_lse = lse[s.row_index(b, h, t)] * kLog2e, row_d = d_rows[s.row_index(b, h, t)];
  for (int kt = 0; kt <= q_tile; ++kt) {
    const int key0 = kt * kKeyTile, slices = kt == q_tile ? warp + 1 : kKeyFrags;
    __syncthreads();
    load_rows<HD>(k_tile, k + s.kv_row(b, key0, g), int64_t(s.NKV) * HD, kKeyTile, s.T - key0, threadIdx.x, blockDim.x);
    load_rows<HD>(v_tile, v + s.kv_row(b, key0, g), int64_t(s.NKV) * HD, kKeyTile, s.T - key0, threadIdx.x, blockDim.x);
    __syncthreads();
    for (int n = 0; n < slices; ++n) {  // S = Q K^T and dP = dO V^T, 16 keys at a time
      FragAcc s_frag, dp_frag;
      wmma::fill_fragment(s_frag, 0.f);
      wmma::fill_fragment(dp_frag, 0.f);
      for (int i = 0; i < kFrags; ++i) {
        FragBT kv_frag;
        wmma::load_matrix_sync(kv_frag, k_tile + n * 16 * kLd + i * 16, kLd);
        wmma::mma_sync(s_frag, q_frags[i], kv_frag, s_frag);
        wmma::load_matrix_sync(kv_frag, v_tile + n * 16 * kLd + i * 16, kLd);
        wmma::mma_sync(dp_frag, do_frags[i], kv_frag, dp_frag);
      }
      wmma::store_matrix_sync(scores + n * 16, s_frag, kScoreLd, wmma::mem_row_major);
      wmma::store_matrix_sync(dprobs + n * 16, dp_frag, kScoreLd, wmma::mem_row_major);
    }
    __syncwarp();
    const int valid = min(last_key - key0 + 1, slices * 16);
    for (int c = 0; c < kKeyTile / 2; ++c) {  // dS = P (dP - D), P recomputed from lse; columns rotated by row
      const int j = half + 2 * ((c + r) % (kKeyTile / 2));
      if (j >= slices * 16) continue;
      float ds = 0.f;
      if (j < valid) {
        const float p = exp2f(scores[r * kScoreLd + j] * scale_log2 - row_lse);
        ds = p * (dprobs[r * kScoreLd + j] - row_d);
      }
      dscores[r * kProbLd + j] = __float2bfloat16(ds);
    }
    __syncwarp();
    FragA ds_frags[kKeyFrags];
    for (int n = 0; n < kKeyFrags; ++n)
      if (n < slices) wmma::load_matrix_sync(ds_frags[n], dscores + n * 16, kProbLd);
    for (int i = 0; i < kFrags; ++i)
      for (int n = 0; n < kKeyFrags; ++n) {  // dQ += dS K
        if (n >= slices) continue;
        FragB k_frag;
        wmma::load_matrix_sync(k_frag, k_tile + n * 16 * kLd + i * 16, kLd);
        wmma::mma_sync(dq_frags[i], ds_frags[n], k_frag, dq_frags[i]);
      }
  }
  __syncwarp();
  add_warp_rows<HD>(dq + s.q_row(b, first, h), int64_t(s.NH) * HD, s.T - row0, dq_frags, s.scale, scores);
}

template <int HD>
constexpr size_t backward_dkv_smem_bytes() {
  return 4 * tile_bytes<HD>(kTileRows) + 2 * kTileRows * sizeof(float) + kWarps * (2 * kScoreBytes + 2 * kProbBytes);
}

template <int HD>
__global__ void __launch_bounds__(32 * kWarps)
    attention_backward_dkv_kernel(bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* d_rows,
                                  const bf16* q, const bf16* k, const bf16* v, Shape s) {
  using namespace nvcuda;
  constexpr int kFrags = HD / 16, kLd = kTileLd<HD>;
  MM_EXTERN_SHARED(uint4, smem);
  bf16* k_tile = reinterpret_cast<bf16*>(smem);  // this block's keys: warp w owns rows 16w .. 16w + 15
  bf16* v_tile = k_tile + kTileRows * kLd;
  bf16* q_tile_s = v_tile + kTileRows * kLd;      // the current 64 queries
  bf16* do_tile = q_tile_s + kKeyTile * kLd;
  float* lse_tile = reinterpret_cast<float*>(do_tile + kKeyTile * kLd);  // log2 units
  float* d_tile = lse_tile + kKeyTile;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scores = d_tile + kKeyTile + warp * 2 * kWarpRows * kScoreLd;  // S^T, 16 keys x 64 queries
  float* dprobs = scores + kWarpRows * kScoreLd;                         // dP^T
  bf16* probs = reinterpret_cast<bf16*>(d_tile + kKeyTile + kWarps * 2 * kWarpRows * kScoreLd) +
                warp * 2 * kWarpRows * kProbLd;                         // P^T, bf16
  bf16* dscores = probs + kWarpRows * kProbLd;                           // dS^T, bf16

  const int key_tile = int(blockIdx.x);
  const int g = blockIdx.y % s.NKV, b = blockIdx.y / s.NKV, group = s.NH / s.NKV;
  const int key0 = key_tile * kTileRows, warp_key0 = key0 + warp * kWarpRows;
  load_rows<HD>(k_tile, k + s.kv_row(b, key0, g), int64_t(s.NKV) * HD, kTileRows, s.T - key0, threadIdx.x, blockDim.x);
  load_rows<HD>(v_tile, v + s.kv_row(b, key0, g), int64_t(s.NKV) * HD, kTileRows, s.T - key0, threadIdx.x, blockDim.x);
  const bf16* k_rows = k_tile + warp * kWarpRows * kLd;
  const bf16* v_rows = v_tile + warp * kWarpRows * kLd;
  FragAcc dk_frags[kFrags], dv_frags[kFrags];
  for (int i = 0; i < kFrags; ++i) {
    wmma::fill_fragment(dk_frags[i], 0.f);
    wmma::fill_fragment(dv_frags[i], 0.f);
  }

  const int r = lane / 2, half = lane % 2, key = warp_key0 + r;  // lanes 2r, 2r+1: key row r
  const float scale_log2 = s.scale * kLog2e;
  for (int h = g * group; h < (g + 1) * group; ++h)
    for (int qt = key_tile; qt < s.num_tiles(kTileRows); ++qt) {
      const int q0 = qt * kKeyTile;
      // Query slices of 16 before the warp's first key are fully masked on the diagonal tile.
      const int first_slice = qt == key_tile ? warp : 0;
      __syncthreads();  // every warp is done with the previous query tile
      const int64_t q_stride = int64_t(s.NH) * HD;
      load_rows<HD>(q_tile_s, q + s.q_row(b, q0, h), q_stride, kKeyTile, s.T - q0, threadIdx.x, blockDim.x);
      load_rows<HD>(do_tile, dout + s.q_row(b, q0, h), q_stride, kKeyTile, s.T - q0, threadIdx.x, blockDim.x);
      for (int j = threadIdx.x; j < kKeyTile; j += blockDim.x) {
        const bool in_range = q0 + j < s.T;
        lse_tile[j] = in_range ? lse[s.row_index(b, h, q0 + j)] * kLog2e : 0.f;
        d_tile[j] = in_range ? d_rows[s.row_index(b, h, q0 + j)] : 0.f;
      }
      __syncthreads();

      for (int n = first_slice; n < kKeyFrags; ++n) {  // S^T = K Q^T and dP^T = V dO^T, 16 queries at a time
        FragAcc s_frag, dp_frag;
        wmma::fill_fragment(s_frag, 0.f);
        wmma::fill_fragment(dp_frag, 0.f);
        for (int i = 0; i < kFrags; ++i) {
          FragA a_frag;
          FragBT b_frag;
          wmma::load_matrix_sync(a_frag, k_rows + i * 16, kLd);
          wmma::load_matrix_sync(b_frag, q_tile_s + n * 16 * kLd + i * 16, kLd);
          wmma::mma_sync(s_frag, a_frag, b_frag, s_frag);
          wmma::load_matrix_sync(a_frag, v_rows + i * 16, kLd);
          wmma::load_matrix_sync(b_frag, do_tile + n * 16 * kLd + i * 16, kLd);
          wmma::mma_sync(dp_frag, a_frag, b_frag, dp_frag);
        }
        wmma::store_matrix_sync(scores + n * 16, s_frag, kScoreLd, wmma::mem_row_major);
        wmma::store_matrix_sync(dprobs + n * 16, dp_frag, kScoreLd, wmma::mem_row_major);
      }
      __syncwarp();
      for (int c = 0; c < kKeyTile / 2; ++c) {  // columns rotated by row (banks)
        const int j = half + 2 * ((c + r) % (kKeyTile / 2)), query = q0 + j;
        if (j < first_slice * 16) continue;
        float p = 0.f, ds = 0.f;
        if (query >= key && query < s.T) {  // (key < T follows)
          p = exp2f(scores[r * kScoreLd + j] * scale_log2 - lse_tile[j]);
          ds = p * (dprobs[r * kScoreLd + j] - d_tile[j]);
        }
        probs[r * kProbLd + j] = __float2bfloat16(p);
        dscores[r * kProbLd + j] = __float2bfloat16(ds);
      }
      __syncwarp();
      for (int n = first_slice; n < kKeyFrags; ++n) {  // dV += P^T dO, dK += dS^T Q
        FragA p_frag, ds_frag;
        wmma::load_matrix_sync(p_frag, probs + n * 16, kProbLd);
        wmma::load_matrix_sync(ds_frag, dscores + n * 16, kProbLd);
        for (int i = 0; i < kFrags; ++i) {
          FragB b_frag;
          wmma::load_matrix_sync(b_frag, do_tile + n * 16 * kLd + i * 16, kLd);
          wmma::mma_sync(dv_frags[i], p_frag, b_frag, dv_frags[i]);
          wmma::load_matrix_sync(b_frag, q_tile_s + n * 16 * kLd + i * 16, kLd);
          wmma::mma_sync(dk_frags[i], ds_frag, b_frag, dk_frags[i]);
        }
      }
    }
  __syncwarp();
  const int first = min(warp_key0, s.T - 1);
  const int64_t kv_stride = int64_t(s.NKV) * HD;
  add_warp_rows<HD>(dk + s.kv_row(b, first, g), kv_stride, s.T - warp_key0, dk_frags, s.scale, scores);
  add_warp_rows<HD>(dv + s.kv_row(b, first, g), kv_stride, s.T - warp_key0, dv_frags, 1.f, scores);
}

// ---- host side --------------------------------------------------------------------------------------------
// On the GPU a kernel must opt in before using more than 48 KiB of dynamic shared memory (the emulator allows
// up to 227 KiB without it).
template <typename Kernel>
__host__ void allow_shared_bytes(Kernel kernel, size_t bytes) {
#if !MM_EMULATED
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
#else
  (void)kernel;
  (void)bytes;
#endif
}

// The backward's D rows [B, NH, T] fp32: a workspace kept between calls, grown when a larger shape comes (the
// backend is driven from one thread; on the GPU the old buffer's cudaFree waits for the kernels using it).
float* row_dots_workspace(int64_t count) {
  static void* buffer = nullptr;
  static int64_t capacity = 0;
  if (count > capacity) {
    if (buffer && MM_BACKEND::free(buffer)) return nullptr;
    buffer = nullptr;
    capacity = 0;
    if (MM_BACKEND::alloc(&buffer, size_t(count) * sizeof(float))) return nullptr;
    capacity = count;
  }
  return static_cast<float*>(buffer);
}

template <int HD>
void launch_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, const Shape& s) {
  const size_t smem = forward_smem_bytes<HD>();
  allow_shared_bytes(attention_forward_kernel<HD>, smem);
  const dim3 grid(s.num_tiles(kWarps * 16 * kRowFrags<HD>), unsigned(s.B) * s.NH);
  MM_LAUNCH(attention_forward_kernel<HD>, grid, 32 * kWarps, smem, 0)(out, lse, q, k, v, s);
}

template <int HD>
void launch_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const float* lse, const float* d_rows,
                     const bf16* q, const bf16* k, const bf16* v, const Shape& s) {
  const size_t dkv_smem = backward_dkv_smem_bytes<HD>(), dq_smem = backward_dq_smem_bytes<HD>();
  allow_shared_bytes(attention_backward_dkv_kernel<HD>, dkv_smem);
  allow_shared_bytes(attention_backward_dq_kernel<HD>, dq_smem);
  MM_LAUNCH(attention_backward_dkv_kernel<HD>, dim3(s.num_tiles(kTileRows), unsigned(s.B) * s.NKV), 32 * kWarps, dkv_smem,
            0)(dk, dv, dout, lse, d_rows, q, k, v, s);
  MM_LAUNCH(attention_backward_dq_kernel<HD>, dim3(s.num_tiles(kTileRows), unsigned(s.B) * s.NH), 32 * kWarps, dq_smem, 0)(
      dq, dout, lse, d_rows, q, k, v, s);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int check_shape(int B, int NH, int NKV, int HD, std::initializer_list<const void*> pointers) {
  if (HD != 32 && HD != 48 && HD != 64 && HD != 96 && HD != 128)
    return MM_BACKEND::fail("attention (native/cuda/kernels/attention.cu): HD must be 32, 48, 64, 96 or 128");
  if (NKV <= 0 || NH % NKV != 0)
    return MM_BACKEND::fail("attention (native/cuda/kernels/attention.cu): NH must be a multiple of NKV");
  if (int64_t(B) * NH > 65535)
    return MM_BACKEND::fail("attention (native/cuda/kernels/attention.cu): B * NH must be at most 65535");
  for (const void* p : pointers)
    if (!aligned16(p))
      return MM_BACKEND::fail("attention (native/cuda/kernels/attention.cu): tensors must be 16-byte aligned");
  return 0;
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::attention_forward(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                  int B, int T, int NH, int NKV, int HD, float scale) {
  if (B <= 0 || T <= 0) return 0;
  if (int bad = check_shape(B, NH, NKV, HD, {out, q, k, v})) return bad;
  const Shape s{B, T, NH, NKV, HD, scale};
  switch (HD) {
    case 32: launch_forward<32>(as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s); break;
    case 48: launch_forward<48>(as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s); break;
    case 64: launch_forward<64>(as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s); break;
    case 96: launch_forward<96>(as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s); break;
    default: launch_forward<128>(as_bf16(out), lse, as_bf16(q), as_bf16(k), as_bf16(v), s); break;
  }
  return launch_status("attention_forward");
}

int MM_BACKEND::attention_backward(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout,
                                   const uint16_t* out, const float* lse, const uint16_t* q, const uint16_t* k,
                                   const uint16_t* v, int B, int T, int NH, int NKV, int HD, float scale) {
  if (B <= 0 || T <= 0) return 0;
  if (int bad = check_shape(B, NH, NKV, HD, {dq, dk, dv, dout, q, k, v})) return bad;
  const Shape s{B, T, NH, NKV, HD, scale};
  float* d_rows = row_dots_workspace(int64_t(B) * NH * T);
  if (!d_rows) return 1;  // error_text() says why
  MM_LAUNCH(attention_row_dots_kernel, blocks_for(int64_t(B) * T * NH, kWarps), 32 * kWarps, 0, 0)(
      d_rows, as_bf16(dout), as_bf16(out), s);
  const bf16 *g = as_bf16(dout), *pq = as_bf16(q), *pk = as_bf16(k), *pv = as_bf16(v);
  switch (HD) {
    case 32: launch_backward<32>(as_bf16(dq), as_bf16(dk), as_bf16(dv), g, lse, d_rows, pq, pk, pv, s); break;
    case 48: launch_backward<48>(as_bf16(dq), as_bf16(dk), as_bf16(dv), g, lse, d_rows, pq, pk, pv, s); break;
    case 64: launch_backward<64>(as_bf16(dq), as_bf16(dk), as_bf16(dv), g, lse, d_rows, pq, pk, pv, s); break;
    case 96: launch_backward<96>(as_bf16(dq), as_bf16(dk), as_bf16(dv), g, lse, d_rows, pq, pk, pv, s); break;
    default: launch_backward<128>(as_bf16(dq), as_bf16(dk), as_bf16(dv), g, lse, d_rows, pq, pk, pv, s); break;
  }
  return launch_status("attention_backward");
}

}  // namespace mm
