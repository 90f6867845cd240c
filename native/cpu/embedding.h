// Embedding kernels (native/cpu/embedding.cc): a table weight[V, C] (V = vocab, C = dim) looked up by
// n = B*T token ids (i32).
//   out[i, :] = weight[ids[i], :]        backward: dweight[ids[i], :] += dout[i, :]
#pragma once
#include <cstdint>

namespace mm::cpu {

// Index of the first id outside [0, V), or -1 when all are valid. The ops check before any lookup.
int64_t first_invalid_id(const int32_t* ids, int64_t n, int64_t V);

void embedding_forward(float* out, const int32_t* ids, const float* weight, int64_t n, int64_t C);

// Deterministic without atomics: ids are grouped by vocabulary row (a counting sort), threads split the
// vocabulary, and each row adds its dout rows in increasing i. Ids must be valid.
void embedding_backward(float* dweight, const int32_t* ids, const float* dout, int64_t n, int64_t V, int64_t C);

}  // namespace mm::cpu
