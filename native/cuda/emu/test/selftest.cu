// The emulator's own tests: kernels that exercise each emulated feature, checked on the host.
// Built twice by check.sh (plain and with ThreadSanitizer) and run under the schedule named on the command line
// (fwd, rev, or rand:SEED). Prints one line per check and exits non-zero on any failure.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../cuemu.h"

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}

// Block sum: warp shuffles, partial sums in static shared memory, a barrier, then one atomic per block.
__global__ void block_sum(const float* in, float* out, int n) {
  MM_SHARED(float, warp_sums, [32]);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? in[i] : 0.f;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (lane == 0) atomicAdd(out, v);
  }
}

// Tree reduction of ints in dynamic shared memory, with a barrier count and a block-wide maximum.
__global__ void tree_reduce(const int* in, int* sums, int* counts, int* maxima) {
  MM_EXTERN_SHARED(int, s);
  const int t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  const int positives = __syncthreads_count(s[t] > 0);
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  atomicMax(maxima, in[blockIdx.x * blockDim.x + t]);
  if (t == 0) {
    sums[blockIdx.x] = s[0];
    counts[blockIdx.x] = positives;
  }
}

// Every shuffle flavour and width; each lane writes what it received.
__global__ void shuffles(int* out, int width) {
  const int lane = threadIdx.x;
  const int v = 100 + lane;
  out[0 * 32 + lane] = __shfl_sync(0xffffffffu, v, 3, width);
  out[1 * 32 + lane] = __shfl_up_sync(0xffffffffu, v, 2, width);
  out[2 * 32 + lane] = __shfl_down_sync(0xffffffffu, v, 5, width);
  out[3 * 32 + lane] = __shfl_xor_sync(0xffffffffu, v, 1, width);
  const unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[4 * 32 + lane] = static_cast<int>(b);
  out[5 * 32 + lane] = __any_sync(0xffffffffu, lane == 7) * 10 + __all_sync(0xffffffffu, lane < 40);
  __nv_bfloat16 h = __float2bfloat16(float(lane) + 0.5f);
  out[6 * 32 + lane] = static_cast<int>(__bfloat162float(__shfl_xor_sync(0xffffffffu, h, 16)) * 2);
}

// 3-D grids and blocks: each thread writes its global linear index at its own slot.
__global__ void indices(int* out) {
  const int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int threads = blockDim.x * blockDim.y * blockDim.z;
  out[bx * threads + tx] = bx * 1000 + tx;
}

// Half the warp waits at a block barrier, the other half in a shuffle: a deadlock the launch must report.
__global__ void deadlock(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
  }
}

// One warp multiplies 16 x 16 bf16 tiles on "tensor cores": D = A B + C, A row-major, B column-major.
__global__ void wmma_tile(const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c, float* d) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

template <typename T>
struct Buffer {
  std::vector<T> host;
  explicit Buffer(size_t n, T v = T()) : host(n, v) {}
  T* ptr() { return host.data(); }
};

void test_block_sum() {
  for (int n : {1, 31, 256, 1000, 4099}) {
    Buffer<float> in(n), out(1, 0.f);
    double expected = 0;
    for (int i = 0; i < n; ++i) expected += in.host[i] = float((i * 7) % 13) - 6.f;
    MM_LAUNCH(block_sum, (n + 255) / 256, 256, 0, 0)(in.ptr(), out.ptr(), n);
    check(out.host[0] == float(expected) && cuemu::take_last_error().empty(),
          ("block_sum n=" + std::to_string(n)).c_str());
  }
}

void test_tree_reduce() {
  const int blocks = 5, threads = 128;
  Buffer<int> in(blocks * threads), sums(blocks), counts(blocks), maximum(1, -1000);
  for (int i = 0; i < blocks * threads; ++i) in.host[i] = (i * 37) % 101 - 50;
  MM_LAUNCH(tree_reduce, blocks, threads, threads * sizeof(int), 0)(in.ptr(), sums.ptr(), counts.ptr(), maximum.ptr());
  bool ok = maximum.host[0] == 50;
  for (int b = 0; b < blocks; ++b) {
    int sum = 0, positives = 0;
    for (int t = 0; t < threads; ++t) sum += in.host[b * threads + t], positives += in.host[b * threads + t] > 0;
    ok = ok && sums.host[b] == sum && counts.host[b] == positives;
  }
  check(ok, "tree_reduce in dynamic shared memory, __syncthreads_count, atomicMax");
}

void test_shuffles() {
  for (int width : {32, 16, 8}) {
    Buffer<int> out(7 * 32);
    MM_LAUNCH(shuffles, 1, 32, 0, 0)(out.ptr(), width);
    bool ok = true;
    for (int lane = 0; lane < 32; ++lane) {
      const int seg = lane & ~(width - 1);
      const int up = lane - 2 >= seg ? lane - 2 : lane, down = lane + 5 < seg + width ? lane + 5 : lane;
      ok = ok && out.host[lane] == 100 + seg + 3 && out.host[32 + lane] == 100 + up &&
           out.host[64 + lane] == 100 + down && out.host[96 + lane] == 100 + (lane ^ 1) &&
           out.host[128 + lane] == int(0x49249249u) && out.host[160 + lane] == 11 &&
           out.host[192 + lane] == (lane ^ 16) * 2 + 1;
    }
    check(ok, ("shuffles, ballot, any/all, bf16 shuffle, width " + std::to_string(width)).c_str());
  }
}

void test_indices() {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  Buffer<int> out(12 * 30, -1);
  MM_LAUNCH(indices, grid, block, 0, 0)(out.ptr());
  bool ok = true;
  for (int i = 0; i < 12 * 30; ++i) ok = ok && out.host[i] == (i / 30) * 1000 + i % 30;
  check(ok, "threadIdx/blockIdx/blockDim/gridDim in 3-D");
}

void test_deadlock_is_reported() {
  Buffer<int> out(32);
  MM_LAUNCH(deadlock, 1, 32, 0, 0)(out.ptr());
  const std::string error = cuemu::take_last_error();
  check(error.find("DEADLOCK") != std::string::npos && error.find("__syncthreads") != std::string::npos,
        "a deadlock is reported by the launch");
}

void test_wmma() {
  Buffer<__nv_bfloat16> a(256), b(256);
  Buffer<float> c(256), d(256);
  for (int i = 0; i < 256; ++i) {
    a.host[i] = __float2bfloat16(float(i % 7) - 3.f);
    b.host[i] = __float2bfloat16(float(i % 5) * 0.5f);
    c.host[i] = float(i);
  }
  MM_LAUNCH(wmma_tile, 1, 32, 0, 0)(a.ptr(), b.ptr(), c.ptr(), d.ptr());
  bool ok = true;
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 16; ++col) {
      float expected = c.host[r * 16 + col];
      for (int k = 0; k < 16; ++k)
        expected += float(a.host[r * 16 + k]) * float(b.host[col * 16 + k]);  // B column-major: B[k][col]
      ok = ok && d.host[r * 16 + col] == expected;
    }
  check(ok, "wmma m16n16k16 bf16 -> fp32 (A row-major, B column-major)");
}

void test_bf16_rounding() {
  bool ok = __bfloat16_as_ushort(__float2bfloat16(1.0f)) == 0x3f80 &&
            __bfloat16_as_ushort(__float2bfloat16(__uint_as_float(0x3f808000u))) == 0x3f80 &&  // tie to even
            __bfloat16_as_ushort(__float2bfloat16(__uint_as_float(0x3f818000u))) == 0x3f82 &&  // tie to even
            __bfloat16_as_ushort(__float2bfloat16(__uint_as_float(0x3f808001u))) == 0x3f81 &&
            __bfloat16_as_ushort(__float2bfloat16(NAN)) == 0x7fff &&
            __bfloat16_as_ushort(__float2bfloat16(INFINITY)) == 0x7f80;
  check(ok, "bf16 round-to-nearest-even and NaN");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string schedule = argc > 1 ? argv[1] : "fwd";
  if (schedule == "rev") cuemu::set_schedule(cuemu::Schedule::Reverse);
  else if (schedule.rfind("rand:", 0) == 0) cuemu::set_schedule(cuemu::Schedule::Random, std::stoull(schedule.substr(5)));
  else cuemu::set_schedule(cuemu::Schedule::Forward);
  test_block_sum();
  test_tree_reduce();
  test_shuffles();
  test_indices();
  test_deadlock_is_reported();
  test_bf16_rounding();
  test_wmma();
  std::printf("%s: %d failure(s)\n", schedule.c_str(), failures);
  return failures ? 1 : 0;
}
