// Decode attention: a few queries per sequence (T small, typically the one new token) against the whole KV
// cache, forward only (shapes in attention_decode.h).
//
// The training kernel (attention.cc) tiles 64 queries at a time, so one query would pay for 64. Here one pool
// task takes one (batch b, KV head g) pair and all the query rows that read that KV head: the G = NH / NKV
// query heads of its group at each of the T positions (R = T * G rows), so the task brings its KV head's slice
// of the cache in from memory once (a few hundred KiB at most; later rows find it in cache). Three passes:
//   1. S[r, j] = (q_r . k_j) * log2(e) / sqrt(HD)   for the keys row r can see (scores in log2 units)
//   2. m_r = max_j S[r, j];  P[r, j] = 2^(S[r, j] - m_r);  l_r = sum_j P[r, j]
//   3. out_r = (sum_j P[r, j] v_j) / l_r
// With the whole row of scores at hand (Tk floats per row: a few KiB), the softmax is exact in two passes; no
// online rescaling is needed. Each output is summed in a fixed order: results do not depend on thread count.
// Vector code: AVX-512 (pass 1 sums 16 dot products at once, pass 2 a polynomial 2^x) and portable C++.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention_decode.h"
#include "mm.h"

#if MM_HAVE_X86
#include <immintrin.h>
#endif

namespace mm::cpu {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// One task's view: the R = T * G query rows of one (batch, KV head) pair, with everything a row needs worked
// out once per task (no divisions in the loops). Row r = t * G + i is query position t of query head g * G + i.
struct Group {
  int64_t rows, HD, Tk;
  float scale;                // log2(e) / sqrt(HD)
  const float* const* q;      // [R] query rows
  float* const* out;          // [R] output rows
  const int64_t* key_end;     // [R] row r sees keys [0, key_end[r])
  const float* k;             // key 0 of this KV head; key j is at k + j * row_kv
  const float* v;             // value 0, likewise
  int64_t row_kv;             // NKV * HD
  float* scores;              // [R, Tk] scratch
  float* sums;                // [R] scratch

  const float* k_row(int64_t j) const { return k + j * row_kv; }
  const float* v_row(int64_t j) const { return v + j * row_kv; }
};

// ---- portable ------------------------------------------------------------------------------------------
void scores_portable(const Group& w) {
  const int64_t HD = w.HD;
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* qr = w.q[r];
    float* sr = w.scores + r * w.Tk;
    for (int64_t j = 0; j < w.key_end[r]; ++j) {
      const float* kj = w.k_row(j);
      float acc[16] = {0};
      for (int64_t d = 0; d < HD; d += 16)
        for (int l = 0; l < 16; ++l) acc[l] += qr[d + l] * kj[d + l];
      float dot = 0;
      for (int l = 0; l < 16; ++l) dot += acc[l];
      sr[j] = dot * w.scale;
    }
  }
}

// Turns row r's scores into unnormalised probabilities 2^(S - max); returns their sum.
float softmax_row_portable(float* sr, int64_t n) {
  const float m = *std::max_element(sr, sr + n);
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (sr[j] = std::exp2(sr[j] - m));
  return sum;
}

void values_portable(const Group& w) {
  const int64_t HD = w.HD;
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* pr = w.scores + r * w.Tk;
    float* o = w.out[r];
    std::fill(o, o + HD, 0.0f);
    for (int64_t j = 0; j < w.key_end[r]; ++j) {
      const float* vj = w.v_row(j);
      for (int64_t d = 0; d < HD; ++d) o[d] += pr[j] * vj[d];
    }
    const float inv = 1.0f / w.sums[r];
    for (int64_t d = 0; d < HD; ++d) o[d] *= inv;
  }
}

void group_portable(const Group& w) {
  scores_portable(w);
  for (int64_t r = 0; r < w.rows; ++r) w.sums[r] = softmax_row_portable(w.scores + r * w.Tk, w.key_end[r]);
  values_portable(w);
}

// ---- AVX-512 --------------------------------------------------------------------------------------------
#if MM_HAVE_X86
// 2^x for x <= 0 (x >= -126 after clamping; smaller values underflow to ~0 anyway): 2^x = 2^n * e^(f ln 2)
// with n = round(x), |f| <= 1/2, e^y by its Taylor series to y^6 (relative error ~1e-7).
__attribute__((target("avx512f"))) inline __m512 exp2_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 y = _mm512_mul_ps(_mm512_sub_ps(x, n), _mm512_set1_ps(0.6931471805599453f));
  __m512 p = _mm512_set1_ps(1.0f / 720);
  for (float c : {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

// Lanes 0+1 and 2+3 of a, then of b: [a0+a1, a2+a3, b0+b1, b2+b3] (128-bit lanes).
__attribute__((target("avx512f"))) inline __m512 add_lane_pairs(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

// The 16 horizontal sums of v[0..15], as one vector (lane j = sum of v[j]'s lanes): pairs are added within
// 128-bit lanes (unpack), then across them (shuffle_f32x4). 45 instructions instead of 16 full reductions.
__attribute__((target("avx512f"))) inline __m512 sum16_avx512(const __m512 v[16]) {
  __m512 pairs[8], quads[4];
  for (int i = 0; i < 8; ++i)  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane: the lane's sums of v[4i .. 4i+3] (pd unpacks move float pairs)
    const __m512d a = _mm512_castps_pd(pairs[2 * i]), b = _mm512_castps_pd(pairs[2 * i + 1]);
    quads[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // Lane i of the result: the full sums of v[4i .. 4i+3].
  return add_lane_pairs(add_lane_pairs(quads[0], quads[1]), add_lane_pairs(quads[2], quads[3]));
}

// NV = HD / 16 vectors per row, a compile-time constant so that row pieces live in registers.
template <int NV>
__attribute__((target("avx512f"))) void group_avx512(const Group& w) {
  const int64_t Tk = w.Tk;
  // Pass 1: for each row, 16 keys at a time: 16 dot products as vectors, then their 16 sums at once. Keys past
  // the row's end are not read (their sums are 0 and not stored). The group's keys stay in cache across rows.
  for (int64_t r = 0; r < w.rows; ++r) {
    __m512 q[NV];
    for (int d = 0; d < NV; ++d) q[d] = _mm512_loadu_ps(w.q[r] + 16 * d);
    const __m512 scale = _mm512_set1_ps(w.scale);
    float* sr = w.scores + r * Tk;
    for (int64_t j0 = 0; j0 < w.key_end[r]; j0 += 16) {
      const int64_t keys = std::min<int64_t>(16, w.key_end[r] - j0);
      __m512 dots[16];
      for (int64_t j = 0; j < 16; ++j) {
        if (j >= keys) {
          dots[j] = _mm512_setzero_ps();
          continue;
        }
        const float* kj = w.k_row(j0 + j);
        __m512 acc = _mm512_mul_ps(q[0], _mm512_loadu_ps(kj));
        for (int d = 1; d < NV; ++d) acc = _mm512_fmadd_ps(q[d], _mm512_loadu_ps(kj + 16 * d), acc);
        dots[j] = acc;
      }
      _mm512_mask_storeu_ps(sr + j0, static_cast<__mmask16>((1u << keys) - 1), _mm512_mul_ps(sum16_avx512(dots), scale));
    }
  }
  // Pass 2: softmax numerators 16 keys at a time; the tail is masked.
  for (int64_t r = 0; r < w.rows; ++r) {
    float* sr = w.scores + r * Tk;
    const int64_t n = w.key_end[r], n16 = n & ~int64_t(15);
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - n16)) - 1);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n16; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sr + j));
    mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_maskz_loadu_ps(tail, sr + n16));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n16; j += 16) {
      const __m512 p = exp2_avx512(_mm512_sub_ps(_mm512_loadu_ps(sr + j), m));
      _mm512_storeu_ps(sr + j, p);
      sum = _mm512_add_ps(sum, p);
    }
    if (tail) {
      const __m512 p = exp2_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, sr + n16), m));
      _mm512_mask_storeu_ps(sr + n16, tail, p);
      sum = _mm512_mask_add_ps(sum, tail, sum, p);
    }
    w.sums[r] = _mm512_reduce_add_ps(sum);
  }
  // Pass 3: out_r = sum_j P[r, j] v_j, in registers per row (the group's V slice stays in cache across rows).
  // Two interleaved sums (even and odd keys) halve the FMA dependency chain.
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* pr = w.scores + r * Tk;
    const int64_t n = w.key_end[r];
    __m512 even[NV], odd[NV];
    for (int d = 0; d < NV; ++d) even[d] = odd[d] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const float* v0 = w.v_row(j);
      const float* v1 = w.v_row(j + 1);
      const __m512 p0 = _mm512_set1_ps(pr[j]), p1 = _mm512_set1_ps(pr[j + 1]);
      for (int d = 0; d < NV; ++d) {
        even[d] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * d), even[d]);
        odd[d] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * d), odd[d]);
      }
    }
    if (j < n) {
      const float* v0 = w.v_row(j);
      const __m512 p0 = _mm512_set1_ps(pr[j]);
      for (int d = 0; d < NV; ++d) even[d] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * d), even[d]);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / w.sums[r]);
    float* o = w.out[r];
    for (int d = 0; d < NV; ++d) _mm512_storeu_ps(o + 16 * d, _mm512_mul_ps(_mm512_add_ps(even[d], odd[d]), inv));
  }
}
#endif

}  // namespace

void attention_decode(const AttentionShape& s, float* out, const float* q, const float* k, const float* v,
                      VectorIsa isa) {
  void (*run)(const Group&) = group_portable;
#if MM_HAVE_X86
  const bool avx512 = cpu_features().avx512f;
  if (avx512 && (isa == VectorIsa::kBest || isa == VectorIsa::kAvx512)) {
    constexpr void (*by_vectors[])(const Group&) = {group_avx512<1>, group_avx512<2>, group_avx512<3>, group_avx512<4>,
                                                    group_avx512<5>, group_avx512<6>, group_avx512<7>, group_avx512<8>};
    static_assert(kMaxHeadDim == 16 * 8);
    run = by_vectors[s.HD / 16 - 1];
  }
#endif
  const int64_t G = s.NH / s.NKV, rows = s.T * G, row_kv = s.NKV * s.HD;
  const float scale = kLog2e / std::sqrt(static_cast<float>(s.HD));
  parallel_for(s.B * s.NKV, 1, [&](int64_t t0, int64_t t1) {
    // Scratch per thread: scores, sums, and the per-row pointers and key counts.
    thread_local std::vector<float> floats;
    thread_local std::vector<const float*> q_rows;
    thread_local std::vector<float*> out_rows;
    thread_local std::vector<int64_t> key_end;
    floats.resize(static_cast<size_t>(rows * s.Tk + rows));
    q_rows.resize(rows);
    out_rows.resize(rows);
    key_end.resize(rows);
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / s.NKV, g = task % s.NKV;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = r / G, offset = ((b * s.T + t) * s.NH + g * G + r % G) * s.HD;
        q_rows[r] = q + offset;
        out_rows[r] = out + offset;
        key_end[r] = s.causal ? s.Tk - s.T + t + 1 : s.Tk;
      }
      const float* kv0 = k + b * s.Tk * row_kv + g * s.HD;
      const float* vv0 = v + b * s.Tk * row_kv + g * s.HD;
      run(Group{rows, s.HD, s.Tk, scale, q_rows.data(), out_rows.data(), key_end.data(), kv0, vv0, row_kv,
                floats.data(), floats.data() + rows * s.Tk});
    }
  });
}

}  // namespace mm::cpu
