// Mixture-of-experts routing on the GPU: the router (softmax over experts, top-k, renormalisation), the stable
// sort of the (token, slot) assignments by expert, the auxiliary loss's weighted sum, and the permutation of token
// rows into expert-sorted order (dispatch) and back (combine), each with its backward. The semantics are those of
// the CPU kernels (native/cpu/moe.{h,cc}); read that header first.
//
// Shapes: N = B*T tokens, E experts, k = experts per token (<= kMoeMaxTopK), C = model dim. Assignment
// a = token*k + slot; position p = its row in expert-sorted order; order[p] = a, positions[a] = p.
//   logits [N, E] bf16 (the gate's output); scores [N, E] f32; weights [N, k] f32; experts, order, positions [N*k]
//   int32; offsets [E+1] int32; x, y, dx, dy [N, C] bf16; dispatched / expert rows [N*k, C] bf16.
// Small per-token tensors stay f32 (the router and its gradients are tiny next to the rows), rows are bf16 with
// fp32 math.
//
// Determinism without atomics: every output element has exactly one writer, and sums over a token's k slots run
// in slot order; the sort is a counting sort whose ranks come from block-wide prefix sums. So results are
// bit-identical from run to run, and the routing (experts, offsets, order) equals the CPU's for the same logits on
// the emulator. On the GPU, --use_fast_math turns expf into the approximate __expf, so probabilities may differ in
// their last bits from the CPU's: two experts whose probabilities are within an ulp may then rank differently.
#include <initializer_list>
#include <type_traits>

#include "../common.cuh"
#include "cpu/moe.h"  // kMoeMaxTopK, shared with the CPU kernels

namespace mm::kernels {
namespace {

using mm::cpu::kMoeMaxTopK;

// ---- router: one thread per token (E and k are small) ------------------------------------------------------

constexpr int kTokenThreads = 128;

// The CPU's route_token itself (cpu/moe.h, compiled for the device): the same softmax and top-k on bf16 logits.
__global__ void moe_route_kernel(const bf16* logits, int N, int E, int k, bool renorm, float* scores, float* weights,
                                 int* experts) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= N) return;
  const bf16* z = logits + int64_t(t) * E;
  mm::cpu::route_token([z](int e) { return __bfloat162float(z[e]); }, E, k, renorm, scores + int64_t(t) * E,
                       weights + int64_t(t) * k, experts + int64_t(t) * k);
}

// Exclusive prefix sum over the block (blockDim.x a multiple of 32, at most 1024): returns the sum of `value` over
// the threads before this one and sets *total to the block's sum. `warp_totals` holds 32 ints of shared memory;
// ends with a barrier, so it may be reused at once.
__device__ int block_exclusive_scan(int value, int* warp_totals, int* total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  int inclusive = value;
  for (int d = 1; d < 32; d *= 2) {
    const int below = __shfl_up_sync(0xffffffffu, inclusive, d);
    if (lane >= d) inclusive += below;
  }
  if (lane == 31) warp_totals[warp] = inclusive;
  __syncthreads();
  int before = 0, all = 0;
  for (int w = 0; w < warps; ++w) {
    if (w < warp) before += warp_totals[w];
    all += warp_totals[w];
  }
  __syncthreads();
  *total = all;
  return before + inclusive - value;
}

// Stable counting sort of the NK assignments by expert, in one block. Thread i owns a contiguous chunk of
// assignments; for each expert in turn the block counts the chunk's matches (the histogram entry), prefix-sums
// them over the threads (each chunk's first rank within the expert), and every thread writes its matches in
// assignment order. Ranks therefore ascend with the assignment, i.e. tokens ascend within an expert, as on the
// CPU. Cost: E passes over N*k small integers (L2-resident), a few microseconds at MiniMind's sizes.
constexpr int kSortThreads = 256;

__global__ void moe_sort_kernel(const int* experts, int NK, int E, int* offsets, int* order, int* positions) {
  MM_SHARED(int, warp_totals, [32]);
  const int chunk = (NK + kSortThreads - 1) / kSortThreads;
  const int begin = min(NK, int(threadIdx.x) * chunk), end = min(NK, begin + chunk);
  int base = 0;  // rows taken by the experts before e
  for (int e = 0; e < E; ++e) {
    int mine = 0;
    for (int a = begin; a < end; ++a) mine += experts[a] == e;
    int count;
    int p = base + block_exclusive_scan(mine, warp_totals, &count);
    if (threadIdx.x == 0) offsets[e] = base;
    for (int a = begin; a < end; ++a) {
      if (experts[a] != e) continue;
      order[p] = a;
      positions[a] = p;
      ++p;
    }
    base += count;
  }
  if (threadIdx.x == 0) offsets[E] = base;
}

// Per token, with s = softmax(z), chosen experts e_j and raw weights r_j = s[e_j] (the CPU's formulas):
//   renormalised w_j = r_j / D, D = sum_i r_i + 1e-20, so dL/dr_j = (dw_j - sum_i dw_i w_i) / D;
//   dL/ds = dscores + scatter of dL/dr into the chosen experts;  dL/dz_e = s_e (dL/ds_e - sum_f s_f dL/ds_f).
// Each dlogits element is read, added to and rounded to bf16 once.
__global__ void moe_route_backward_kernel(bf16* dlogits, const float* scores, const float* weights,
                                          const int* experts, const float* dweights, const float* dscores, int N,
                                          int E, int k, bool renorm) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= N) return;
  const float* s = scores + int64_t(t) * E;
  const int* chosen = experts + int64_t(t) * k;
  const float* ds = dscores ? dscores + int64_t(t) * E : nullptr;
  float draw[kMoeMaxTopK];
  for (int j = 0; j < k; ++j) draw[j] = 0.f;
  if (dweights) {
    const float* dw = dweights + int64_t(t) * k;
    if (renorm) {
      float raw_sum = 0.f;  // the forward's denominator, recomputed the same way
      for (int j = 0; j < k; ++j) raw_sum += s[chosen[j]];
      const float denom = raw_sum + 1e-20f;
      float dw_dot_w = 0.f;
      for (int j = 0; j < k; ++j) dw_dot_w += dw[j] * weights[int64_t(t) * k + j];
      for (int j = 0; j < k; ++j) draw[j] = (dw[j] - dw_dot_w) / denom;
    } else {
      for (int j = 0; j < k; ++j) draw[j] = dw[j];
    }
  }
  float s_dot_ds = 0.f;
  if (ds)
    for (int e = 0; e < E; ++e) s_dot_ds += s[e] * ds[e];
  for (int j = 0; j < k; ++j) s_dot_ds += s[chosen[j]] * draw[j];
  bf16* dz = dlogits + int64_t(t) * E;
  for (int e = 0; e < E; ++e) {
    float ds_e = ds ? ds[e] : 0.f;
    for (int j = 0; j < k; ++j)
      if (chosen[j] == e) ds_e += draw[j];
    dz[e] = __float2bfloat16(__bfloat162float(dz[e]) + s[e] * (ds_e - s_dot_ds));
  }
}

// ---- auxiliary loss: out[0] = sum_{b,t,e} coef[b,e] * scores[b,t,e] ----------------------------------------

constexpr int kReduceThreads = 256;

// One block: each thread sums a fixed stride of the elements, then a fixed-shape block reduction. Deterministic;
// B*T*E is a few ten thousand values, too few to be worth a multi-block reduction.
__global__ void moe_aux_loss_kernel(float* out, const float* scores, const float* coef, int64_t B, int64_t T, int E) {
  MM_SHARED(float, scratch, [32]);
  const int64_t per_row = T * E, total = B * per_row;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) sum += coef[(i / per_row) * E + i % E] * scores[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) out[0] = sum;
}

__global__ void moe_aux_loss_backward_kernel(float* dscores, const float* dloss, const float* coef, int64_t B,
                                             int64_t T, int E) {
  const int64_t per_row = T * E, total = B * per_row;
  const float g = dloss[0];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dscores[i] += g * coef[(i / per_row) * E + i % E];
}

// ---- row kernels: one block per output row, W bf16 values (a 16-, 4- or 2-byte access) per thread step -------

constexpr int kRowThreads = 64;  // MiniMind's C = 512 is 64 vectors of 8

template <int W>
struct alignas(2 * W) Bf16Pack {
  bf16 v[W];
};

template <int W>
__device__ inline void load_pack(float (&out)[W], const bf16* p) {
  const Bf16Pack<W> pack = *reinterpret_cast<const Bf16Pack<W>*>(p);
  for (int i = 0; i < W; ++i) out[i] = __bfloat162float(pack.v[i]);
}

template <int W>
__device__ inline void store_pack(bf16* p, const float (&in)[W]) {
  Bf16Pack<W> pack;
  for (int i = 0; i < W; ++i) pack.v[i] = __float2bfloat16(in[i]);
  *reinterpret_cast<Bf16Pack<W>*>(p) = pack;
}

// out[p] = x[order[p] / k]: a plain copy of packs.
template <int W>
__global__ void moe_dispatch_kernel(bf16* out, const bf16* x, const int* order, int k, int C) {
  const int64_t p = blockIdx.x;
  const Bf16Pack<W>* src = reinterpret_cast<const Bf16Pack<W>*>(x + int64_t(order[p] / k) * C);
  Bf16Pack<W>* dst = reinterpret_cast<Bf16Pack<W>*>(out + p * C);
  for (int v = threadIdx.x; v < C / W; v += blockDim.x) dst[v] = src[v];
}

// dx[t] += sum over slots, in slot order, of dout[positions[t*k + slot]] (summed in fp32, rounded once).
template <int W>
__global__ void moe_dispatch_backward_kernel(bf16* dx, const bf16* dout, const int* positions, int k, int C) {
  const int64_t t = blockIdx.x;
  for (int v = threadIdx.x; v < C / W; v += blockDim.x) {
    float acc[W], row[W];
    load_pack(acc, dx + t * C + v * W);
    for (int slot = 0; slot < k; ++slot) {
      load_pack(row, dout + int64_t(positions[t * k + slot]) * C + v * W);
      for (int i = 0; i < W; ++i) acc[i] += row[i];
    }
    store_pack(dx + t * C + v * W, acc);
  }
}

// y[t] = sum over slots, in slot order, of weights[t*k+slot] * expert_out[positions[t*k+slot]].
template <int W>
__global__ void moe_combine_kernel(bf16* y, const bf16* expert_out, const float* weights, const int* positions, int k,
                                   int C) {
  const int64_t t = blockIdx.x;
  for (int v = threadIdx.x; v < C / W; v += blockDim.x) {
    float acc[W], row[W];
    for (int i = 0; i < W; ++i) acc[i] = 0.f;
    for (int slot = 0; slot < k; ++slot) {
      const float w = weights[t * k + slot];
      load_pack(row, expert_out + int64_t(positions[t * k + slot]) * C + v * W);
      for (int i = 0; i < W; ++i) acc[i] += w * row[i];
    }
    store_pack(y + t * C + v * W, acc);
  }
}

// dexpert_out[p] += weights[a] * dy[a / k] with a = order[p].
template <int W>
__global__ void moe_combine_backward_rows_kernel(bf16* dexpert_out, const bf16* dy, const float* weights,
                                                 const int* order, int k, int C) {
  const int64_t p = blockIdx.x;
  const int a = order[p];
  const float w = weights[a];
  for (int v = threadIdx.x; v < C / W; v += blockDim.x) {
    float acc[W], g[W];
    load_pack(acc, dexpert_out + p * C + v * W);
    load_pack(g, dy + int64_t(a / k) * C + v * W);
    for (int i = 0; i < W; ++i) acc[i] += w * g[i];
    store_pack(dexpert_out + p * C + v * W, acc);
  }
}

// dweights[a] += dy[a / k] . expert_out[positions[a]]: one warp per assignment, lanes over the packs, then a
// fixed-order warp sum.
constexpr int kDotWarps = 8;

template <int W>
__global__ void moe_combine_backward_weights_kernel(float* dweights, const bf16* dy, const bf16* expert_out,
                                                    const int* positions, int NK, int k, int C) {
  const int a = blockIdx.x * kDotWarps + threadIdx.x / 32;
  if (a >= NK) return;  // the whole warp leaves together
  const bf16* g_row = dy + int64_t(a / k) * C;
  const bf16* e_row = expert_out + int64_t(positions[a]) * C;
  float sum = 0.f;
  for (int v = threadIdx.x % 32; v < C / W; v += 32) {
    float g[W], e[W];
    load_pack(g, g_row + v * W);
    load_pack(e, e_row + v * W);
    for (int i = 0; i < W; ++i) sum += g[i] * e[i];
  }
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) dweights[a] += sum;
}

// The widest pack (8, 2 or 1 bf16) that divides C and that every row pointer is aligned to.
__host__ int pack_width(int64_t C, std::initializer_list<const void*> rows) {
  for (int w : {8, 2}) {
    bool aligned = C % w == 0;
    for (const void* p : rows) aligned = aligned && (p == nullptr || reinterpret_cast<uintptr_t>(p) % (2 * w) == 0);
    if (aligned) return w;
  }
  return 1;
}

// Calls launch(std::integral_constant<int, W>{}) for the runtime width w, so a kernel template gets W at compile
// time.
template <typename Launch>
__host__ void with_pack_width(int w, Launch launch) {
  if (w == 8) launch(std::integral_constant<int, 8>{});
  else if (w == 2) launch(std::integral_constant<int, 2>{});
  else launch(std::integral_constant<int, 1>{});
}

// Shared argument checks; returns an error message or nullptr.
__host__ const char* check_routing(int64_t N, int k, int64_t C) {
  if (k < 1 || k > kMoeMaxTopK) return "k must be in [1, 8]";
  if (N * k > 2147483647) return "N*k assignments must fit in int32";
  if (C < 0 || C > 2147483647) return "C must fit in int32";
  return nullptr;
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::moe_route(const uint16_t* logits, int64_t N, int E, int k, bool renorm, float* scores, float* weights,
                          int32_t* experts, int32_t* offsets, int32_t* order, int32_t* positions) {
  if (const char* bad = check_routing(N, k, 0)) return fail((std::string("moe_route: ") + bad).c_str());
  if (E < k) return fail("moe_route: E must be at least k");
  if (N > 0) {
    MM_LAUNCH(moe_route_kernel, blocks_for(N, kTokenThreads), kTokenThreads, 0, 0)(
        as_bf16(logits), int(N), E, k, renorm, scores, weights, experts);
  }
  MM_LAUNCH(moe_sort_kernel, 1, kSortThreads, 0, 0)(experts, int(N * k), E, offsets, order, positions);
  return launch_status("moe_route");
}

int MM_BACKEND::moe_route_backward(uint16_t* dlogits, const float* scores, const float* weights,
                                   const int32_t* experts, const float* dweights, const float* dscores, int64_t N,
                                   int E, int k, bool renorm) {
  if (const char* bad = check_routing(N, k, 0)) return fail((std::string("moe_route_backward: ") + bad).c_str());
  if (N <= 0 || (!dweights && !dscores)) return 0;
  MM_LAUNCH(moe_route_backward_kernel, blocks_for(N, kTokenThreads), kTokenThreads, 0, 0)(
      as_bf16(dlogits), scores, weights, experts, dweights, dscores, int(N), E, k, renorm);
  return launch_status("moe_route_backward");
}

int MM_BACKEND::moe_aux_loss(float* out, const float* scores, const float* coef, int64_t B, int64_t T, int E) {
  MM_LAUNCH(moe_aux_loss_kernel, 1, kReduceThreads, 0, 0)(out, scores, coef, B, T, E);
  return launch_status("moe_aux_loss");
}

int MM_BACKEND::moe_aux_loss_backward(float* dscores, const float* dloss, const float* coef, int64_t B, int64_t T,
                                      int E) {
  const int64_t total = B * T * E;
  if (total <= 0) return 0;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(total, kReduceThreads), 1024));
  MM_LAUNCH(moe_aux_loss_backward_kernel, grid, kReduceThreads, 0, 0)(dscores, dloss, coef, B, T, E);
  return launch_status("moe_aux_loss_backward");
}

int MM_BACKEND::moe_dispatch(uint16_t* out, const uint16_t* x, const int32_t* order, int64_t N, int k, int64_t C) {
  if (const char* bad = check_routing(N, k, C)) return fail((std::string("moe_dispatch: ") + bad).c_str());
  if (N <= 0 || C <= 0) return 0;
  with_pack_width(pack_width(C, {out, x}), [&](auto W) {
    MM_LAUNCH(moe_dispatch_kernel<decltype(W)::value>, static_cast<unsigned>(N * k), kRowThreads, 0, 0)(
        as_bf16(out), as_bf16(x), order, k, int(C));
  });
  return launch_status("moe_dispatch");
}

int MM_BACKEND::moe_dispatch_backward(uint16_t* dx, const uint16_t* dout, const int32_t* positions, int64_t N, int k,
                                      int64_t C) {
  if (const char* bad = check_routing(N, k, C)) return fail((std::string("moe_dispatch_backward: ") + bad).c_str());
  if (N <= 0 || C <= 0) return 0;
  with_pack_width(pack_width(C, {dx, dout}), [&](auto W) {
    MM_LAUNCH(moe_dispatch_backward_kernel<decltype(W)::value>, static_cast<unsigned>(N), kRowThreads, 0, 0)(
        as_bf16(dx), as_bf16(dout), positions, k, int(C));
  });
  return launch_status("moe_dispatch_backward");
}

int MM_BACKEND::moe_combine(uint16_t* y, const uint16_t* expert_out, const float* weights, const int32_t* positions,
                            int64_t N, int k, int64_t C) {
  if (const char* bad = check_routing(N, k, C)) return fail((std::string("moe_combine: ") + bad).c_str());
  if (N <= 0 || C <= 0) return 0;
  with_pack_width(pack_width(C, {y, expert_out}), [&](auto W) {
    MM_LAUNCH(moe_combine_kernel<decltype(W)::value>, static_cast<unsigned>(N), kRowThreads, 0, 0)(
        as_bf16(y), as_bf16(expert_out), weights, positions, k, int(C));
  });
  return launch_status("moe_combine");
}

int MM_BACKEND::moe_combine_backward(uint16_t* dexpert_out, float* dweights, const uint16_t* dy,
                                     const uint16_t* expert_out, const float* weights, const int32_t* order,
                                     const int32_t* positions, int64_t N, int k, int64_t C) {
  if (const char* bad = check_routing(N, k, C)) return fail((std::string("moe_combine_backward: ") + bad).c_str());
  if (N <= 0 || C <= 0) return 0;
  const int NK = int(N * k);
  with_pack_width(pack_width(C, {dexpert_out, dy, expert_out}), [&](auto W) {
    if (dexpert_out) {
      MM_LAUNCH(moe_combine_backward_rows_kernel<decltype(W)::value>, static_cast<unsigned>(NK), kRowThreads, 0, 0)(
          as_bf16(dexpert_out), as_bf16(dy), weights, order, k, int(C));
    }
    if (dweights) {
      MM_LAUNCH(moe_combine_backward_weights_kernel<decltype(W)::value>, blocks_for(NK, kDotWarps), 32 * kDotWarps, 0,
                0)(dweights, as_bf16(dy), as_bf16(expert_out), positions, NK, k, int(C));
    }
  });
  return launch_status("moe_combine_backward");
}

}  // namespace mm
