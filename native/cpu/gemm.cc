// GEMM (contract in gemm.h): C = alpha * op(A) @ op(B) + beta * C, row-major, batched, any transposes.
// In the model: M = B*T rows of activations, K and N the layer's input/output widths (C, 2C/3*4, V, ...).
//
// How it is fast (the GotoBLAS / BLIS scheme):
//   - C is computed in register tiles of MR x NR values (the micro-kernel): for each k it loads NR values
//     of row k of op(B) as vectors, broadcasts MR values of column k of op(A), and does MR x (NR / lanes)
//     fused multiply-adds into accumulators that stay in registers until the whole K range is summed.
//   - Both operands are first copied ("packed") into the order the micro-kernel reads them: op(A) as panels
//     of MR rows stored k-major ([k][MR]), op(B) as panels of NR columns ([k][NR]), zero-padded. Every
//     transpose combination becomes the same contiguous stream, and the copy is paid once per reuse.
//   - Loops around the micro-kernel cut K into blocks of kKC (one packed A panel, MR x kKC, stays in L1
//     while it meets every B panel of the block), N into blocks of kNB (the packed kKC x kNB block of B stays
//     in L2 while every A panel streams past it) and M into blocks of kMB (the packed A block, in L3).
//   - Threads split one product by rows, columns or depth (K), whichever copies least, or a batch by items.
//
// Micro-kernels, chosen at run time: AVX-512 14 x 32 (28 zmm accumulators), AVX2+FMA 6 x 16 (12 ymm), and a
// portable 4 x 8 the compiler vectorizes for whatever the baseline ISA is. The AVX-512 one, which this
// project's machines run, also prefetches what the caches would otherwise miss: its C tile and the next
// A panel.
#include "gemm.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <string_view>
#include <utility>

#include "mm.h"

#if MM_HAVE_X86
#include <immintrin.h>
#endif

namespace mm::cpu {
namespace {

// Blocking (floats; blocks are rounded down to whole panels). With AVX-512: kKC * 14 * 4 B = 21 KiB of A panel
// in L1, kKC * kNB * 4 B = 384 KiB of B block in L2, up to kKC * kMB * 4 B = 3.4 MiB of A block in L3.
constexpr int64_t kKC = 384;
constexpr int64_t kNB = 256;
constexpr int64_t kMB = 2304;
// Below this many flops a product runs on one thread: waking the pool costs more than it saves.
constexpr double kMinParallelFlops = 4e6;
// A part of a product split over threads is worth its repacking when it has this many flops per float
// copied (a copied float costs about as much time as 100-200 flops of the micro-kernel).
constexpr double kFlopsPerRepackedFloat = 4000;

// One micro-kernel call: C[0:m, 0:n] = alpha * (packed A panel @ packed B panel) + beta * C, where the
// panels hold kc steps of MR (A) and NR (B) values; m <= MR is picked at compile time, n <= NR is masked.
struct TileArgs {
  int64_t kc;
  const float* a;
  const float* b;
  float* c;
  int64_t ldc;
  int n;
  float alpha, beta;
  // The next A panel, to pull into L2 while this tile computes (the last tile of a row sets it), or null.
  const float* next_a;
};
using TileFn = void (*)(const TileArgs& t);
// Packs `lanes` lanes of kc steps into ceil(lanes / width) panels of kc * width floats, lane l of step k
// going to dst[(l / width) * kc * width + k * width + l % width] and the last panel zero-padded: element
// (k, lane) is src[k * k_stride + lane * lane_stride].
using PackFn = void (*)(float* dst, int width, int64_t lanes, int64_t kc, const float* src, int64_t k_stride,
                        int64_t lane_stride);

struct Isa {
  const char* name;
  int mr, nr;
  const TileFn* tiles;  // tiles[m - 1] handles m rows
  PackFn pack;
};

// ---- packing ---------------------------------------------------------------------------------------

// The two source layouts: each step's lanes contiguous (lane_stride == 1, a plain copy), or each lane's
// steps contiguous (a transpose). Either way the source is read in address order.
void pack_portable(float* dst, int width, int64_t lanes, int64_t kc, const float* src, int64_t k_stride,
                   int64_t lane_stride) {
  const int64_t panels = (lanes + width - 1) / width;
  for (int64_t p = 0; p < panels; ++p) {
    const int n = static_cast<int>(std::min<int64_t>(width, lanes - p * width));
    float* d = dst + p * kc * width;
    const float* s = src + p * width * lane_stride;
    if (lane_stride == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int l = 0; l < n; ++l) d[k * width + l] = s[k * k_stride + l];
    } else {
      for (int l = 0; l < n; ++l)
        for (int64_t k = 0; k < kc; ++k) d[k * width + l] = s[l * lane_stride + k * k_stride];
    }
    for (int64_t k = 0; k < kc; ++k) std::fill(d + k * width + n, d + (k + 1) * width, 0.0f);
  }
}

#if MM_HAVE_X86
// One panel (n <= width lanes) of the transposing case, whose steps are contiguous: 8 x 8 and 4 x 4
// register transposes.
MM_TARGET_AVX2 void transpose_panel_avx2(float* dst, int width, int n, int64_t kc, const float* src,
                                         int64_t ls) {
  int l = 0;
  for (; l + 8 <= n; l += 8) {
    const float* s = src + l * ls;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      // Rows r0..r7 are lanes l..l+7 at steps k..k+7; the transpose gives steps as rows.
      __m256 r0 = _mm256_loadu_ps(s + 0 * ls + k), r1 = _mm256_loadu_ps(s + 1 * ls + k);
      __m256 r2 = _mm256_loadu_ps(s + 2 * ls + k), r3 = _mm256_loadu_ps(s + 3 * ls + k);
      __m256 r4 = _mm256_loadu_ps(s + 4 * ls + k), r5 = _mm256_loadu_ps(s + 5 * ls + k);
      __m256 r6 = _mm256_loadu_ps(s + 6 * ls + k), r7 = _mm256_loadu_ps(s + 7 * ls + k);
      __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = dst + k * width + l;
      _mm256_storeu_ps(d + 0 * width, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * width, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * width, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * width, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * width, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * width, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * width, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * width, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; k < kc; ++k)
      for (int j = 0; j < 8; ++j) dst[k * width + l + j] = s[j * ls + k];
  }
  for (; l + 4 <= n; l += 4) {
    const float* s = src + l * ls;
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
      __m128 r0 = _mm_loadu_ps(s + 0 * ls + k), r1 = _mm_loadu_ps(s + 1 * ls + k);
      __m128 r2 = _mm_loadu_ps(s + 2 * ls + k), r3 = _mm_loadu_ps(s + 3 * ls + k);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      float* d = dst + k * width + l;
      _mm_storeu_ps(d + 0 * width, r0);
      _mm_storeu_ps(d + 1 * width, r1);
      _mm_storeu_ps(d + 2 * width, r2);
      _mm_storeu_ps(d + 3 * width, r3);
    }
    for (; k < kc; ++k)
      for (int j = 0; j < 4; ++j) dst[k * width + l + j] = s[j * ls + k];
  }
  for (; l < n; ++l)
    for (int64_t k = 0; k < kc; ++k) dst[k * width + l] = src[l * ls + k];
  if (n < width)
    for (int64_t k = 0; k < kc; ++k) std::fill(dst + k * width + n, dst + (k + 1) * width, 0.0f);
}

MM_TARGET_AVX2 void pack_avx2(float* dst, int width, int64_t lanes, int64_t kc, const float* src,
                              int64_t k_stride, int64_t lane_stride) {
  const int64_t panels = (lanes + width - 1) / width;
  if (k_stride == 1) {
    for (int64_t p = 0; p < panels; ++p)
      transpose_panel_avx2(dst + p * kc * width, width, static_cast<int>(std::min<int64_t>(width, lanes - p * width)),
                           kc, src + p * width * lane_stride, lane_stride);
    return;
  }
  if (lane_stride != 1) return pack_portable(dst, width, lanes, kc, src, k_stride, lane_stride);
  // The copy, a few panels at a time: each step reads a few whole cache lines of the source and writes
  // a few sequential streams. (Writing all panels at once would be worse: panels lie kc * width floats
  // apart, which maps them all onto a couple of L1 sets.)
  const int64_t group = std::max(1, 64 / width);
  for (int64_t p0 = 0; p0 < panels; p0 += group) {
    const int64_t p1 = std::min(panels, p0 + group);
    for (int64_t k = 0; k < kc; ++k) {
      const float* s = src + k * k_stride + p0 * width;
      // Rows lie k_stride apart, too far for the hardware prefetcher: ask for the row 8 steps ahead.
      if (k + 8 < kc)
        for (int64_t line = 0; line < (p1 - p0) * width; line += 16)
          _mm_prefetch(reinterpret_cast<const char*>(s + 8 * k_stride + line), _MM_HINT_T0);
      for (int64_t p = p0; p < p1; ++p, s += width) {
        const int n = static_cast<int>(std::min<int64_t>(width, lanes - p * width));
        float* d = dst + (p * kc + k) * width;
        int l = 0;
        for (; l + 8 <= n; l += 8) _mm256_storeu_ps(d + l, _mm256_loadu_ps(s + l));
        for (; l + 4 <= n; l += 4) _mm_storeu_ps(d + l, _mm_loadu_ps(s + l));
        for (; l < n; ++l) d[l] = s[l];
        for (; l < width; ++l) d[l] = 0.0f;
      }
    }
  }
}
#endif

// ---- micro-kernels ------------------------------------------------------------------------------------

// Builds the table tiles[m - 1] = Tile<m> for m in 1..MR.
template <template <int> class Tile, int... M>
constexpr std::array<TileFn, sizeof...(M)> tile_table(std::integer_sequence<int, M...>) {
  return {Tile<M + 1>::run...};
}

constexpr int kPortableMR = 4, kPortableNR = 8;

template <int R>
struct TilePortable {
  static void run(const TileArgs& t) {
    constexpr int MR = kPortableMR, NR = kPortableNR;
    const float* a = t.a;
    const float* b = t.b;
    float acc[R][NR] = {};
    for (int64_t k = 0; k < t.kc; ++k, a += MR, b += NR)
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] += a[r] * b[j];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < t.n; ++j) {
        float* cr = t.c + r * t.ldc + j;
        *cr = t.alpha * acc[r][j] + (t.beta == 0.0f ? 0.0f : t.beta * *cr);
      }
  }
};
const auto kPortableTiles = tile_table<TilePortable>(std::make_integer_sequence<int, kPortableMR>());

#if MM_HAVE_X86
constexpr int kAvx2MR = 6, kAvx2NR = 16;

template <int R>
struct TileAvx2 {
  MM_TARGET_AVX2 static void run(const TileArgs& t) {
    constexpr int MR = kAvx2MR, NR = kAvx2NR;
    const float* a = t.a;
    const float* b = t.b;
    __m256 lo[R], hi[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < t.kc; ++k, a += MR, b += NR) {
      if (t.next_a) _mm_prefetch(reinterpret_cast<const char*>(t.next_a + k * MR), _MM_HINT_T1);
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r);
        lo[r] = _mm256_fmadd_ps(ar, b0, lo[r]);
        hi[r] = _mm256_fmadd_ps(ar, b1, hi[r]);
      }
    }
    // Lane j of the masks is on when column j (of 16) exists.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32(t.n), lane);
    const __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32(t.n - 8), lane);
    const __m256 va = _mm256_set1_ps(t.alpha), vb = _mm256_set1_ps(t.beta);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      float* cr = t.c + r * t.ldc;
      __m256 x0 = _mm256_mul_ps(va, lo[r]), x1 = _mm256_mul_ps(va, hi[r]);
      if (t.beta != 0.0f) {
        x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, mlo), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, mhi), x1);
      }
      _mm256_maskstore_ps(cr, mlo, x0);
      _mm256_maskstore_ps(cr + 8, mhi, x1);
    }
  }
};
const auto kAvx2Tiles = tile_table<TileAvx2>(std::make_integer_sequence<int, kAvx2MR>());

constexpr int kAvx512MR = 14, kAvx512NR = 32;

template <int R>
struct TileAvx512 {
  __attribute__((target("avx512f"), always_inline)) static inline void step(const float* a, const float* b,
                                                                            __m512* lo, __m512* hi) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      lo[r] = _mm512_fmadd_ps(ar, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(ar, b1, hi[r]);
    }
  }

  template <_mm_hint kHint>
  static inline void prefetch_c(const float* c, int64_t ldc) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), kHint);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), kHint);
    }
  }

  __attribute__((target("avx512f"))) static void run(const TileArgs& t) {
    constexpr int MR = kAvx512MR, NR = kAvx512NR;
    const float* a = t.a;
    const float* b = t.b;
    float* c = t.c;
    const int64_t ldc = t.ldc;
    const int n = t.n;
    __m512 lo[R], hi[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
    // C is read only at the end: ask for its lines now into L2 (into L1 there, they would be evicted by the
    // panels streaming through), and into L1 a few steps before the end.
    prefetch_c<_MM_HINT_T1>(c, ldc);
    // Four steps per iteration (fewer loop instructions). The last tile of a row also pulls the next A
    // panel into L2, MR * 4 floats (under four lines) per iteration.
    int64_t k = 0;
    const int64_t main_steps = std::max<int64_t>(0, t.kc - 16) / 4 * 4;
    if (t.next_a) {
      for (; k < main_steps; k += 4, a += 4 * MR, b += 4 * NR) {
        const char* next = reinterpret_cast<const char*>(t.next_a + k * MR);
        for (int line = 0; line < 4 * MR * 4; line += 64) _mm_prefetch(next + line, _MM_HINT_T1);
        step(a, b, lo, hi);
        step(a + MR, b + NR, lo, hi);
        step(a + 2 * MR, b + 2 * NR, lo, hi);
        step(a + 3 * MR, b + 3 * NR, lo, hi);
      }
    } else {
      for (; k < main_steps; k += 4, a += 4 * MR, b += 4 * NR) {
        step(a, b, lo, hi);
        step(a + MR, b + NR, lo, hi);
        step(a + 2 * MR, b + 2 * NR, lo, hi);
        step(a + 3 * MR, b + 3 * NR, lo, hi);
      }
    }
    prefetch_c<_MM_HINT_T0>(c, ldc);
    for (; k < t.kc; ++k, a += MR, b += NR) step(a, b, lo, hi);
    const __mmask16 mlo = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 mhi = n >= 32 ? 0xFFFF : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
    const __m512 va = _mm512_set1_ps(t.alpha), vb = _mm512_set1_ps(t.beta);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      float* cr = c + r * ldc;
      __m512 x0 = _mm512_mul_ps(va, lo[r]), x1 = _mm512_mul_ps(va, hi[r]);
      if (t.beta != 0.0f) {
        x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mlo, cr), x0);
        x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mhi, cr + 16), x1);
      }
      _mm512_mask_storeu_ps(cr, mlo, x0);
      _mm512_mask_storeu_ps(cr + 16, mhi, x1);
    }
  }
};
const auto kAvx512Tiles = tile_table<TileAvx512>(std::make_integer_sequence<int, kAvx512MR>());
#endif

const Isa kPortable{"portable", kPortableMR, kPortableNR, kPortableTiles.data(), pack_portable};
#if MM_HAVE_X86
const Isa kAvx2{"avx2", kAvx2MR, kAvx2NR, kAvx2Tiles.data(), pack_avx2};
const Isa kAvx512{"avx512", kAvx512MR, kAvx512NR, kAvx512Tiles.data(), pack_avx2};
#endif

const Isa* best_isa() {
#if MM_HAVE_X86
  if (cpu_features().avx512f && use_avx2()) return &kAvx512;
  if (use_avx2()) return &kAvx2;
#endif
  return &kPortable;
}

std::atomic<const Isa*> g_forced_isa{nullptr};

const Isa& active_isa() {
  const Isa* forced = g_forced_isa.load(std::memory_order_relaxed);
  return forced ? *forced : *best_isa();
}

// ---- one product on one thread ---------------------------------------------------------------------------

// C = alpha * op(A) @ op(B) + beta * C with op(A)(i, k) = a[i * a_row + k * a_k] and
// op(B)(k, j) = b[k * b_k + j * b_col]: the transposes are only strides from here on.
struct Product {
  const float* a;
  int64_t a_row, a_k;
  const float* b;
  int64_t b_k, b_col;
  float* c;
  int64_t ldc;
  int64_t m, n, k;
  float alpha, beta;

  Product rows(int64_t i0, int64_t count) const {
    Product p = *this;
    p.a += i0 * a_row;
    p.c += i0 * ldc;
    p.m = count;
    return p;
  }
  Product cols(int64_t j0, int64_t count) const {
    Product p = *this;
    p.b += j0 * b_col;
    p.c += j0;
    p.n = count;
    return p;
  }
  Product depth(int64_t p0, int64_t count) const {
    Product p = *this;
    p.a += p0 * a_k;
    p.b += p0 * b_k;
    p.k = count;
    return p;
  }
};

// A growable 64-byte-aligned float buffer.
class Buffer {
 public:
  ~Buffer() { aligned_free(data_); }
  float* get(size_t floats) {
    if (floats > size_) {
      float* grown = static_cast<float*>(aligned_alloc_zeroed(floats * sizeof(float)));
      aligned_free(data_);
      data_ = grown;
      size_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

// Packed blocks of A and B, one pair per thread (sgemm may run on many threads at once).
struct Workspace {
  Buffer a, b;
};
thread_local Workspace t_workspace;

// C = beta * C over an m x n block (the whole product when K = 0 or alpha = 0).
void scale_c(float* c, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.0f) std::fill(row, row + n, 0.0f);
    else
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

void gemm_serial(const Isa& isa, const Product& p) {
  if (p.m <= 0 || p.n <= 0) return;
  if (p.k <= 0 || p.alpha == 0.0f) return scale_c(p.c, p.ldc, p.m, p.n, p.beta);
  const int mr = isa.mr, nr = isa.nr;
  // Row and column blocks hold whole panels; the buffers hold the largest block, padded to whole panels.
  const int64_t mb_step = kMB / mr * mr, nb_step = kNB / nr * nr;
  const int64_t mb_max = std::min(mb_step, (p.m + mr - 1) / mr * mr);
  const int64_t nb_max = std::min(nb_step, (p.n + nr - 1) / nr * nr);
  float* a_pack = t_workspace.a.get(mb_max * kKC);
  float* b_pack = t_workspace.b.get(nb_max * kKC);
  for (int64_t i0 = 0; i0 < p.m; i0 += mb_step) {
    const int64_t mb = std::min(mb_step, p.m - i0);
    for (int64_t p0 = 0; p0 < p.k; p0 += kKC) {
      const int64_t kc = std::min(kKC, p.k - p0);
      const float beta = p0 == 0 ? p.beta : 1.0f;  // later K blocks add to what the first wrote
      isa.pack(a_pack, mr, mb, kc, p.a + i0 * p.a_row + p0 * p.a_k, p.a_k, p.a_row);
      for (int64_t j0 = 0; j0 < p.n; j0 += nb_step) {
        const int64_t nb = std::min(nb_step, p.n - j0);
        isa.pack(b_pack, nr, nb, kc, p.b + p0 * p.b_k + j0 * p.b_col, p.b_k, p.b_col);
        for (int64_t ir = 0; ir < mb; ir += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, mb - ir));
          const TileFn tile = isa.tiles[rows - 1];
          float* c_rows = p.c + (i0 + ir) * p.ldc + j0;
          for (int64_t jr = 0; jr < nb; jr += nr) {
            const int cols = static_cast<int>(std::min<int64_t>(nr, nb - jr));
            const bool last = jr + nr >= nb && ir + mr < mb;
            tile({kc, a_pack + ir * kc, b_pack + jr * kc, c_rows + jr, p.ldc, cols, p.alpha, beta,
                  last ? a_pack + (ir + mr) * kc : nullptr});
          }
        }
      }
    }
  }
}

// ---- one product on all threads ------------------------------------------------------------------------

// The part [t * units / parts, (t + 1) * units / parts) of `units`, scaled by `unit` and clipped to `total`.
std::pair<int64_t, int64_t> share(int64_t total, int64_t unit, int t, int parts) {
  const int64_t units = (total + unit - 1) / unit;
  const int64_t begin = std::min(total, units * t / parts * unit);
  const int64_t end = std::min(total, units * (t + 1) / parts * unit);
  return {begin, end - begin};
}

// Each extra thread that splits rows repacks all of op(B); one that splits columns repacks op(A); one that
// splits depth writes and re-reads a private M x N partial sum. Pick the split that copies least.
void gemm_parallel(const Isa& isa, const Product& p, int threads) {
  constexpr double kNever = std::numeric_limits<double>::infinity();
  const double by_rows = p.m >= int64_t{2} * threads * isa.mr ? double(p.k) * p.n : kNever;
  const double by_cols = p.n >= int64_t{2} * threads * isa.nr ? double(p.m) * p.k : kNever;
  const double by_depth = p.k >= int64_t{threads} * kKC ? 3.0 * p.m * p.n : kNever;
  const double best = std::min({by_rows, by_cols, by_depth});
  if (best == kNever) return gemm_serial(isa, p);
  if (best == by_rows || best == by_cols) {
    const bool rows = best == by_rows;
    const int64_t total = rows ? p.m : p.n, unit = rows ? isa.mr : isa.nr;
    // Parts are claimed by whichever thread is free, so a thread slowed down (by another process on its
    // core, say) takes fewer. More parts than threads balance better but each repacks the shared operand
    // (`best` floats): split further only while a part's flops dwarf that copy.
    const double flops = 2.0 * p.m * p.n * p.k;
    int parts = threads;
    while (parts < 4 * threads && flops / (2 * parts) >= kFlopsPerRepackedFloat * best &&
           total / (2 * parts) >= 4 * unit)
      parts *= 2;
    parallel_tasks(parts, [&](int t) {
      auto [start, count] = share(total, unit, t, parts);
      if (count > 0) gemm_serial(isa, rows ? p.rows(start, count) : p.cols(start, count));
    });
    return;
  }
  // Depth: part 0 updates C itself (with beta); part t > 0 writes alpha * its partial product into
  // partials[t - 1], summed into C afterwards.
  static thread_local Buffer t_partials;
  const int64_t mn = p.m * p.n;
  float* partials = t_partials.get(static_cast<size_t>(mn) * (threads - 1));
  parallel_tasks(threads, [&](int t) {
    auto [start, count] = share(p.k, 8, t, threads);
    Product part = p.depth(start, count);
    if (t > 0) {
      part.c = partials + (t - 1) * mn;
      part.ldc = p.n;
      part.beta = 0.0f;
    }
    gemm_serial(isa, part);
  });
  parallel_for(p.m, 16, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) {
      float* row = p.c + i * p.ldc;
      for (int t = 1; t < threads; ++t) {
        const float* part = partials + (t - 1) * mn + i * p.n;
        for (int64_t j = 0; j < p.n; ++j) row[j] += part[j];
      }
    }
  });
}

}  // namespace

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, int64_t strideA,
           const float* B, int64_t ldb, int64_t strideB,
           float beta, float* C, int64_t ldc, int64_t strideC, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  const Isa& isa = active_isa();
  Product p{A, transA ? 1 : lda, transA ? lda : 1, B, transB ? 1 : ldb, transB ? ldb : 1, C, ldc,
            M, N, K, alpha, beta};
  auto item = [&](int64_t b) {
    Product q = p;
    q.a += b * strideA;
    q.b += b * strideB;
    q.c += b * strideC;
    return q;
  };
  const int threads = num_threads();
  const double flops = 2.0 * M * N * std::max<int64_t>(K, 1);
  if (threads == 1 || flops * batch < kMinParallelFlops) {
    for (int64_t b = 0; b < batch; ++b) gemm_serial(isa, item(b));
  } else if (batch >= threads && (batch % threads == 0 || batch >= 4 * threads)) {
    // Whole items per thread: nothing is copied twice.
    parallel_for(batch, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) gemm_serial(isa, item(b));
    });
  } else {
    for (int64_t b = 0; b < batch; ++b) {
      if (flops < kMinParallelFlops) gemm_serial(isa, item(b));
      else gemm_parallel(isa, item(b), threads);
    }
  }
}

const char* sgemm_isa() { return active_isa().name; }

bool sgemm_force_isa(const char* name) {
  const std::string_view want(name);
  if (want == "auto") {
    g_forced_isa.store(nullptr);
    return true;
  }
  const Isa* found = nullptr;
  if (want == "portable") found = &kPortable;
#if MM_HAVE_X86
  if (want == "avx2" && use_avx2()) found = &kAvx2;
  if (want == "avx512" && cpu_features().avx512f && use_avx2()) found = &kAvx512;
#endif
  if (!found) return false;
  g_forced_isa.store(found);
  return true;
}

}  // namespace mm::cpu
