// The CUDA backend's host entry points, declared once and instantiated twice by mm_cuda.h:
//   mm::CudaDevice    - compiled by nvcc, runs on the GPU;
//   mm::CudaEmulated  - the same kernel sources compiled by g++ against the emulator (native/cuda/emu/cuemu.h),
//                       running on the CPU over ordinary host memory.
// No include guard on purpose: mm_cuda.h includes this file once per backend with MM_CUDA_BACKEND set.
//
// Conventions: every function returns 0 on success, or non-zero with error_text() saying what failed.
// bf16 tensors cross as uint16_t* (raw bit patterns); shapes: N rows (= B*T tokens), C channels, V vocabulary,
// NH heads of HD dims. Backward functions ACCUMULATE (+=) into gradients, as the autograd tape expects.

struct MM_CUDA_BACKEND {
  static const char* error_text();  // what the last failing call said
  static int fail(const char* text);  // records text, returns 1

  // ---- memory (device memory; host memory for the emulator) ----
  static int alloc(void** out, size_t bytes);
  static int free(void* p);
  static int upload(void* dst, const void* host_src, size_t bytes);
  static int download(void* host_dst, const void* src, size_t bytes);
  static int copy(void* dst, const void* src, size_t bytes);
  static int zero(void* p, size_t bytes);
  static int fill_f32(float* p, int64_t count, float value);
  static int synchronize();

  // ---- elementwise (elementwise.cu) ----
  static int cast_f32_to_bf16(uint16_t* out, const float* in, int64_t n);
  static int cast_bf16_to_f32(float* out, const uint16_t* in, int64_t n);
  // y += alpha * x over n values; y and x each f32 or bf16 (y_bf16, x_bf16), fp32 math. In place (y == x) is fine.
  static int axpy(void* y, bool y_bf16, const void* x, bool x_bf16, float alpha, int64_t n);

  // ---- RMSNorm fused with the residual add (rmsnorm.cu) ----
  // h = x + residual (residual may be null: h = x); y = h / rms(h) * weight; saves h and rstd = 1/rms(h).
  static int rmsnorm_forward(uint16_t* y, uint16_t* h, float* rstd, const uint16_t* x, const uint16_t* residual,
                             const uint16_t* weight, int64_t N, int C, float eps);
  // dh += dL/dh, dweight += dL/dweight (fp32), from dy, the saved h and rstd.
  static int rmsnorm_backward(uint16_t* dh, float* dweight, const uint16_t* dy, const uint16_t* h,
                              const uint16_t* weight, const float* rstd, int64_t N, int C);

  // ---- SwiGLU (swiglu.cu): out = silu(gate) * up; backward accumulates into dgate, dup. All [n] bf16. ----
  static int swiglu_forward(uint16_t* out, const uint16_t* gate, const uint16_t* up, int64_t n);
  static int swiglu_backward(uint16_t* dgate, uint16_t* dup, const uint16_t* dout, const uint16_t* gate,
                             const uint16_t* up, int64_t n);

  // ---- RoPE (rope.cu): x [B, T, NH, HD] bf16; cos/sin [max_T, HD/2] fp32; positions pos0 + t.
  // interleaved: 0 = pairs (i, i + HD/2) (MiniMind), 1 = pairs (2i, 2i+1). backward: out += R^T in; else out = R in.
  static int rope(uint16_t* out, const uint16_t* in, const float* cos_table, const float* sin_table, int B, int T,
                  int NH, int HD, int pos0, int interleaved, int backward);

  // ---- embedding (embedding.cu): out [N, C] = table[ids]; dtable [V, C] fp32 += (deterministic). ----
  static int embedding_forward(uint16_t* out, const int32_t* ids, const uint16_t* table, int64_t N, int C, int V);
  static int embedding_backward(float* dtable, const int32_t* ids, const uint16_t* dout, int64_t N, int C, int V);

  // ---- softmax cross-entropy (cross_entropy.cu): losses [N] fp32 written; logits [N, V] bf16 overwritten by
  // the gradient (softmax - onehot) * dloss; targets < 0 are ignored. ----
  static int cross_entropy(float* losses, uint16_t* logits, const int32_t* targets, int64_t N, int V, float dloss);

  // ---- AdamW (adamw.cu) over fp32 master weights, writing bf16 params; seed != 0: stochastic rounding. ----
  static int adamw(float* master, uint16_t* param, const float* grad, float* m, float* v, int64_t n, float lr,
                   float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale,
                   uint64_t seed);

  // ---- global norm (global_norm.cu): out[0] += sum of x^2; out has 1 + kSumSquaresScratch floats. ----
  static constexpr int kSumSquaresScratch = 128;
  static int sum_squares(float* out, const float* x, int64_t n);

  // ---- GEMM, bf16 inputs, fp32 accumulation, C fp32 or bf16 (c_bf16); contract of native/cpu/gemm.h:
  // C_b = alpha * op(A_b) @ op(B_b) + beta * C_b for b < batch. gemm picks the best implementation (cuBLASLt on
  // the GPU when it loads); gemm_tiled is the WMMA kernel of gemm.cu, always available. ----
  static int gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                  int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB, float beta, void* C,
                  bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch);
  static int gemm_tiled(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                        int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB, float beta,
                        void* C, bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch);

  // ---- causal attention with grouped KV heads (attention.cu), flash-style (no T x T matrix):
  // q, out [B, T, NH, HD]; k, v [B, T, NKV, HD]; lse [B, NH, T] fp32 saved for the backward, which accumulates
  // into dq, dk, dv. HD 32, 48, 64, 96 or 128, NH a multiple of NKV. ----
  static int attention_forward(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                               int B, int T, int NH, int NKV, int HD, float scale);
  static int attention_backward(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout, const uint16_t* out,
                                const float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v, int B,
                                int T, int NH, int NKV, int HD, float scale);

  // ---- mixture-of-experts routing (moe.cu); the contract of native/cpu/moe.h with bf16 rows and logits:
  // logits [N, E] bf16; scores [N, E], weights [N, k] f32; experts, order, positions [N*k], offsets [E+1] int32;
  // x, y [N, C] and expert rows [N*k, C] bf16. Null gradient pointers (dweights, dscores, dexpert_out) are skipped.
  static int moe_route(const uint16_t* logits, int64_t N, int E, int k, bool renorm, float* scores, float* weights,
                       int32_t* experts, int32_t* offsets, int32_t* order, int32_t* positions);
  // dlogits (bf16) += the router's backward from dweights [N, k] and/or dscores [N, E] (f32).
  static int moe_route_backward(uint16_t* dlogits, const float* scores, const float* weights, const int32_t* experts,
                                const float* dweights, const float* dscores, int64_t N, int E, int k, bool renorm);
  // out[0] = sum_{b,t,e} coef[b,e] * scores[b,t,e] (written); dscores[b,t,e] += dloss[0] * coef[b,e].
  static int moe_aux_loss(float* out, const float* scores, const float* coef, int64_t B, int64_t T, int E);
  static int moe_aux_loss_backward(float* dscores, const float* dloss, const float* coef, int64_t B, int64_t T,
                                   int E);
  // out[p] = x[order[p] / k];  dx[t] += sum over slots of dout[positions[t*k + slot]].
  static int moe_dispatch(uint16_t* out, const uint16_t* x, const int32_t* order, int64_t N, int k, int64_t C);
  static int moe_dispatch_backward(uint16_t* dx, const uint16_t* dout, const int32_t* positions, int64_t N, int k,
                                   int64_t C);
  // y[t] = sum over slots of weights[t*k+slot] * expert_out[positions[t*k+slot]];  backward: dexpert_out[p] +=
  // weights[a] * dy[a / k] (a = order[p]), dweights[a] += dy[a / k] . expert_out[positions[a]].
  static int moe_combine(uint16_t* y, const uint16_t* expert_out, const float* weights, const int32_t* positions,
                         int64_t N, int k, int64_t C);
  static int moe_combine_backward(uint16_t* dexpert_out, float* dweights, const uint16_t* dy,
                                  const uint16_t* expert_out, const float* weights, const int32_t* order,
                                  const int32_t* positions, int64_t N, int k, int64_t C);

  // ---- appended: the rest of the training stages and decoding on cuda ----
  // out = a * b over n values; out, a, b each f32 or bf16 (out_bf16, a_bf16, b_bf16), fp32 math (elementwise.cu).
  static int mul(void* out, bool out_bf16, const void* a, bool a_bf16, const void* b, bool b_bf16, int64_t n);
  // Per-token log-probabilities (cross_entropy.cu), the logits [N, V] bf16 left intact: lse [N] and
  // logp [N] = logits[n, target[n]] - lse[n] (fp32, written); targets outside [0, V) give 0.
  static int token_logprobs(float* logp, float* lse, const uint16_t* logits, const int32_t* targets, int64_t N, int V);
  // grad [N, V] bf16 (+)= dlogp[n] * ([v == target[n]] - softmax[n, v]) (accumulate, else overwritten; grad may
  // be the logits themselves); rows with targets outside [0, V) get 0.
  static int token_logprobs_backward(uint16_t* grad, bool accumulate, const uint16_t* logits, const float* lse,
                                     const int32_t* targets, const float* dlogp, int64_t N, int V);
  // Adam with L2 weight decay (torch.optim.Adam): adamw's arguments, with g = grad * grad_scale + weight_decay *
  // master before the moments and no decoupled decay (adamw.cu).
  static int adam_l2(float* master, uint16_t* param, const float* grad, float* m, float* v, int64_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2, float grad_scale,
                     uint64_t seed);
  // Decode attention (attention_decode.cu): q, out [B, T, NH, HD]; k, v [B, Tk, NKV, HD] (a KV cache); all bf16.
  // Causal: query t sits at position Tk - T + t. HD a multiple of 16 up to 128; forward only.
  static int attention_decode(uint16_t* out, const uint16_t* q, const uint16_t* k, const uint16_t* v, int B, int T,
                              int Tk, int NH, int NKV, int HD, float scale, bool causal);
};
