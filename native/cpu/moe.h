// Mixture-of-experts routing kernels (native/cpu/moe.cc). N = B*T tokens, E experts, k = top-k, C = model dim.
// An "assignment" a = token*k + slot is one (token, chosen expert) pair; the N*k assignments are laid out in
// expert-sorted order for the expert GEMMs: order[p] = a (position -> assignment), positions[a] = p (inverse).
#pragma once
#include <math.h>

#include <cstdint>

// route_token below is compiled for the GPU too (native/cuda/kernels/moe.cu), so both backends route alike.
#if defined(__CUDACC__)
#define MM_HOST_DEVICE __host__ __device__
#else
#define MM_HOST_DEVICE
#endif

namespace mm::cpu {

constexpr int kMoeMaxTopK = 8;

// One token's router: scores[E] = softmax of the E logits (`logit(e)` reads logit e as a float), then the k largest
// probabilities in descending order into weights[k] and experts[k] (renormalised as in moe_route). Insertion into
// the sorted top list uses a strict ">", so of equal probabilities the lower expert id (seen first) ranks first.
template <typename Logit>
MM_HOST_DEVICE inline void route_token(Logit logit, int E, int k, bool renorm, float* scores, float* weights,
                                       int32_t* experts) {
  float max_logit = logit(0);
  for (int e = 1; e < E; ++e) max_logit = logit(e) > max_logit ? logit(e) : max_logit;
  float sum = 0.0f;
  for (int e = 0; e < E; ++e) {
    scores[e] = expf(logit(e) - max_logit);
    sum += scores[e];
  }
  const float inv_sum = 1.0f / sum;
  for (int e = 0; e < E; ++e) scores[e] *= inv_sum;

  float top_p[kMoeMaxTopK];
  int32_t top_e[kMoeMaxTopK];
  int filled = 0;
  for (int e = 0; e < E; ++e) {
    const float p = scores[e];
    if (filled == k && !(p > top_p[k - 1])) continue;
    int i = filled < k ? filled++ : k - 1;  // the slot the new entry bubbles up from
    while (i > 0 && p > top_p[i - 1]) {
      top_p[i] = top_p[i - 1];
      top_e[i] = top_e[i - 1];
      --i;
    }
    top_p[i] = p;
    top_e[i] = e;
  }

  // MiniMind: topk_weight / (topk_weight.sum() + 1e-20).
  float denom = 1.0f;
  if (renorm) {
    float s = 0.0f;
    for (int j = 0; j < k; ++j) s += top_p[j];
    denom = s + 1e-20f;
  }
  for (int j = 0; j < k; ++j) {
    weights[j] = renorm ? top_p[j] / denom : top_p[j];
    experts[j] = top_e[j];
  }
}

// Router: scores = softmax(logits) over E; the k largest per token (descending, ties to the lower expert id)
// go to experts[N*k] and weights[N*k]; with `renorm` (MiniMind: k > 1 and norm_topk_prob) the weights are
// divided by (their sum + 1e-20). Then a stable counting sort by expert fills offsets[E+1], order and positions.
void moe_route(const float* logits, int64_t N, int E, int k, bool renorm, float* scores, float* weights,
               int32_t* experts, int32_t* offsets, int32_t* order, int32_t* positions);

// dlogits[N,E] += d/dlogits of the router, given the gradients of weights[N,k] and/or scores[N,E]
// (either may be null: no gradient reached it).
void moe_route_backward(float* dlogits, const float* scores, const float* weights, const int32_t* experts,
                        const float* dweights, const float* dscores, int64_t N, int E, int k, bool renorm);

// Auxiliary loss as a weighted sum: out[0] = sum_{b,t,e} coef[b,e] * scores[b,t,e] (scores is [B,T,E]).
// Both of MiniMind's aux-loss modes reduce to this with host-computed coefficients (see lib/ops/moe.ts).
void moe_aux_loss(float* out, const float* scores, const float* coef, int64_t B, int64_t T, int E);
// dscores[b,t,e] += dloss * coef[b,e].
void moe_aux_loss_backward(float* dscores, const float* dloss, const float* coef, int64_t B, int64_t T, int E);

// Dispatch: out[p] = x[order[p] / k] for the N*k rows of C floats.
void moe_dispatch(float* out, const float* x, const int32_t* order, int64_t N, int k, int64_t C);
// dx[t] += sum over slots (in slot order) of dout[positions[t*k + slot]].
void moe_dispatch_backward(float* dx, const float* dout, const int32_t* positions, int64_t N, int k, int64_t C);

// Combine: y[t] = sum over slots (in slot order) of weights[t*k+slot] * expert_out[positions[t*k+slot]].
void moe_combine(float* y, const float* expert_out, const float* weights, const int32_t* positions, int64_t N,
                 int k, int64_t C);
// dexpert_out[p] += weights[a] * dy[a / k] with a = order[p];  dweights[a] += dy[a / k] . expert_out[positions[a]].
// Either output may be null (not needed).
void moe_combine_backward(float* dexpert_out, float* dweights, const float* dy, const float* expert_out,
                          const float* weights, const int32_t* order, const int32_t* positions, int64_t N, int k,
                          int64_t C);

}  // namespace mm::cpu
