// The shared-memory transport (see shm.h for the layout and the algorithm).
#include "shm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <ctime>
#endif

namespace mm::dist {

namespace {

constexpr uint32_t kMagic = 0x4d4d5348;  // "MMSH"
constexpr int kMaxRanks = 256;
constexpr size_t kHeaderBytes = 16384;

std::string errno_text() { return std::strerror(errno); }

// One wait's slice: sleep until `word` changes from `seen` or `ms` pass (a cross-process futex on Linux).
void wait_for_change(std::atomic<uint32_t>* word, uint32_t seen, int ms) {
#ifdef __linux__
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
#else
  (void)word;
  (void)seen;
  std::this_thread::sleep_for(std::chrono::microseconds(ms > 0 ? 200 : 0));
#endif
}

void wake_all(std::atomic<uint32_t>* word) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

struct ShmHeader {
  uint32_t magic;
  uint32_t world;
  int64_t chunk_bytes;
  std::atomic<uint32_t> bumps;           // +1 on every barrier arrival: what sleepers wait on
  std::atomic<int32_t> aborted_by;       // -1, or the rank that gave up
  std::atomic<uint64_t> arrivals[kMaxRanks];  // barriers each rank has reached
  std::atomic<int32_t> pids[kMaxRanks];
};
static_assert(sizeof(ShmHeader) <= kHeaderBytes, "shm header must fit its page");
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "cross-process atomics must be lock-free");

ShmCommunicator::ShmCommunicator(const std::string& name, int rank, int world, int64_t chunk_bytes, double timeout_s)
    : Communicator(rank, world, timeout_s), name_(name), chunk_bytes_(chunk_bytes) {
  if (world < 1 || world > kMaxRanks) throw CommError("shm: world size must be 1.." + std::to_string(kMaxRanks));
  if (chunk_bytes < 4096 || chunk_bytes % 64) throw CommError("shm: chunk size must be a multiple of 64, >= 4096");
  map_bytes_ = kHeaderBytes + static_cast<size_t>(2 * world) * static_cast<size_t>(chunk_bytes);
  const bool creator = rank == 0;
  int fd = shm_open(name.c_str(), creator ? (O_CREAT | O_EXCL | O_RDWR) : O_RDWR, 0600);
  if (fd < 0) throw CommError("shm: cannot " + std::string(creator ? "create " : "open ") + name + ": " + errno_text());
  if (creator) {
    // Reserve the pages now: a too-small /dev/shm (docker's default is 64 MB) fails here, not with SIGBUS later.
    int err = ftruncate(fd, static_cast<off_t>(map_bytes_)) ? errno : posix_fallocate(fd, 0, static_cast<off_t>(map_bytes_));
    if (err) {
      close(fd);
      shm_unlink(name.c_str());
      throw CommError("shm: cannot reserve " + std::to_string(map_bytes_ >> 20) + " MB in /dev/shm for " + name + ": " +
                      std::strerror(err) + " (containers: raise --shm-size, or use the tcp transport)");
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) || static_cast<size_t>(st.st_size) != map_bytes_) {
      close(fd);
      throw CommError("shm: " + name + " has the wrong size: ranks disagree on world size or chunk size");
    }
  }
  map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw CommError("shm: mmap of " + name + " failed: " + errno_text());
  }
  header_ = static_cast<ShmHeader*>(map_);
  data_ = static_cast<uint8_t*>(map_) + kHeaderBytes;
  if (creator) {
    new (header_) ShmHeader();
    header_->world = static_cast<uint32_t>(world);
    header_->chunk_bytes = chunk_bytes;
    header_->aborted_by.store(-1);
    for (int r = 0; r < kMaxRanks; ++r) {
      header_->arrivals[r].store(0);
      header_->pids[r].store(0);
    }
    std::atomic_thread_fence(std::memory_order_release);
    header_->magic = kMagic;
  } else if (header_->magic != kMagic || header_->world != static_cast<uint32_t>(world) ||
             header_->chunk_bytes != chunk_bytes) {
    throw CommError("shm: " + name + " was not made by rank 0 of this run (world or chunk size differ)");
  }
  header_->pids[rank].store(static_cast<int32_t>(getpid()), std::memory_order_release);
}

ShmCommunicator::~ShmCommunicator() {
  if (map_) munmap(map_, map_bytes_);
}

void ShmCommunicator::unlink(const std::string& name) { shm_unlink(name.c_str()); }

uint8_t* ShmCommunicator::slot(int phase, int r) const {
  return data_ + (static_cast<size_t>(phase) * world_ + r) * static_cast<size_t>(chunk_bytes_);
}

void ShmCommunicator::abort() noexcept {
  if (!header_) return;
  int32_t none = -1;
  header_->aborted_by.compare_exchange_strong(none, rank_);
  header_->bumps.fetch_add(1);
  wake_all(&header_->bumps);
}

void ShmCommunicator::barrier(const Deadline& deadline, const char* what) {
  ShmHeader& h = *header_;
  const uint64_t target = h.arrivals[rank_].load(std::memory_order_relaxed) + 1;
  h.arrivals[rank_].store(target, std::memory_order_release);
  h.bumps.fetch_add(1, std::memory_order_acq_rel);
  wake_all(&h.bumps);

  auto everyone_arrived = [&] {
    for (int r = 0; r < world_; ++r)
      if (h.arrivals[r].load(std::memory_order_acquire) < target) return false;
    return true;
  };
  // Who we are still waiting for, for error messages.
  auto missing = [&] {
    std::string s;
    for (int r = 0; r < world_; ++r)
      if (h.arrivals[r].load(std::memory_order_acquire) < target) s += (s.empty() ? "" : ", ") + std::to_string(r);
    return s;
  };
  for (int spin = 0; spin < 2000; ++spin) {
    if (everyone_arrived()) return;
    cpu_relax();
  }
  auto last_pid_check = std::chrono::steady_clock::now();
  for (;;) {
    const uint32_t seen = h.bumps.load(std::memory_order_acquire);
    if (everyone_arrived()) return;
    const int32_t aborted = h.aborted_by.load(std::memory_order_acquire);
    if (aborted >= 0 && aborted != rank_) {
      throw CommError(std::string(what) + ": rank " + std::to_string(aborted) + " aborted the run");
    }
    if (deadline.expired()) {
      const std::string who = missing();
      abort();
      throw CommError(std::string(what) + " timed out (MINIMIND_DIST_TIMEOUT=" + std::to_string(timeout_s_) +
                      " s) waiting for rank(s) " + who);
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_pid_check > std::chrono::milliseconds(100)) {
      last_pid_check = now;
      for (int r = 0; r < world_; ++r) {
        const int32_t pid = h.pids[r].load(std::memory_order_acquire);
        if (pid > 0 && h.arrivals[r].load(std::memory_order_acquire) < target && kill(pid, 0) != 0 && errno == ESRCH) {
          abort();
          throw CommError(std::string(what) + ": rank " + std::to_string(r) + " (pid " + std::to_string(pid) +
                          ") exited");
        }
      }
    }
    wait_for_change(&h.bumps, seen, deadline.remaining_ms(20));
  }
}

template <typename T>
void ShmCommunicator::all_reduce_typed(const std::vector<Segment>& segments, T scale) {
  const Deadline deadline(timeout_s_);
  int64_t count = 0;
  for (const Segment& s : segments) count += s.bytes / static_cast<int64_t>(sizeof(T));
  const int64_t per_chunk = chunk_bytes_ / static_cast<int64_t>(sizeof(T));
  constexpr int64_t kLine = 64 / sizeof(T);  // parts start on cache lines: ranks never write the same line
  SegmentWalker gather(segments), scatter(segments);
  for (int64_t off = 0; off < count; off += per_chunk) {
    const int64_t n = std::min(per_chunk, count - off);
    const int phase = static_cast<int>(phase_++ & 1);
    uint8_t* mine = slot(phase, rank_);
    gather.take(n * sizeof(T), [&](uint8_t* p, int64_t bytes) {
      std::memcpy(mine, p, bytes);
      mine += bytes;
    });
    barrier(deadline, "all_reduce");
    const int64_t part = ((n + world_ - 1) / world_ + kLine - 1) / kLine * kLine;
    const int64_t begin = std::min(n, rank_ * part), end = std::min(n, begin + part);
    T* sum = reinterpret_cast<T*>(slot(phase, 0));
    for (int r = 1; r < world_; ++r) {  // rank order: the same additions on every rank and every run
      const T* in = reinterpret_cast<const T*>(slot(phase, r));
      for (int64_t i = begin; i < end; ++i) sum[i] += in[i];
    }
    if (scale != T(1))
      for (int64_t i = begin; i < end; ++i) sum[i] *= scale;
    barrier(deadline, "all_reduce");
    const uint8_t* result = slot(phase, 0);
    scatter.take(n * sizeof(T), [&](uint8_t* p, int64_t bytes) {
      std::memcpy(p, result, bytes);
      result += bytes;
    });
  }
}

void ShmCommunicator::all_reduce(const std::vector<Segment>& segments, DType dtype, double scale) {
  if (dtype == DType::f64) all_reduce_typed<double>(segments, scale);
  else all_reduce_typed<float>(segments, static_cast<float>(scale));
}

void ShmCommunicator::broadcast(void* data, int64_t bytes, int root) {
  const Deadline deadline(timeout_s_);
  uint8_t* p = static_cast<uint8_t*>(data);
  for (int64_t off = 0; off < bytes; off += chunk_bytes_) {
    const int64_t n = std::min(chunk_bytes_, bytes - off);
    const int phase = static_cast<int>(phase_++ & 1);
    if (rank_ == root) std::memcpy(slot(phase, 0), p + off, n);
    barrier(deadline, "broadcast");
    if (rank_ != root) std::memcpy(p + off, slot(phase, 0), n);
  }
}

}  // namespace mm::dist
