// Runs every kernel of native/cuda/kernels/ once through the emulated backend, for the ThreadSanitizer build
// made by check.sh: any missing barrier in a production kernel is reported as a data race (exit 66).
// Numerics are checked by the jest tests (test/cuda-kernels.test.ts); this only needs valid inputs.
#include <cstdio>
#include <vector>

#include "mm_cuda.h"

using K = mm::CudaEmulated;

int main() {
  const int N = 40, C = 96, V = 300, NH = 2, HD = 16, T = 5;
  std::vector<float> f(4 * N * V, 0.25f), g(4 * N * V, 0.5f), m(N * V, 0.f), v(N * V, 0.f), out(1 + 128, 0.f);
  std::vector<uint16_t> a(N * V, 0x3f80), b(N * V, 0x3f00), c(N * V, 0x3e80), d(N * V, 0);
  std::vector<int32_t> ids(N);
  for (int i = 0; i < N; ++i) ids[i] = (i * 7) % V;
  int failures = 0;
  auto run = [&](int status, const char* what) {
    if (status) std::printf("FAIL %s: %s\n", what, K::error_text());
    failures += status != 0;
  };
  run(K::cast_f32_to_bf16(d.data(), f.data(), N * C), "cast_f32_to_bf16");
  run(K::cast_bf16_to_f32(g.data(), a.data(), N * C), "cast_bf16_to_f32");
  run(K::rmsnorm_forward(d.data(), c.data(), f.data(), a.data(), b.data(), a.data(), N, C, 1e-6f), "rmsnorm_forward");
  run(K::rmsnorm_backward(d.data(), g.data(), a.data(), c.data(), b.data(), f.data(), N, C), "rmsnorm_backward");
  run(K::swiglu_forward(d.data(), a.data(), b.data(), N * C), "swiglu_forward");
  run(K::swiglu_backward(c.data(), d.data(), a.data(), b.data(), a.data(), N * C), "swiglu_backward");
  run(K::rope(d.data(), a.data(), f.data(), g.data(), 2, T, NH, HD, 1, 0, 0), "rope");
  run(K::embedding_forward(d.data(), ids.data(), a.data(), N, C, V), "embedding_forward");
  run(K::embedding_backward(g.data(), ids.data(), a.data(), N, C, V), "embedding_backward");
  run(K::cross_entropy(f.data(), d.data(), ids.data(), N, V, 1.f / N), "cross_entropy");
  run(K::adamw(f.data(), d.data(), g.data(), m.data(), v.data(), N * C, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.05f,
               1.f, 7),
      "adamw");
  run(K::sum_squares(out.data(), f.data(), N * C), "sum_squares");
  run(K::gemm(false, true, N, 48, C, 1.f, a.data(), C, 0, b.data(), C, 0, 0.f, f.data(), false, 48, 0, 1), "gemm");
  run(K::attention_forward(d.data(), f.data(), a.data(), b.data(), c.data(), 2, T, 4, 2, 32, 0.17f), "attention_forward");
  run(K::attention_backward(a.data(), b.data(), c.data(), d.data(), d.data(), f.data(), a.data(), b.data(), c.data(), 2,
                            T, 4, 2, 32, 0.17f),
      "attention_backward");
  std::printf("kernels under TSan: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
