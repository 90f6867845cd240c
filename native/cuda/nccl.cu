// NCCL through dlopen (see nccl.h and nccl_api.h). Host code only.
// Collectives run on the legacy default stream with a device synchronisation on both sides, so they are
// ordered after whatever stream the kernels used and finished before the optimizer reads the gradients.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "nccl.h"
#include "nccl_api.h"

namespace mm::cuda::nccl {

namespace {

struct Library {
  void* handle = nullptr;
  std::string error;  // why it could not be loaded
  mm::nccl::GetVersionFn get_version = nullptr;
  mm::nccl::GetUniqueIdFn get_unique_id = nullptr;
  mm::nccl::CommInitRankFn comm_init_rank = nullptr;
  mm::nccl::AllReduceFn all_reduce = nullptr;
  mm::nccl::BroadcastFn broadcast = nullptr;
  mm::nccl::CommDestroyFn comm_destroy = nullptr;
  mm::nccl::CommAbortFn comm_abort = nullptr;
  mm::nccl::GetErrorStringFn get_error_string = nullptr;
  mm::nccl::GroupStartFn group_start = nullptr;
  mm::nccl::GroupEndFn group_end = nullptr;
};

template <typename Fn>
bool find(Library& lib, Fn& fn, const char* name) {
  fn = reinterpret_cast<Fn>(dlsym(lib.handle, name));
  if (!fn) lib.error = std::string("libnccl.so.2 has no ") + name;
  return fn != nullptr;
}

const Library& library() {
  static Library lib = [] {
    Library l;
    l.handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!l.handle) {
      const char* e = dlerror();
      l.error = std::string("cannot load libnccl.so.2 (") + (e ? e : "not found") +
                "); install NCCL (e.g. the nvidia-nccl-cu12 wheel or libnccl2) and add it to LD_LIBRARY_PATH";
      return l;
    }
    if (find(l, l.get_version, "ncclGetVersion") && find(l, l.get_unique_id, "ncclGetUniqueId") &&
        find(l, l.comm_init_rank, "ncclCommInitRank") && find(l, l.all_reduce, "ncclAllReduce") &&
        find(l, l.broadcast, "ncclBroadcast") && find(l, l.comm_destroy, "ncclCommDestroy") &&
        find(l, l.comm_abort, "ncclCommAbort") && find(l, l.get_error_string, "ncclGetErrorString") &&
        find(l, l.group_start, "ncclGroupStart") && find(l, l.group_end, "ncclGroupEnd")) {
      l.error.clear();
    }
    return l;
  }();
  return lib;
}

const Library& loaded() {
  const Library& lib = library();
  if (!lib.error.empty()) throw std::runtime_error("nccl: " + lib.error);
  return lib;
}

void check(mm::nccl::Result r, const char* what) {
  if (r != mm::nccl::kSuccess) {
    throw std::runtime_error(std::string("nccl: ") + what + " failed: " + loaded().get_error_string(r));
  }
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("nccl: ") + what + ": " + cudaGetErrorString(e));
}

// A communicator with the stream its started all-reduces run on, and the event that orders them after the
// default stream's work.
struct Communicator {
  mm::nccl::Comm comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr;
};

std::mutex comms_mutex;
std::map<int, Communicator> comms;
int next_handle = 1;

Communicator communicator(int handle) {
  std::lock_guard<std::mutex> lock(comms_mutex);
  auto it = comms.find(handle);
  if (it == comms.end()) throw std::runtime_error("nccl: communicator " + std::to_string(handle) + " is closed");
  return it->second;
}

mm::nccl::Comm comm_of(int handle) { return communicator(handle).comm; }

mm::nccl::DataType nccl_dtype(int dtype) { return dtype == 1 ? mm::nccl::kBfloat16 : mm::nccl::kFloat32; }

}  // namespace

std::string unavailable_reason() {
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    cudaGetLastError();
    return std::string("no CUDA device (") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")";
  }
  return library().error.empty() ? "" : library().error;
}

int version() {
  int v = 0;
  check(loaded().get_version(&v), "ncclGetVersion");
  return v;
}

std::string unique_id() {
  mm::nccl::UniqueId id;
  check(loaded().get_unique_id(&id), "ncclGetUniqueId");
  return std::string(id.internal, sizeof id.internal);
}

int init_rank(int rank, int world, const std::string& id, int device) {
  if (id.size() != static_cast<size_t>(mm::nccl::kUniqueIdBytes)) throw std::runtime_error("nccl: bad unique id size");
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  mm::nccl::UniqueId uid;
  std::copy(id.begin(), id.end(), uid.internal);
  Communicator c;
  check(loaded().comm_init_rank(&c.comm, world, uid, rank), "ncclCommInitRank");
  // Non-blocking: the stream does not wait for the legacy default stream on its own; the event orders it.
  check_cuda(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  check_cuda(cudaEventCreateWithFlags(&c.ready, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  std::lock_guard<std::mutex> lock(comms_mutex);
  comms[next_handle] = c;
  return next_handle++;
}

void all_reduce(int handle, void* data, int64_t count, int dtype, bool average) {
  mm::nccl::Comm comm = comm_of(handle);
  check_cuda(cudaDeviceSynchronize(), "before all_reduce");
  check(loaded().all_reduce(data, data, static_cast<size_t>(count), nccl_dtype(dtype),
                            average ? mm::nccl::kAvg : mm::nccl::kSum, comm, nullptr),
        "ncclAllReduce");
  check_cuda(cudaDeviceSynchronize(), "after all_reduce");
}

void all_reduce_start(int handle, const std::vector<void*>& data, const std::vector<int64_t>& counts, int dtype,
                      bool average) {
  const Communicator c = communicator(handle);
  check_cuda(cudaEventRecord(c.ready, cudaStreamLegacy), "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(c.stream, c.ready, 0), "cudaStreamWaitEvent");
  const Library& lib = loaded();
  check(lib.group_start(), "ncclGroupStart");
  for (size_t i = 0; i < data.size(); ++i) {
    mm::nccl::Result r = lib.all_reduce(data[i], data[i], static_cast<size_t>(counts[i]), nccl_dtype(dtype),
                                        average ? mm::nccl::kAvg : mm::nccl::kSum, c.comm, c.stream);
    if (r != mm::nccl::kSuccess) {
      lib.group_end();
      check(r, "ncclAllReduce");
    }
  }
  check(lib.group_end(), "ncclGroupEnd");
}

void wait(int handle) { check_cuda(cudaStreamSynchronize(communicator(handle).stream), "waiting for all-reduces"); }

void broadcast(int handle, void* data, int64_t bytes, int root) {
  mm::nccl::Comm comm = comm_of(handle);
  check_cuda(cudaDeviceSynchronize(), "before broadcast");
  // Bytes as int8: any dtype broadcasts the same way.
  check(loaded().broadcast(data, data, static_cast<size_t>(bytes), mm::nccl::kInt8, root, comm,
                           nullptr),
        "ncclBroadcast");
  check_cuda(cudaDeviceSynchronize(), "after broadcast");
}

void destroy(int handle, bool abort) {
  Communicator c;
  {
    std::lock_guard<std::mutex> lock(comms_mutex);
    auto it = comms.find(handle);
    if (it == comms.end()) return;
    c = it->second;
    comms.erase(it);
  }
  // Abort first: it unblocks a collective still running on the stream, which a synchronize would wait for.
  if (abort) loaded().comm_abort(c.comm);
  else {
    cudaStreamSynchronize(c.stream);
    loaded().comm_destroy(c.comm);
  }
  cudaEventDestroy(c.ready);
  cudaStreamDestroy(c.stream);
}

}  // namespace mm::cuda::nccl
