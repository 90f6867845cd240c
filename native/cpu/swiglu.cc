// SwiGLU forward and backward over n contiguous values: out = silu(a) * b (see swiglu.h).
//
// Memory-bound: forward streams a and b and writes out (12 bytes a value); backward streams dout, a, b
// and writes da, db (20 bytes a value) in a single pass, recomputing sigmoid(a) instead of saving it.
// The exponential is vectorised (vec16.h), so the arithmetic hides under the memory traffic.
#include "swiglu.h"

#include <cmath>

#include "mm.h"
#include "vec16.h"

namespace mm::cpu {
namespace {

struct SwigluForward {
  float* out;
  const float* a;
  const float* b;
};

MM_INLINE void swiglu_forward_range(const SwigluForward& k, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const f32x16 a = load(k.a + i);
    store(k.out + i, a / (1.0f + vexp(-a)) * load(k.b + i));  // silu(a) = a / (1 + exp(-a)), as torch
  }
  for (; i < end; ++i) k.out[i] = k.a[i] / (1.0f + sexp(-k.a[i])) * k.b[i];
}
MM_VEC_VARIANTS(swiglu_forward_range, SwigluForward)

struct SwigluBackward {
  float* da;
  float* db;
  const float* dout;
  const float* a;
  const float* b;
  bool da_accumulate, db_accumulate;
};

template <class V>
MM_INLINE void swiglu_grads(V dout, V a, V b, V s, V* da, V* db) {
  *da = dout * b * (s * (1.0f + a * (1.0f - s)));
  *db = dout * (a * s);
}

MM_INLINE void swiglu_backward_range(const SwigluBackward& k, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const f32x16 a = load(k.a + i);
    f32x16 da, db;
    swiglu_grads(load(k.dout + i), a, load(k.b + i), 1.0f / (1.0f + vexp(-a)), &da, &db);
    if (k.da) store(k.da + i, k.da_accumulate ? load(k.da + i) + da : da);
    if (k.db) store(k.db + i, k.db_accumulate ? load(k.db + i) + db : db);
  }
  for (; i < end; ++i) {
    const float a = k.a[i];
    float da, db;
    swiglu_grads(k.dout[i], a, k.b[i], 1.0f / (1.0f + sexp(-a)), &da, &db);
    if (k.da) k.da[i] = k.da_accumulate ? k.da[i] + da : da;
    if (k.db) k.db[i] = k.db_accumulate ? k.db[i] + db : db;
  }
}
MM_VEC_VARIANTS(swiglu_backward_range, SwigluBackward)

}  // namespace

void swiglu_forward(float* out, const float* a, const float* b, int64_t n) {
  const SwigluForward args{out, a, b};
  const auto kernel = swiglu_forward_range_kernel();
  parallel_for(n, kMinChunkValues, [&](int64_t s, int64_t e) { kernel(args, s, e); });
}

void swiglu_backward(float* da, bool da_accumulate, float* db, bool db_accumulate, const float* dout,
                     const float* a, const float* b, int64_t n) {
  const SwigluBackward args{da, db, dout, a, b, da_accumulate, db_accumulate};
  const auto kernel = swiglu_backward_range_kernel();
  parallel_for(n, kMinChunkValues, [&](int64_t s, int64_t e) { kernel(args, s, e); });
}

}  // namespace mm::cpu
