// Elementwise f32 kernels (native/cpu/elementwise.cc). n contiguous values; out may alias an input.
#pragma once
#include <cstdint>

namespace mm::cpu {

void add(float* out, const float* a, const float* b, int64_t n);    // out = a + b
void mul(float* out, const float* a, const float* b, int64_t n);    // out = a * b
void scale(float* out, const float* x, float alpha, int64_t n);     // out = alpha * x
void axpy(float* y, const float* x, float alpha, int64_t n);        // y += alpha * x

}  // namespace mm::cpu
