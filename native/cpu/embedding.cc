// Embedding lookup and its gradient (see embedding.h). Memory-bound: forward copies n rows of C floats;
// backward adds n rows of dout into the rows of dweight they came from.
//
// The backward must give the same bits on every run, so it cannot race on repeated ids (and atomics on
// floats would make the order of additions random). Instead the ids are grouped by vocabulary row with a
// counting sort that keeps their order; threads then split the vocabulary, so each dweight row is owned by
// one thread and its additions happen in increasing i, whatever the thread count.
#include "embedding.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "mm.h"
#include "vec16.h"

namespace mm::cpu {
namespace {

struct RowAdd {
  float* dweight;
  const float* dout;
  const int64_t* first;  // [V + 1] the token positions of vocabulary row v are order[first[v] .. first[v+1])
  const int64_t* order;
  int64_t C;
};

MM_INLINE void add_rows(const RowAdd& k, int64_t v_begin, int64_t v_end) {
  const int64_t C = k.C, C_vec = C - C % kLanes;
  for (int64_t v = v_begin; v < v_end; ++v) {
    float* dst = k.dweight + v * C;
    for (int64_t p = k.first[v]; p < k.first[v + 1]; ++p) {
      const float* src = k.dout + k.order[p] * C;
      int64_t j = 0;
      for (; j < C_vec; j += kLanes) store(dst + j, load(dst + j) + load(src + j));
      for (; j < C; ++j) dst[j] += src[j];
    }
  }
}
MM_VEC_VARIANTS(add_rows, RowAdd)

}  // namespace

int64_t first_invalid_id(const int32_t* ids, int64_t n, int64_t V) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= V) return i;
  return -1;
}

void embedding_forward(float* out, const int32_t* ids, const float* weight, int64_t n, int64_t C) {
  const size_t row_bytes = static_cast<size_t>(C) * sizeof(float);
  parallel_for(n, rows_per_chunk(C), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(out + i * C, weight + static_cast<int64_t>(ids[i]) * C, row_bytes);
  });
}

void embedding_backward(float* dweight, const int32_t* ids, const float* dout, int64_t n, int64_t V, int64_t C) {
  // Counting sort of token positions by id (stable: positions stay increasing within a row).
  std::vector<int64_t> first(V + 1, 0), order(n);
  for (int64_t i = 0; i < n; ++i) ++first[ids[i] + 1];
  for (int64_t v = 0; v < V; ++v) first[v + 1] += first[v];
  std::vector<int64_t> next(first.begin(), first.end() - 1);
  for (int64_t i = 0; i < n; ++i) order[next[ids[i]]++] = i;

  const RowAdd args{dweight, dout, first.data(), order.data(), C};
  const auto kernel = add_rows_kernel();
  // Chunks of vocabulary rows, sized by the average number of tokens per row so chunks carry similar work.
  const int64_t avg_rows_per_token = std::max<int64_t>(1, V / std::max<int64_t>(n, 1));
  parallel_for(V, rows_per_chunk(C) * avg_rows_per_token, [&](int64_t b, int64_t e) { kernel(args, b, e); });
}

}  // namespace mm::cpu
