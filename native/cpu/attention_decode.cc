// Decode attention: a few queries per sequence (T small, typically the one new token) against the whole KV
// cache, forward only (shapes in attention_decode.h).
//
// The training kernel (attention.cc) tiles 64 queries at a time, so one query would pay for 64. Here one pool
// task takes one (batch b, KV head g) pair and all the query rows that read that KV head: the G = NH / NKV
// query heads of its group at each of the T positions (R = T * G rows). Each key and value row is loaded
// once and used for all R rows, so the task reads its slice of the cache once. Three passes per task:
//   1. S[r, j] = (q_r . k_j) * log2(e) / sqrt(HD)   for the keys row r can see (scores in log2 units)
//   2. m_r = max_j S[r, j];  P[r, j] = 2^(S[r, j] - m_r);  l_r = sum_j P[r, j]
//   3. out_r = (sum_j P[r, j] v_j) / l_r
// With the whole row of scores at hand (Tk floats per row: a few KiB), the softmax is exact in two passes; no
// online rescaling is needed. Each output is summed in a fixed order: results do not depend on thread count.
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

// One task's view: the query rows of one (batch, KV head) and where its keys and values start.
struct Group {
  const AttentionShape& s;
  int64_t b, g;         // batch, KV head
  int64_t rows;         // R = T * G
  float scale;          // log2(e) / sqrt(HD)
  float* scores;        // [R, Tk] scratch
  int64_t row_kv;       // floats between consecutive keys: NKV * HD

  int64_t group() const { return s.NH / s.NKV; }
  // Row r = t * G + i is query position t of query head g * G + i.
  int64_t position(int64_t r) const { return r / group(); }
  const float* q_row(const float* q, int64_t r) const {
    return q + ((b * s.T + position(r)) * s.NH + g * group() + r % group()) * s.HD;
  }
  float* out_row(float* out, int64_t r) const { return const_cast<float*>(q_row(out, r)); }
  // Keys [0, end) that row r sees.
  int64_t key_end(int64_t r) const { return s.causal ? s.Tk - s.T + position(r) + 1 : s.Tk; }
  const float* kv_row(const float* kv, int64_t j) const { return kv + (b * s.Tk + j) * row_kv + g * s.HD; }
};

// ---- portable ------------------------------------------------------------------------------------------
void scores_portable(const Group& w, const float* q, const float* k) {
  const int64_t HD = w.s.HD;
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* qr = w.q_row(q, r);
    float* sr = w.scores + r * w.s.Tk;
    for (int64_t j = 0, end = w.key_end(r); j < end; ++j) {
      const float* kj = w.kv_row(k, j);
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

void values_portable(const Group& w, float* out, const float* v, const float* sums) {
  const int64_t HD = w.s.HD;
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* pr = w.scores + r * w.s.Tk;
    float* o = w.out_row(out, r);
    std::fill(o, o + HD, 0.0f);
    for (int64_t j = 0, end = w.key_end(r); j < end; ++j) {
      const float* vj = w.kv_row(v, j);
      for (int64_t d = 0; d < HD; ++d) o[d] += pr[j] * vj[d];
    }
    const float inv = 1.0f / sums[r];
    for (int64_t d = 0; d < HD; ++d) o[d] *= inv;
  }
}

void group_portable(const Group& w, float* out, const float* q, const float* k, const float* v, float* sums) {
  scores_portable(w, q, k);
  for (int64_t r = 0; r < w.rows; ++r) sums[r] = softmax_row_portable(w.scores + r * w.s.Tk, w.key_end(r));
  values_portable(w, out, v, sums);
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

__attribute__((target("avx512f"))) void group_avx512(const Group& w, float* out, const float* q, const float* k,
                                                     const float* v, float* sums) {
  const int64_t HD = w.s.HD, nv = HD / 16, Tk = w.s.Tk;
  // Pass 1: each key row is loaded once (nv vectors) and dotted with every query row that sees it.
  const int64_t any_end = w.key_end(w.rows - 1);  // the last row sees the most keys
  for (int64_t j = 0; j < any_end; ++j) {
    const float* kj = w.kv_row(k, j);
    __m512 kvec[kMaxHeadDim / 16];
    for (int64_t d = 0; d < nv; ++d) kvec[d] = _mm512_loadu_ps(kj + 16 * d);
    for (int64_t r = 0; r < w.rows; ++r) {
      if (j >= w.key_end(r)) continue;
      const float* qr = w.q_row(q, r);
      __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qr), kvec[0]);
      for (int64_t d = 1; d < nv; ++d) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * d), kvec[d], acc);
      w.scores[r * Tk + j] = _mm512_reduce_add_ps(acc) * w.scale;
    }
  }
  // Pass 2: softmax numerators 16 keys at a time; the tail is masked.
  for (int64_t r = 0; r < w.rows; ++r) {
    float* sr = w.scores + r * Tk;
    const int64_t n = w.key_end(r), n16 = n & ~int64_t(15);
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
    sums[r] = _mm512_reduce_add_ps(sum);
  }
  // Pass 3: out_r = sum_j P[r, j] v_j, in registers per row (the group's V slice stays in cache across rows).
  // Two interleaved sums (even and odd keys) halve the FMA dependency chain.
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* pr = w.scores + r * Tk;
    const int64_t n = w.key_end(r);
    __m512 even[kMaxHeadDim / 16], odd[kMaxHeadDim / 16];
    for (int64_t d = 0; d < nv; ++d) even[d] = odd[d] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
      const float* v0 = w.kv_row(v, j);
      const float* v1 = w.kv_row(v, j + 1);
      const __m512 p0 = _mm512_set1_ps(pr[j]), p1 = _mm512_set1_ps(pr[j + 1]);
      for (int64_t d = 0; d < nv; ++d) {
        even[d] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * d), even[d]);
        odd[d] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * d), odd[d]);
      }
    }
    if (j < n) {
      const float* v0 = w.kv_row(v, j);
      const __m512 p0 = _mm512_set1_ps(pr[j]);
      for (int64_t d = 0; d < nv; ++d) even[d] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * d), even[d]);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / sums[r]);
    float* o = w.out_row(out, r);
    for (int64_t d = 0; d < nv; ++d) _mm512_storeu_ps(o + 16 * d, _mm512_mul_ps(_mm512_add_ps(even[d], odd[d]), inv));
  }
}
#endif

}  // namespace

void attention_decode(const AttentionShape& s, float* out, const float* q, const float* k, const float* v,
                      VectorIsa isa) {
  void (*run)(const Group&, float*, const float*, const float*, const float*, float*) = group_portable;
#if MM_HAVE_X86
  const bool avx512 = cpu_features().avx512f;
  if (avx512 && (isa == VectorIsa::kBest || isa == VectorIsa::kAvx512)) run = group_avx512;
#endif
  const int64_t G = s.NH / s.NKV, rows = s.T * G;
  const float scale = kLog2e / std::sqrt(static_cast<float>(s.HD));
  parallel_for(s.B * s.NKV, 1, [&](int64_t t0, int64_t t1) {
    // Scratch per thread: the scores of every row, then the row sums.
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(rows * s.Tk + rows));
    for (int64_t task = t0; task < t1; ++task) {
      const Group w{s, task / s.NKV, task % s.NKV, rows, scale, scratch.data(), s.NKV * s.HD};
      run(w, out, q, k, v, scratch.data() + rows * s.Tk);
    }
  });
}

}  // namespace mm::cpu
