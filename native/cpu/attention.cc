// Flash-style causal attention with GQA on the CPU: forward and backward (shapes in attention.h).
//
// Forward, for every (batch b, KV head) one pool task (or a few, each taking every few query tiles, when there
// are too few (b, KV head) pairs for the threads), and within it for every tile of kBr queries of every query
// head of the group:
//   for each tile of kBc keys the queries can see:
//     S = K_tile . Q_tile^T                      scores, kept in log2 units (Q is pre-scaled by log2(e)/sqrt(HD))
//     m_new = max(m, rowmax S);  P = 2^(S - m_new);  l = l * 2^(m - m_new) + rowsum P
//     O = O * 2^(m - m_new) + P V                (the "online softmax": no T x T matrix ever exists)
//   out = O / l,  lse = (m + log2 l) * ln 2
// Backward, for every (batch b, KV head), one task that loops over the query heads of its group, recomputing
// P = 2^(S - lse * log2(e)) tile by tile, with D = rowsum(dO * O):
//   dV += P^T dO,   dP = dO V^T,   dS = P * (dP - D) / sqrt(HD),   dK += dS^T Q,   dQ += dS K
// The task owns dk/dv of its KV head and dq of its query heads, so the sums need no atomics and always run
// in the same order (deterministic, whatever the number of threads).
//
// Layout trick: score tiles are stored transposed, keys x queries, so vectors run along queries. The softmax
// statistics (max, sum) of W queries are then plain vertical vector ops. Tiles that cross the causal diagonal
// are worked in slices of kSlice rows that skip what the mask zeroes.
//
// Memory: rows of a [B, T, heads, HD] tensor lie 1-2 KiB apart in MiniMind. Read in place, such rows crowd a few
// L1 and L2 sets and miss again each time a product re-reads them, and the hardware prefetchers do not foresee
// them. So a task packs what it re-reads into contiguous scratch: K and V of its KV head (once per task), Q^T and
// dO^T (transposed in registers) and Q and dO rows (once per query tile); the backward sums dQ, dK and dV in
// packed buffers that are added to the gradients once, and prefetches the next query tile's rows ahead.
//
// Products are register-blocked micro-kernels (tile_product below): MR rows x NV vectors of the output stay
// in registers while one operand is broadcast element by element and the other is loaded as vectors.
//
// One source, three ISAs: the kernel section at the end of this file is written with GCC/Clang vector
// extensions of W floats and compiled three times (the file includes itself), inside `#pragma GCC target`
// regions: AVX-512 (W=16), AVX2+FMA (W=8) and portable (W=4: SSE2 on x86-64, NEON on arm64). A runtime
// check picks one, so the binary runs on any x86-64. (Templates compiled outside such a region and then
// inlined into it do not work: GCC first lowers their 64-byte vectors as if the CPU had no AVX-512.)
#ifndef MM_ATTENTION_KERNELS
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "mm.h"
#include "attention.h"

#if MM_HAVE_X86
#include <immintrin.h>
#endif

namespace mm::cpu {
namespace {

// Tile sizes: queries per task and keys per step (a multiple of every vector width, and a power of two so that
// power-of-two register blocks divide tiles and head dims, and T = 512 splits into whole tiles).
constexpr int64_t kBr = 64;
constexpr int64_t kBc = 64;
constexpr int64_t kSlice = 16;  // rows per slice of a tile on the causal diagonal (a multiple of every block height)

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Geometry {
  int64_t row_q;      // floats between consecutive positions in q/out/dout: NH * HD
  int64_t row_kv;     // ... in k/v: NKV * HD
  int64_t group;      // query heads per KV head
  int64_t q_tiles;    // ceil(T / kBr)
  int64_t first_pos;  // absolute position of query 0 when causal (Tk - T), else unused
  float q_scale;      // log2(e) / sqrt(HD): scores come out in log2 units

  explicit Geometry(const AttentionShape& s)
      : row_q(s.NH * s.HD), row_kv(s.NKV * s.HD), group(s.NH / s.NKV), q_tiles((s.T + kBr - 1) / kBr),
        first_pos(s.Tk - s.T), q_scale(kLog2e / std::sqrt(static_cast<float>(s.HD))) {}

  // Keys [0, end) that queries i0 .. i0 + rows - 1 can see.
  int64_t key_end(const AttentionShape& s, int64_t i0, int64_t rows) const {
    return s.causal ? std::min(s.Tk, first_pos + i0 + rows) : s.Tk;
  }
};

// Sets S^T[j, i] = -inf where key j0 + j lies after query i0 + i (only tiles crossing the diagonal have any).
void mask_future_keys(const AttentionShape& s, const Geometry& g, float* st, int64_t i0, int64_t j0, int64_t keys) {
  if (!s.causal) return;
  for (int64_t j = 0; j < keys; ++j) {
    const int64_t first_seen_by = std::min(kBr, std::max<int64_t>(0, j0 + j - g.first_pos - i0));
    std::fill(st + j * kBr, st + j * kBr + first_seen_by, kNegInf);
  }
}

// Per-thread scratch memory for a task's buffers (kept between calls; it grows to the largest task seen).
// Buffers are carved so that their starts differ modulo 4 KiB: two buffers at the same offset within a page
// make loads from one wait on stores to the other ("4K aliasing").
class Scratch {
 public:
  explicit Scratch(int64_t floats) {
    thread_local std::vector<float> buffer;
    const size_t needed = static_cast<size_t>(floats) + kSlack;
    if (buffer.size() < needed) buffer.resize(needed);
    next_ = buffer.data() + (16 - reinterpret_cast<uintptr_t>(buffer.data()) / 4 % 16) % 16;  // 64-byte aligned
  }
  // A buffer of n floats (n a multiple of 16), 64-byte aligned and one cache line further along its page
  // than the previous one.
  float* take(int64_t n) {
    float* p = next_;
    next_ += n + 16;
    return p;
  }
  static constexpr int64_t kSlack = 16 * 16;  // alignment plus the skews of up to 15 buffers

 private:
  float* next_;
};

// Tile products C[m, n] (+)= sum_k A(m, k) * B[k, n] read A one element at a time (and broadcast it)
// through one of these accessors.

// A(m, k) = a[m * ld + k]: K or V rows, packed.
struct RowMajor {
  const float* a;
  int64_t ld;
  float at(int m, int64_t k) const { return a[m * ld + k]; }
  RowMajor rows_from(int64_t m) const { return {a + m * ld, ld}; }
};
// A(m, k) = a[k * ld + m]: a keys x queries tile (P^T, dS^T) read as queries x keys.
struct ColMajor {
  const float* a;
  int64_t ld;
  float at(int m, int64_t k) const { return a[k * ld + m]; }
  ColMajor rows_from(int64_t m) const { return {a + m, ld}; }
};
// A(m, k) = a[m * kBr + k]: a keys x queries tile (P or dS) as it is stored.
struct TileRows {
  const float* a;
  float at(int m, int64_t k) const { return a[m * kBr + k]; }
  TileRows rows_from(int64_t m) const { return {a + m * kBr}; }
};

struct ForwardArgs {
  float* out;
  float* lse;
  const float* q;
  const float* k;
  const float* v;
  int64_t q_tile_parts;  // tasks per (batch, KV head), each taking every q_tile_parts-th query tile
};

struct BackwardArgs {
  float* dq;
  float* dk;
  float* dv;
  const float* dout;
  const float* q;
  const float* k;
  const float* v;
  const float* out;
  const float* lse;
};

// ---- the kernels, once per ISA: W floats per vector, ACC accumulator registers --------------------------

#define MM_ATTENTION_KERNELS
// Vectors of 64 bytes only ever live inside the AVX-512 copy; GCC's ABI note about passing them does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace portable {
constexpr int W = 4, ACC = 12;
#include "attention.cc"  // NOLINT(build/include): the kernel section below
}  // namespace portable

#if MM_HAVE_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr int W = 8, ACC = 12;
#include "attention.cc"  // NOLINT(build/include)
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
#define MM_ATTENTION_AVX512  // the kernel section may use AVX-512 intrinsics
namespace avx512 {
constexpr int W = 16, ACC = 24;
#include "attention.cc"  // NOLINT(build/include)
}  // namespace avx512
#undef MM_ATTENTION_AVX512
#pragma GCC pop_options
#endif

#pragma GCC diagnostic pop
#undef MM_ATTENTION_KERNELS

// While alive, the calling thread flushes denormal results and inputs to zero (x86 MXCSR FTZ and DAZ bits).
// Tiny probabilities times small values would otherwise produce denormals, which cost ~100 cycles each on
// many x86 cores; at fp32 they are indistinguishable from 0 in a softmax.
class FlushDenormals {
 public:
#if MM_HAVE_X86
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#endif
};

using ForwardTask = void (*)(const AttentionShape&, const ForwardArgs&, int64_t);
using BackwardTask = void (*)(const AttentionShape&, const BackwardArgs&, int64_t);

// The widest ISA that is both requested and available.
VectorIsa resolve(VectorIsa want) {
  if (want == VectorIsa::kBest) want = VectorIsa::kAvx512;
  if (want == VectorIsa::kAvx512 && !cpu_features().avx512f) want = VectorIsa::kAvx2;
  if (want == VectorIsa::kAvx2 && !use_avx2()) want = VectorIsa::kPortable;
  return want;
}

}  // namespace

void attention_forward(const AttentionShape& s, float* out, float* lse, const float* q, const float* k,
                       const float* v, VectorIsa isa) {
  ForwardTask task = portable::forward_kv_head;
#if MM_HAVE_X86
  if (resolve(isa) == VectorIsa::kAvx512) task = avx512::forward_kv_head;
  if (resolve(isa) == VectorIsa::kAvx2) task = avx2::forward_kv_head;
#endif
  // One task per (batch, KV head) when there are enough of them to share out; otherwise each is split into
  // parts by query tiles (which query a task computes does not change how it is computed: results stay the same).
  const int64_t kv_heads = s.B * s.NKV, q_tiles = Geometry(s).q_tiles;
  const int64_t parts = std::clamp<int64_t>((2 * num_threads() + kv_heads - 1) / kv_heads, 1, q_tiles);
  const ForwardArgs args{out, lse, q, k, v, parts};
  parallel_for(kv_heads * parts, 1, [&](int64_t begin, int64_t end) {
    const FlushDenormals flush;
    for (int64_t t = begin; t < end; ++t) task(s, args, t);
  });
}

void attention_backward(const AttentionShape& s, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out, const float* lse,
                        VectorIsa isa) {
  BackwardTask task = portable::backward_kv_head;
#if MM_HAVE_X86
  if (resolve(isa) == VectorIsa::kAvx512) task = avx512::backward_kv_head;
  if (resolve(isa) == VectorIsa::kAvx2) task = avx2::backward_kv_head;
#endif
  const BackwardArgs args{dq, dk, dv, dout, q, k, v, out, lse};
  parallel_for(s.B * s.NKV, 1, [&](int64_t begin, int64_t end) {
    const FlushDenormals flush;
    for (int64_t t = begin; t < end; ++t) task(s, args, t);
  });
}

}  // namespace mm::cpu

#else  // MM_ATTENTION_KERNELS: the kernel section, included above once per ISA with W and ACC defined.

// ---- vectors of W floats ----------------------------------------------------------------------------------

typedef float F __attribute__((vector_size(4 * W)));
typedef int32_t I __attribute__((vector_size(4 * W)));

inline F load(const float* p) {
  F v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, F v) { std::memcpy(p, &v, sizeof v); }
inline F broadcast(float s) { return s - F{}; }  // scalar op vector broadcasts; subtracting +0 folds away
inline F vmax(F a, F b) { return a > b ? a : b; }

// 2^t for t <= 0 (a score minus its row's max), 0 for t = -inf (a masked key) and, as a flushed denormal, below
// 2^-126. t = n + f with n = round(t) and |f| <= 1/2; 2^f by a polynomial of degree 5 whose coefficients were
// fitted (least squares on Chebyshev nodes) to the relative error: below 1.1e-7, about one float ulp.
inline F exp2_nonpositive(F t) {
  constexpr float c1 = 0.69314685594f, c2 = 0.24022238003f, c3 = 0.05550892952f, c4 = 0.00967169794f,
                  c5 = 0.00132186725f;
#ifdef MM_ATTENTION_AVX512
  // AVX-512 rounds (vrndscaleps) and scales by 2^n (vscalefps) in one instruction each. Clamping at -160 keeps f
  // finite for t = -inf; 2^-160 and below round to 0.
  t = vmax(t, broadcast(-160.0f));
  const F n = (F)_mm512_roundscale_ps((__m512)t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const F f = t - n;
  const F p = ((((c5 * f + c4) * f + c3) * f + c2) * f + c1) * f + 1.0f;
  return (F)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
  const F round_shift = broadcast(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const F n = (t + round_shift) - round_shift;
  const F f = t - n;
  const F p = ((((c5 * f + c4) * f + c3) * f + c2) * f + c1) * f + 1.0f;
  const I bits = (I)p + (__builtin_convertvector(n, I) << 23);  // a vector cast reinterprets the bits
  const I in_range = t >= broadcast(-126.0f);  // all ones where t is in range, 0 elsewhere (and for NaN)
  return (F)(bits & in_range);
#endif
}

// log2(x) for normal x > 0 (a softmax sum, at least 1). x = 2^e m with m in [sqrt(1/2), sqrt(2)), and
// log2(m) = 2 atanh(u) / ln 2 with u = (m - 1) / (m + 1), |u| < 0.172, by the series of atanh to u^9
// (relative error below 1e-9).
inline F log2_positive(F x) {
  const I bits = (I)x;
  const I e = (bits - 0x3f3504f3) >> 23;  // 0x3f3504f3: the bits of sqrt(1/2); arithmetic shift, so floor
  const F m = (F)(bits - (e << 23));
  const F u = (m - 1.0f) / (m + 1.0f), u2 = u * u;
  const F series = (((u2 * (1.0f / 9) + 1.0f / 7) * u2 + 1.0f / 5) * u2 + 1.0f / 3) * u2 + 1.0f;
  return __builtin_convertvector(e, F) + u * series * (2 * kLog2e);
}

// ---- tile products ----------------------------------------------------------------------------------------
// C[m, n] (+)= sum_k A(m, k) * B[k, n] for an M x N tile, N a multiple of W, B and C rows ldb and ldc apart.

// One register block: MR rows x NV vectors of C stay in registers for the whole k loop (the small loops are
// unrolled so that the accumulators are registers, not an array in memory).
#define MM_UNROLL _Pragma("GCC unroll 32")
template <int MR, int NV, class A>
inline void block_product(int64_t K, A a, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  F acc[MR][NV];
  MM_UNROLL for (int m = 0; m < MR; ++m) {
    MM_UNROLL for (int n = 0; n < NV; ++n) acc[m][n] = accumulate ? load(c + m * ldc + n * W) : F{};
  }
  for (int64_t k = 0; k < K; ++k) {
    F bk[NV];
    MM_UNROLL for (int n = 0; n < NV; ++n) bk[n] = load(b + k * ldb + n * W);
    MM_UNROLL for (int m = 0; m < MR; ++m) {
      const F am = broadcast(a.at(m, k));
      MM_UNROLL for (int n = 0; n < NV; ++n) acc[m][n] += am * bk[n];
    }
  }
  MM_UNROLL for (int m = 0; m < MR; ++m) {
    MM_UNROLL for (int n = 0; n < NV; ++n) store(c + m * ldc + n * W, acc[m][n]);
  }
}

// The rows of a column strip of NV vectors: blocks of MR rows, then one block each of MR/2, MR/4, ... for the
// rest (M and MR are powers of two in the common cases, so the tail is usually empty).
template <int MR, int NV, class A>
inline void strip_product(int64_t M, int64_t K, A a, const float* b, int64_t ldb, float* c, int64_t ldc,
                          bool accumulate) {
  int64_t m = 0;
  for (; m + MR <= M; m += MR) block_product<MR, NV>(K, a.rows_from(m), b, ldb, c + m * ldc, ldc, accumulate);
  if constexpr (MR > 1) {
    if (m < M) strip_product<MR / 2, NV>(M - m, K, a.rows_from(m), b, ldb, c + m * ldc, ldc, accumulate);
  }
}

// Rows per register block for a strip of NV vectors: the largest power of two that keeps MR * NV accumulators
// within ACC (AVX-512 has 32 registers: up to 24 accumulators; AVX2 and SSE/NEON have 16: up to 12).
constexpr int block_rows(int nv) {
  int mr = 1;
  while (2 * mr * nv <= ACC) mr *= 2;
  return mr;
}

template <class A>
inline void tile_product(int64_t M, int64_t N, int64_t K, A a, const float* b, int64_t ldb, float* c, int64_t ldc,
                         bool accumulate) {
  constexpr int kMaxStrip = ACC >= 24 ? 4 : 3;
  for (int64_t n = 0; n < N;) {
    const int64_t nv = std::min<int64_t>(kMaxStrip, (N - n) / W);
    if constexpr (kMaxStrip >= 4) {
      if (nv == 4) strip_product<block_rows(4), 4>(M, K, a, b + n, ldb, c + n, ldc, accumulate);
    }
    if (nv == 3) strip_product<block_rows(3), 3>(M, K, a, b + n, ldb, c + n, ldc, accumulate);
    if (nv == 2) strip_product<block_rows(2), 2>(M, K, a, b + n, ldb, c + n, ldc, accumulate);
    if (nv == 1) strip_product<block_rows(1), 1>(M, K, a, b + n, ldb, c + n, ldc, accumulate);
    n += nv * W;
  }
}

// ---- forward: one (batch, query head, query tile) ---------------------------------------------------------

// Shuffle masks for one stage of a W x W transpose (indices >= W pick from the second vector). The stage swaps
// bit `bit` of the row index with the same bit of the lane index: the new row r (bit clear) or r + bit takes
// lane l from whichever old row holds it. log2(W) stages, one per bit, transpose the block.
template <int... L>
constexpr I exchange_mask(std::integer_sequence<int, L...>, int bit, bool upper) {
  return I{(upper ? ((L & bit) ? W + L : L + bit) : ((L & bit) ? W + L - bit : L))...};
}

template <int bit>
inline void exchange_stage(F* r) {
  if constexpr (bit < W) {
    constexpr I lower = exchange_mask(std::make_integer_sequence<int, W>{}, bit, false);
    constexpr I upper = exchange_mask(std::make_integer_sequence<int, W>{}, bit, true);
    MM_UNROLL for (int i = 0; i < W; ++i) {
      if (i & bit) continue;
      const F lo = r[i], hi = r[i + bit];
      r[i] = __builtin_shuffle(lo, hi, lower);
      r[i + bit] = __builtin_shuffle(lo, hi, upper);
    }
    exchange_stage<2 * bit>(r);
  }
}

// dst[d * ld_dst + i] = scale * src[i * ld_src + d] for i < rows, d < HD: packs Q^T or dO^T, W x W blocks at a
// time in registers (W loads, W log2(W) shuffles, W stores), the last rows % W element by element.
inline void transpose_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows, int64_t HD,
                           float scale) {
  int64_t i0 = 0;
  for (; i0 + W <= rows; i0 += W) {
    for (int64_t d0 = 0; d0 < HD; d0 += W) {
      F r[W];
      MM_UNROLL for (int i = 0; i < W; ++i) r[i] = load(src + (i0 + i) * ld_src + d0) * scale;
      exchange_stage<1>(r);
      MM_UNROLL for (int d = 0; d < W; ++d) store(dst + (d0 + d) * ld_dst + i0, r[d]);
    }
  }
  for (int64_t d = 0; d < HD; ++d)
    for (int64_t i = i0; i < rows; ++i) dst[d * ld_dst + i] = src[i * ld_src + d] * scale;
}

// Asks for the cache lines of rows [begin, end) of HD floats, ld apart, ahead of their use. Rows of a
// [B, T, heads, HD] tensor are a power-of-two stride apart, each on its own lines and often its own page, so the
// hardware prefetchers do not foresee them; a task asks for the next query tile's rows a slice per key tile, so
// the misses overlap the products instead of stalling the packing.
inline void prefetch_rows(const float* p, int64_t ld, int64_t begin, int64_t end, int64_t HD) {
  for (int64_t i = begin; i < end; ++i)
    for (int64_t d = 0; d < HD; d += 16) __builtin_prefetch(p + i * ld + d);
}

// dst[i * HD + d] = src[i * ld_src + d]: packs K, V, Q or dO rows contiguously. A product re-reads its B operand
// once per register block; rows a power-of-two stride apart (1-2 KiB in MiniMind) would share a few L1 sets and
// miss, packed rows fill the sets evenly.
inline void pack_rows(float* dst, const float* src, int64_t ld_src, int64_t rows, int64_t HD) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t d = 0; d < HD; d += W) store(dst + i * HD + d, load(src + i * ld_src + d));
}

// dst[i * ld_dst + d] += src[i * HD + d]: adds packed gradient rows into a gradient tensor.
inline void add_rows(float* dst, int64_t ld_dst, const float* src, int64_t rows, int64_t HD) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t d = 0; d < HD; d += W)
      store(dst + i * ld_dst + d, load(dst + i * ld_dst + d) + load(src + i * HD + d));
}

// Scratch buffers of one query tile.
struct TileBuffers {
  float* qt;       // Q^T, pre-scaled; padded queries are zero
  float* o;        // unnormalised O, one row per query
  float* st;       // S^T, then P^T in place
  float* m_run;    // running max and sum of each query's row
  float* l_run;
  float* rescale;  // 2^(m_old - m_new) per query for this step; at the end, the lse of each query
};

// Rows that a later step reads, to prefetch a slice per key tile while this one computes.
struct RowsAhead {
  const float* p;
  int64_t ld, rows;
};

// Queries i0 .. i0 + kBr - 1 of query head h against the packed K and V rows of its KV head.
void forward_query_tile(const AttentionShape& s, const Geometry& g, const ForwardArgs& p, int64_t b, int64_t h,
                        int64_t i0, const float* k_rows, const float* v_rows, const TileBuffers& t,
                        const RowsAhead (&ahead)[3]) {
  const int64_t rows = std::min(kBr, s.T - i0), HD = s.HD;
  float* const st = t.st;
  transpose_rows(t.qt, kBr, p.q + (b * s.T + i0) * g.row_q + h * HD, g.row_q, rows, HD, g.q_scale);
  for (int64_t d = 0; d < HD; ++d) std::fill(t.qt + d * kBr + rows, t.qt + (d + 1) * kBr, 0.0f);
  std::fill(t.o, t.o + kBr * HD, 0.0f);
  std::fill(t.m_run, t.m_run + kBr, kNegInf);
  std::fill(t.l_run, t.l_run + kBr, 0.0f);

  const int64_t key_end = g.key_end(s, i0, rows), key_tiles = (key_end + kBc - 1) / kBc;
  for (int64_t j0 = 0; j0 < key_end; j0 += kBc) {
    const int64_t keys = std::min(kBc, key_end - j0), step = j0 / kBc;
    for (const RowsAhead& r : ahead)
      prefetch_rows(r.p, r.ld, step * r.rows / key_tiles, (step + 1) * r.rows / key_tiles, HD);
    // Key j (of this tile) is seen by queries i >= j - diagonal only. Where the tile crosses the diagonal, the
    // work runs in slices of kSlice keys (queries) that skip what the mask would zero.
    const int64_t diagonal = g.first_pos + i0 - j0;
    const bool on_diagonal = s.causal && keys - 1 > diagonal;
    const int64_t slice = on_diagonal ? kSlice : kBc;
    for (int64_t js = 0; js < keys; js += slice) {  // S^T = K Q^T, from the first query that sees key js
      const int64_t ib = on_diagonal ? std::max<int64_t>(0, js - diagonal) / W * W : 0;
      tile_product(std::min(slice, keys - js), kBr - ib, HD, RowMajor{k_rows + (j0 + js) * HD, HD}, t.qt + ib, kBr,
                   st + js * kBr + ib, kBr, false);
    }
    mask_future_keys(s, g, st, i0, j0, keys);
    for (int64_t iv = 0; iv < kBr; iv += W) {
      // Keys past `seen` are masked for all W queries: P is 0 there without computing it.
      const int64_t seen = on_diagonal ? std::min(keys, std::max<int64_t>(0, iv + W + diagonal)) : keys;
      const F m_old = load(t.m_run + iv);
      F m_part[4] = {m_old, m_old, m_old, m_old};  // four independent chains hide the latency of max
      int64_t j = 0;
      for (; j + 4 <= seen; j += 4)
        for (int c = 0; c < 4; ++c) m_part[c] = vmax(m_part[c], load(st + (j + c) * kBr + iv));
      for (; j < seen; ++j) m_part[0] = vmax(m_part[0], load(st + j * kBr + iv));
      const F m_new = vmax(vmax(m_part[0], m_part[1]), vmax(m_part[2], m_part[3]));
      F row_sum{};
      for (j = 0; j < seen; ++j) {
        const F pj = exp2_nonpositive(load(st + j * kBr + iv) - m_new);
        store(st + j * kBr + iv, pj);
        row_sum += pj;
      }
      for (int64_t j = seen; j < keys; ++j) store(st + j * kBr + iv, F{});
      // m_old = -inf on the first tile: the factor is 0 and the zero O and l stay zero.
      const F factor = exp2_nonpositive(m_old - m_new);
      store(t.l_run + iv, load(t.l_run + iv) * factor + row_sum);
      store(t.m_run + iv, m_new);
      store(t.rescale + iv, factor);
    }
    for (int64_t i = 0; i < kBr; ++i) {
      const F factor = broadcast(t.rescale[i]);
      for (int64_t d = 0; d < HD; d += W) store(t.o + i * HD + d, load(t.o + i * HD + d) * factor);
    }
    // O[i] += sum_j P^T[j, i] V[j], up to the last key the slice's queries see
    const int64_t query_slice = on_diagonal ? kSlice : kBr;
    for (int64_t is = 0; is < kBr; is += query_slice) {
      const int64_t ke = on_diagonal ? std::min(keys, std::max<int64_t>(0, is + query_slice + diagonal)) : keys;
      tile_product(query_slice, HD, ke, ColMajor{st + is, kBr}, v_rows + j0 * HD, HD, t.o + is * HD, HD, true);
    }
  }

  float* out = p.out + (b * s.T + i0) * g.row_q + h * HD;
  float* lse = p.lse + (b * s.NH + h) * s.T + i0;
  for (int64_t i = 0; i < rows; ++i) {
    const F inv_l = broadcast(1.0f / t.l_run[i]);
    for (int64_t d = 0; d < HD; d += W) store(out + i * g.row_q + d, load(t.o + i * HD + d) * inv_l);
  }
  for (int64_t iv = 0; iv < kBr; iv += W)  // padded queries have sums too (of zero scores): no special case
    store(t.rescale + iv, (load(t.m_run + iv) + log2_positive(load(t.l_run + iv))) * kLn2);
  std::copy(t.rescale, t.rescale + rows, lse);
}

// One (batch, KV head) and its share of the query tiles (every parts-th one, so that the causal costs even
// out), for every query head of the group: K and V rows are packed once and stay in L2 for all of them. They
// are packed as the query tiles reach them, and prefetched while the tile before computes, as is the next
// tile's Q: the misses overlap the products.
void forward_kv_head(const AttentionShape& s, const ForwardArgs& p, int64_t task) {
  const Geometry g(s);
  const int64_t parts = p.q_tile_parts, part = task % parts, b = task / parts / s.NKV, kvh = task / parts % s.NKV;
  const int64_t HD = s.HD, last_i0 = (part + (g.q_tiles - 1 - part) / parts * parts) * kBr;
  const auto keys_seen = [&](int64_t i0) { return i0 < s.T ? g.key_end(s, i0, std::min(kBr, s.T - i0)) : 0; };

  Scratch scratch(2 * keys_seen(last_i0) * HD + 2 * HD * kBr + kBc * kBr + 3 * kBr);
  float* k_rows = scratch.take(keys_seen(last_i0) * HD);
  float* v_rows = scratch.take(keys_seen(last_i0) * HD);
  const TileBuffers tile{scratch.take(HD * kBr), scratch.take(kBr * HD), scratch.take(kBc * kBr),
                         scratch.take(kBr),      scratch.take(kBr),      scratch.take(kBr)};
  const float* k = p.k + b * s.Tk * g.row_kv + kvh * HD;
  const float* v = p.v + b * s.Tk * g.row_kv + kvh * HD;
  int64_t packed = 0;  // K and V rows [0, packed) are in k_rows and v_rows
  for (int64_t i0 = part * kBr; i0 < s.T; i0 += parts * kBr) {
    const int64_t keys = keys_seen(i0), next_i0 = i0 + parts * kBr;
    pack_rows(k_rows + packed * HD, k + packed * g.row_kv, g.row_kv, keys - packed, HD);
    pack_rows(v_rows + packed * HD, v + packed * g.row_kv, g.row_kv, keys - packed, HD);
    packed = keys;
    const int64_t new_keys = std::max<int64_t>(0, keys_seen(next_i0) - keys);  // what the next tile packs
    for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
      const bool last_head = h + 1 == (kvh + 1) * g.group;
      const int64_t q_i0 = last_head ? next_i0 : i0, q_h = last_head ? kvh * g.group : h + 1;
      const int64_t q_rows = q_i0 < s.T ? std::min(kBr, s.T - q_i0) : 0;
      const RowsAhead ahead[3] = {{p.q + (b * s.T + std::min(q_i0, s.T - 1)) * g.row_q + q_h * HD, g.row_q, q_rows},
                                  {k + std::min(keys, s.Tk - 1) * g.row_kv, g.row_kv, last_head ? new_keys : 0},
                                  {v + std::min(keys, s.Tk - 1) * g.row_kv, g.row_kv, last_head ? new_keys : 0}};
      forward_query_tile(s, g, p, b, h, i0, k_rows, v_rows, tile, ahead);
    }
  }
}

// ---- backward: one (batch, KV head) and the query heads of its group --------------------------------------

void backward_kv_head(const AttentionShape& s, const BackwardArgs& p, int64_t task) {
  const Geometry g(s);
  const int64_t b = task / s.NKV, kvh = task % s.NKV, HD = s.HD, lq = g.row_q, lkv = g.row_kv;
  const F score_scale = broadcast(g.q_scale * kLn2);  // d(score)/d(q.k) = 1/sqrt(HD)

  // K and V rows packed, and dK, dV summed in packed buffers that are added to the gradients at the end.
  // Per query tile: Q and dO rows packed, Q^T (pre-scaled) and dO^T, dQ summed likewise, lse in log2 units and
  // D = rowsum(dO * O). Padded queries get lse = +inf, hence P = 0 and no contribution.
  Scratch scratch(4 * s.Tk * HD + 5 * kBr * HD + 2 * kBr + 2 * kBc * kBr);
  const int64_t kv_offset = b * s.Tk * g.row_kv + kvh * HD;
  float* k_rows = scratch.take(s.Tk * HD);
  float* v_rows = scratch.take(s.Tk * HD);
  float* dk_sum = scratch.take(s.Tk * HD);
  float* dv_sum = scratch.take(s.Tk * HD);
  float* q_rows = scratch.take(kBr * HD);
  float* dout_rows = scratch.take(kBr * HD);
  float* dq_sum = scratch.take(kBr * HD);
  float* qt = scratch.take(HD * kBr);
  float* dot = scratch.take(HD * kBr);
  float* lse2 = scratch.take(kBr);
  float* delta = scratch.take(kBr);
  float* pt = scratch.take(kBc * kBr);   // S^T, then P^T
  float* dst = scratch.take(kBc * kBr);  // dP^T, then dS^T
  std::fill(dk_sum, dk_sum + s.Tk * HD, 0.0f);
  std::fill(dv_sum, dv_sum + s.Tk * HD, 0.0f);
  const auto keys_seen = [&](int64_t i0) { return i0 < s.T ? g.key_end(s, i0, std::min(kBr, s.T - i0)) : 0; };
  int64_t packed = 0;  // K and V rows [0, packed) are in k_rows and v_rows, packed as the query tiles reach them

  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    for (int64_t i0 = 0; i0 < s.T; i0 += kBr) {
      const int64_t rows = std::min(kBr, s.T - i0), key_end = g.key_end(s, i0, rows);
      const int64_t q_offset = (b * s.T + i0) * g.row_q + h * HD;
      if (key_end > packed) {
        pack_rows(k_rows + packed * HD, p.k + kv_offset + packed * lkv, lkv, key_end - packed, HD);
        pack_rows(v_rows + packed * HD, p.v + kv_offset + packed * lkv, lkv, key_end - packed, HD);
        packed = key_end;
      }
      const float* out = p.out + q_offset;
      const float* lse = p.lse + (b * s.NH + h) * s.T + i0;
      pack_rows(q_rows, p.q + q_offset, lq, rows, HD);
      pack_rows(dout_rows, p.dout + q_offset, lq, rows, HD);
      transpose_rows(qt, kBr, q_rows, HD, rows, HD, g.q_scale);
      transpose_rows(dot, kBr, dout_rows, HD, rows, HD, 1.0f);
      for (int64_t d = 0; d < HD; ++d) {
        std::fill(qt + d * kBr + rows, qt + (d + 1) * kBr, 0.0f);
        std::fill(dot + d * kBr + rows, dot + (d + 1) * kBr, 0.0f);
      }
      std::fill(dq_sum, dq_sum + kBr * HD, 0.0f);
      for (int64_t i = 0; i < kBr; ++i) {
        F sum{};
        if (i < rows)
          for (int64_t d = 0; d < HD; d += W) sum += load(dout_rows + i * HD + d) * load(out + i * lq + d);
        float dot_row = 0.0f;
        for (int l = 0; l < W; ++l) dot_row += sum[l];
        delta[i] = dot_row;
        lse2[i] = i < rows ? lse[i] * kLog2e : std::numeric_limits<float>::infinity();
      }

      // Prefetched while this tile computes: the rows of the next query tile (of this head, or the first of the
      // next one), the K and V rows that tile packs, and in the last head a share of dK and dV for the final sum.
      const int64_t next_i0 = i0 + kBr < s.T ? i0 + kBr : 0, next_h = i0 + kBr < s.T ? h : h + 1;
      const int64_t next_rows = next_h < (kvh + 1) * g.group ? std::min(kBr, s.T - next_i0) : 0;
      const int64_t next_offset = (b * s.T + std::min(next_i0, s.T - 1)) * g.row_q + next_h * HD;
      const int64_t new_keys = std::max<int64_t>(0, keys_seen(i0 + kBr) - packed);
      const bool last_head = h + 1 == (kvh + 1) * g.group;
      const int64_t sum_begin = i0 / kBr * s.Tk / g.q_tiles, sum_end = (i0 / kBr + 1) * s.Tk / g.q_tiles;
      const RowsAhead ahead[] = {{p.q + next_offset, lq, next_rows},
                                 {p.dout + next_offset, lq, next_rows},
                                 {p.out + next_offset, lq, next_rows},
                                 {p.dq + next_offset, lq, next_rows},
                                 {p.k + kv_offset + std::min(packed, s.Tk - 1) * lkv, lkv, new_keys},
                                 {p.v + kv_offset + std::min(packed, s.Tk - 1) * lkv, lkv, new_keys},
                                 {p.dk + kv_offset + sum_begin * lkv, lkv, last_head ? sum_end - sum_begin : 0},
                                 {p.dv + kv_offset + sum_begin * lkv, lkv, last_head ? sum_end - sum_begin : 0}};
      const int64_t key_tiles = (key_end + kBc - 1) / kBc;
      for (int64_t j0 = 0; j0 < key_end; j0 += kBc) {
        const int64_t keys = std::min(kBc, key_end - j0), step = j0 / kBc;
        for (const RowsAhead& r : ahead)
          prefetch_rows(r.p, r.ld, step * r.rows / key_tiles, (step + 1) * r.rows / key_tiles, HD);
        tile_product(keys, kBr, HD, RowMajor{k_rows + j0 * HD, HD}, qt, kBr, pt, kBr, false);
        tile_product(keys, kBr, HD, RowMajor{v_rows + j0 * HD, HD}, dot, kBr, dst, kBr, false);
        mask_future_keys(s, g, pt, i0, j0, keys);
        for (int64_t iv = 0; iv < kBr; iv += W) {
          const F lse_i = load(lse2 + iv), delta_i = load(delta + iv);
          for (int64_t j = 0; j < keys; ++j) {
            const F pj = exp2_nonpositive(load(pt + j * kBr + iv) - lse_i);
            store(pt + j * kBr + iv, pj);
            store(dst + j * kBr + iv, pj * (load(dst + j * kBr + iv) - delta_i) * score_scale);
          }
        }
        // dV[j] += sum_i P^T[j, i] dO[i];  dK[j] += sum_i dS^T[j, i] Q[i];  dQ[i] += sum_j dS^T[j, i] K[j].
        // Key j (of this tile) meets queries i >= j - diagonal only. Where the tile crosses the diagonal, it is
        // done in slices of kSlice keys (queries), each skipping the queries (keys) the mask zeroed.
        const int64_t diagonal = g.first_pos + i0 - j0, slice = s.causal && keys - 1 > diagonal ? kSlice : kBc;
        for (int64_t js = 0; js < keys; js += slice) {
          const int64_t n = std::min(slice, keys - js), ib = s.causal ? std::max<int64_t>(0, js - diagonal) : 0;
          if (ib >= rows) break;
          tile_product(n, HD, rows - ib, TileRows{pt + js * kBr + ib}, dout_rows + ib * HD, HD,
                       dv_sum + (j0 + js) * HD, HD, true);
          tile_product(n, HD, rows - ib, TileRows{dst + js * kBr + ib}, q_rows + ib * HD, HD,
                       dk_sum + (j0 + js) * HD, HD, true);
        }
        for (int64_t is = 0; is < rows; is += slice) {
          const int64_t n = std::min(slice, rows - is);
          const int64_t ke = s.causal ? std::min(keys, std::max<int64_t>(0, is + n + diagonal)) : keys;
          tile_product(n, HD, ke, ColMajor{dst + is, kBr}, k_rows + j0 * HD, HD, dq_sum + is * HD, HD, true);
        }
      }
      add_rows(p.dq + q_offset, lq, dq_sum, rows, HD);
    }
  }
  add_rows(p.dk + kv_offset, lkv, dk_sum, s.Tk, HD);
  add_rows(p.dv + kv_offset, lkv, dv_sum, s.Tk, HD);
}

#undef MM_UNROLL
#endif  // MM_ATTENTION_KERNELS
