// Matrix-vector products for decoding: C[M, N] = alpha * A[M, K] @ B[N, K]^T + beta * C, with M <= 4 rows
// (one new token per sequence) and B in nn.Linear's [out, in] layout, so each output is a dot product of two
// contiguous rows. Packing B, as the GEMM does, would copy every weight once per token; here each weight row
// is read once from memory and used for all M rows, so decoding runs at memory bandwidth.
//
// The weights B may be f32, bf16 or f16 (half the bytes to read: decoding is memory-bound, so about twice the
// speed). Half weights are widened to f32 in registers as they are loaded (bf16: the 16 bits are the top half
// of an f32; f16: the hardware conversion); A, C and every sum stay f32.
//
// Each thread takes blocks of kRowsInFlight weight rows and walks them side by side: M x kRowsInFlight
// independent accumulators hide the 4-cycle FMA latency, and several memory streams are in flight at once.
// Measured (one thread, this machine's shared DRAM): ~10 GB/s for f32 and ~9 GB/s for half weights, i.e.
// decoding with half weights runs ~1.8x faster; per-core bandwidth, not arithmetic, is the limit.
// Every output is one dot product summed in a fixed order, so results do not depend on the thread count.
//
// Also here, for half weights: a GEMM for M > 4 (prefill) that widens blocks of B into a small f32 scratch and
// runs sgemm on each, the embedding lookup (rows of a half matrix widened to f32), and the f32 -> half
// rounding used when weights are loaded.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include "gemm.h"
#include "mm.h"

#if MM_HAVE_X86
#include <immintrin.h>
#endif

namespace mm::cpu {
namespace {

constexpr int kMaxRows = 4;
constexpr int kRowsInFlight = 4;
// Software prefetch distance along a weight row, in bytes: a few percent faster than the hardware
// prefetchers alone with four rows streaming per thread (measured, AVX-512 path).
constexpr int64_t kPrefetchBytes = 2048;

struct Gemv {
  const float* a;
  int64_t lda;
  const void* b;  // f32, bf16 or f16 elements
  int64_t ldb;
  float* c;
  int64_t ldc;
  int64_t M, K;
  float alpha, beta;
};

inline void store(const Gemv& g, int64_t i, int64_t n, float dot) {
  float* out = g.c + i * g.ldc + n;
  *out = g.alpha * dot + (g.beta == 0.0f ? 0.0f : g.beta * *out);
}

// ---- element conversions (portable) ----
inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) bits = sign | 0x7f800000 | (mant << 13);  // inf, NaN
  else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
  else if (mant == 0) bits = sign;  // +-0
  else {  // subnormal: value = mant * 2^-24
    float f = static_cast<float>(mant) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest, ties to even; NaN stays NaN, overflow becomes infinity.
inline uint16_t f32_to_bf16(float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  if ((v & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((v >> 16) | 0x40);
  return static_cast<uint16_t>((v + 0x7fff + ((v >> 16) & 1)) >> 16);
}

inline uint16_t f32_to_f16(float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  const uint32_t sign = (v >> 16) & 0x8000, abs = v & 0x7fffffff;
  if (abs > 0x7f800000) return static_cast<uint16_t>(sign | 0x7e00);            // NaN
  if (abs >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);           // rounds past 65504: infinity
  if (abs >= 0x38800000) {                                                       // normal: rebias 127 -> 15
    const uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1);
    return static_cast<uint16_t>(sign | ((rounded - 0x38000000) >> 13));
  }
  // Subnormal or zero: the value in units of 2^-24, rounded to nearest even (exact products in float).
  const float units = std::fabs(f) * 16777216.0f;
  return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(units)));
}

template <WeightType W>
inline float load_scalar(const void* base, int64_t i) {
  if constexpr (W == WeightType::kF32) return static_cast<const float*>(base)[i];
  else if constexpr (W == WeightType::kBf16) return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  else return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
}

template <WeightType W>
const void* weight_row(const Gemv& g, int64_t n) {
  const size_t bytes = W == WeightType::kF32 ? 4 : 2;
  return static_cast<const char*>(g.b) + n * g.ldb * bytes;
}

template <WeightType W>
void rows_portable(const Gemv& g, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n) {
    const void* w = weight_row<W>(g, n);
    for (int64_t i = 0; i < g.M; ++i) {
      const float* x = g.a + i * g.lda;
      float acc[8] = {0};
      int64_t k = 0;
      for (; k + 8 <= g.K; k += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[k + l] * load_scalar<W>(w, k + l);
      float dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (; k < g.K; ++k) dot += x[k] * load_scalar<W>(w, k);
      store(g, i, n, dot);
    }
  }
}

#if MM_HAVE_X86
template <WeightType W>
__attribute__((target("avx512f"))) inline __m512 load16_avx512(const void* base, int64_t k) {
  if constexpr (W == WeightType::kF32) return _mm512_loadu_ps(static_cast<const float*>(base) + k);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + k));
  if constexpr (W == WeightType::kBf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}

// M input rows x R weight rows (R <= kRowsInFlight) of dot products, 16 lanes at a time; the K % 16 tail is
// added in scalar code.
template <int M, int R, WeightType W>
__attribute__((target("avx512f"))) void block_avx512(const Gemv& g, int64_t n) {
  constexpr int64_t kBytes = W == WeightType::kF32 ? 4 : 2;
  const int64_t K16 = g.K & ~int64_t(15);
  const void* w[R];
  for (int r = 0; r < R; ++r) w[r] = weight_row<W>(g, n + r);
  __m512 acc[M][R];
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K16; k += 16) {
    __m512 x[M];
    for (int i = 0; i < M; ++i) x[i] = _mm512_loadu_ps(g.a + i * g.lda + k);
    for (int r = 0; r < R; ++r) _mm_prefetch(static_cast<const char*>(w[r]) + k * kBytes + kPrefetchBytes, _MM_HINT_T0);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = load16_avx512<W>(w[r], k);
      for (int i = 0; i < M; ++i) acc[i][r] = _mm512_fmadd_ps(x[i], wv, acc[i][r]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) {
      float dot = _mm512_reduce_add_ps(acc[i][r]);
      for (int64_t k = K16; k < g.K; ++k) dot += g.a[i * g.lda + k] * load_scalar<W>(w[r], k);
      store(g, i, n + r, dot);
    }
}

template <int M, WeightType W>
__attribute__((target("avx512f"))) void rows_avx512(const Gemv& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + kRowsInFlight <= n1; n += kRowsInFlight) block_avx512<M, kRowsInFlight, W>(g, n);
  for (; n < n1; ++n) block_avx512<M, 1, W>(g, n);
}

template <WeightType W>
MM_TARGET_AVX2 __attribute__((target("f16c"))) inline __m256 load8_avx2(const void* base, int64_t k) {
  if constexpr (W == WeightType::kF32) return _mm256_loadu_ps(static_cast<const float*>(base) + k);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + k));
  if constexpr (W == WeightType::kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  else return _mm256_cvtph_ps(h);
}

MM_TARGET_AVX2 inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// As block_avx512, 8 lanes at a time; with M = 4 and R = 2 (8 accumulators) to stay within 16 registers.
// (F16C, for f16 weights, comes with every CPU that has AVX2 and FMA.)
template <int M, int R, WeightType W>
MM_TARGET_AVX2 __attribute__((target("f16c"))) void block_avx2(const Gemv& g, int64_t n) {
  const int64_t K8 = g.K & ~int64_t(7);
  const void* w[R];
  for (int r = 0; r < R; ++r) w[r] = weight_row<W>(g, n + r);
  __m256 acc[M][R];
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) acc[i][r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K8; k += 8) {
    for (int r = 0; r < R; ++r) {
      const __m256 wv = load8_avx2<W>(w[r], k);
      for (int i = 0; i < M; ++i) acc[i][r] = _mm256_fmadd_ps(_mm256_loadu_ps(g.a + i * g.lda + k), wv, acc[i][r]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) {
      float dot = hsum_avx2(acc[i][r]);
      for (int64_t k = K8; k < g.K; ++k) dot += g.a[i * g.lda + k] * load_scalar<W>(w[r], k);
      store(g, i, n + r, dot);
    }
}

template <int M, WeightType W>
MM_TARGET_AVX2 __attribute__((target("f16c"))) void rows_avx2(const Gemv& g, int64_t n0, int64_t n1) {
  constexpr int R = M <= 2 ? kRowsInFlight : 2;
  int64_t n = n0;
  for (; n + R <= n1; n += R) block_avx2<M, R, W>(g, n);
  for (; n < n1; ++n) block_avx2<M, 1, W>(g, n);
}
#endif

using RowsFn = void (*)(const Gemv&, int64_t, int64_t);

template <WeightType W>
RowsFn pick_rows(int64_t M) {
#if MM_HAVE_X86
  const std::string_view isa = sgemm_isa();
  if (isa == "avx512") {
    constexpr RowsFn table[] = {rows_avx512<1, W>, rows_avx512<2, W>, rows_avx512<3, W>, rows_avx512<4, W>};
    return table[M - 1];
  }
  if (isa == "avx2") {
    constexpr RowsFn table[] = {rows_avx2<1, W>, rows_avx2<2, W>, rows_avx2<3, W>, rows_avx2<4, W>};
    return table[M - 1];
  }
#endif
  return rows_portable<W>;
}

void run_gemv(WeightType type, const Gemv& g, int64_t N) {
  RowsFn rows = type == WeightType::kF32    ? pick_rows<WeightType::kF32>(g.M)
                : type == WeightType::kBf16 ? pick_rows<WeightType::kBf16>(g.M)
                                            : pick_rows<WeightType::kF16>(g.M);
  // Work is split in blocks of kRowsInFlight rows, at least ~32 KiB of weights per chunk: enough to pay for
  // waking a thread, small enough that 2-16 threads all get a share of a 512 x 512 matrix.
  const int64_t bytes_per_row = g.K * (type == WeightType::kF32 ? 4 : 2);
  const int64_t blocks = (N + kRowsInFlight - 1) / kRowsInFlight;
  const int64_t grain = std::max<int64_t>(1, (int64_t(32) << 10) / (bytes_per_row * kRowsInFlight));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
    rows(g, b0 * kRowsInFlight, std::min(N, b1 * kRowsInFlight));
  });
}

// Widens n half values to f32, vectors at a time where the CPU has them.
template <WeightType W>
void widen_portable(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t c = 0; c < n; ++c) dst[c] = load_scalar<W>(src, c);
}

#if MM_HAVE_X86
template <WeightType W>
__attribute__((target("avx512f"))) void widen_avx512(const uint16_t* src, int64_t n, float* dst) {
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) _mm512_storeu_ps(dst + c, load16_avx512<W>(src, c));
  widen_portable<W>(src + c, n - c, dst + c);
}

template <WeightType W>
MM_TARGET_AVX2 __attribute__((target("f16c"))) void widen_avx2(const uint16_t* src, int64_t n, float* dst) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(dst + c, load8_avx2<W>(src, c));
  widen_portable<W>(src + c, n - c, dst + c);
}
#endif

using WidenFn = void (*)(const uint16_t*, int64_t, float*);

template <WeightType W>
WidenFn pick_widen() {
#if MM_HAVE_X86
  const std::string_view isa = sgemm_isa();
  if (isa == "avx512") return widen_avx512<W>;
  if (isa == "avx2") return widen_avx2<W>;
#endif
  return widen_portable<W>;
}

// Widens rows [0, rows) of a half matrix (row stride ld) into dst [rows, cols].
void widen_rows(WeightType type, const uint16_t* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  const WidenFn widen = type == WeightType::kBf16 ? pick_widen<WeightType::kBf16>() : pick_widen<WeightType::kF16>();
  for (int64_t r = 0; r < rows; ++r) widen(src + r * ld, cols, dst + r * cols);
}

}  // namespace

bool gemv_rows(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (transA || !transB || M > kMaxRows || K == 0) return false;
  run_gemv(WeightType::kF32, Gemv{A, lda, B, ldb, C, ldc, M, K, alpha, beta}, N);
  return true;
}

void gemm_half_weights(WeightType type, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const uint16_t* B, int64_t ldb, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  if (M <= kMaxRows) {
    run_gemv(type, Gemv{A, lda, B, ldb, C, ldc, M, K, 1.0f, 0.0f}, N);
    return;
  }
  // Prefill: widen kBlock weight rows at a time into scratch (a few MiB at most) and multiply them as f32.
  constexpr int64_t kBlock = 512;
  std::vector<float> scratch(static_cast<size_t>(std::min(N, kBlock) * K));
  for (int64_t n0 = 0; n0 < N; n0 += kBlock) {
    const int64_t rows = std::min(kBlock, N - n0);
    parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
      widen_rows(type, B + (n0 + r0) * ldb, ldb, r1 - r0, K, scratch.data() + r0 * K);
    });
    sgemm(false, true, M, rows, K, 1.0f, A, lda, 0, scratch.data(), K, 0, 0.0f, C + n0, ldc, 0, 1);
  }
}

void embedding_half_weights(WeightType type, float* out, const int32_t* ids, int64_t n, const uint16_t* weight,
                            int64_t C) {
  for (int64_t i = 0; i < n; ++i) widen_rows(type, weight + int64_t(ids[i]) * C, C, 1, C, out + i * C);
}

}  // namespace mm::cpu

namespace mm::cpu {

void narrow_weights(WeightType type, uint16_t* dst, const float* src, int64_t n) {
  parallel_for(n, int64_t(1) << 16, [&](int64_t i0, int64_t i1) {
    if (type == WeightType::kBf16) for (int64_t i = i0; i < i1; ++i) dst[i] = f32_to_bf16(src[i]);
    else for (int64_t i = i0; i < i1; ++i) dst[i] = f32_to_f16(src[i]);
  });
}

}  // namespace mm::cpu
