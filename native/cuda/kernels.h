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

  // ---- RMSNorm fused with the residual add (rmsnorm.cu) ----
  // h = x + residual (residual may be null: h = x); y = h / rms(h) * weight; saves h and rstd = 1/rms(h).
  static int rmsnorm_forward(uint16_t* y, uint16_t* h, float* rstd, const uint16_t* x, const uint16_t* residual,
                             const uint16_t* weight, int64_t N, int C, float eps);
  // dh += dL/dh, dweight += dL/dweight (fp32), from dy, the saved h and rstd.
  static int rmsnorm_backward(uint16_t* dh, float* dweight, const uint16_t* dy, const uint16_t* h,
                              const uint16_t* weight, const float* rstd, int64_t N, int C);
};
