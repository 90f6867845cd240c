// Collectives between the processes ("ranks") of one data-parallel training run, on the CPU.
//
// A Communicator joins `world` ranks; every rank calls the same collectives in the same order:
//   all_reduce(segments, dtype, scale)  in place over several buffers taken as one concatenated array (a whole
//                                       model's gradients in one call): x[i] = scale * (sum over ranks of x[i])
//   broadcast(data, bytes, root)        in place: every rank gets root's bytes
// Results are bit-identical on every rank: each element's sum is computed once, in a fixed order, and that
// one value is copied to every rank. Every wait has a deadline (timeout_s) and notices a dead peer, so a
// failed rank makes the others throw CommError instead of hanging.
// Two transports implement it: shared memory between processes of one host (shm.h) and a TCP ring between
// hosts (tcp_ring.h). NCCL, for GPUs, lives in the CUDA backend (native/cuda/nccl.h).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mm::dist {

enum class DType : int { f32 = 0, f64 = 1 };

inline size_t dtype_bytes(DType t) { return t == DType::f64 ? 8 : 4; }

// What collectives throw: a timeout, a dead or aborted peer, a socket or shm failure. The message names
// the collective and the rank it was waiting for.
struct CommError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One buffer of an all-reduce; the buffers of one call are reduced as if concatenated.
struct Segment {
  void* data;
  int64_t bytes;
};

// Reads or writes a list of segments as one byte stream, in order: take(n, fn) calls fn(pointer, bytes) for the
// pieces of the next n bytes. Lets a transport copy a whole bucket of tensors without a flat staging copy.
class SegmentWalker {
 public:
  explicit SegmentWalker(const std::vector<Segment>& segments) : segments_(segments) {}
  template <typename Fn>
  void take(int64_t bytes, Fn&& fn) {
    while (bytes > 0 && index_ < segments_.size()) {
      const Segment& s = segments_[index_];
      const int64_t piece = s.bytes - offset_ < bytes ? s.bytes - offset_ : bytes;
      if (piece > 0) fn(static_cast<uint8_t*>(s.data) + offset_, piece);
      offset_ += piece;
      bytes -= piece;
      if (offset_ == s.bytes) {
        ++index_;
        offset_ = 0;
      }
    }
  }

 private:
  const std::vector<Segment>& segments_;
  size_t index_ = 0;
  int64_t offset_ = 0;
};

// A point in time after which a wait gives up.
class Deadline {
 public:
  explicit Deadline(double seconds)
      : end_(std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds))) {}
  bool expired() const { return std::chrono::steady_clock::now() >= end_; }
  // Milliseconds left, at least 0, at most `cap` (waits wake up at least that often to check for dead peers).
  int remaining_ms(int cap) const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - std::chrono::steady_clock::now()).count();
    return static_cast<int>(left < 0 ? 0 : (left > cap ? cap : left));
  }

 private:
  std::chrono::steady_clock::time_point end_;
};

class Communicator {
 public:
  Communicator(int rank, int world, double timeout_s) : rank_(rank), world_(world), timeout_s_(timeout_s) {}
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual void all_reduce(const std::vector<Segment>& segments, DType dtype, double scale) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Makes the peers' current and next waits fail at once (called when this rank gives up).
  virtual void abort() noexcept = 0;

  int rank() const { return rank_; }
  int world() const { return world_; }
  void set_timeout(double seconds) { timeout_s_ = seconds; }

 protected:
  int rank_, world_;
  double timeout_s_;  // per collective call
};

// Runs a communicator's collectives on a background thread, in the order they were started, so that the
// caller can go on computing (the backward pass of earlier layers) while gradients travel. wait() returns when
// everything started has finished, and rethrows the first failure; after a failure the rest is skipped.
class CollectiveQueue {
 public:
  CollectiveQueue() : worker_([this] { run(); }) {}
  ~CollectiveQueue() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    worker_.join();
  }
  CollectiveQueue(const CollectiveQueue&) = delete;
  CollectiveQueue& operator=(const CollectiveQueue&) = delete;

  void start(std::function<void()> collective) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_.push_back(std::move(collective));
    }
    changed_.notify_all();
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return pending_.empty() && !busy_; });
    if (failure_) {
      std::exception_ptr failure = failure_;
      failure_ = nullptr;
      std::rethrow_exception(failure);
    }
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, nothing left
      std::function<void()> collective = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
      const bool skip = failure_ != nullptr;
      lock.unlock();
      std::exception_ptr failure;
      if (!skip) {
        try {
          collective();
        } catch (...) {
          failure = std::current_exception();
        }
      }
      lock.lock();
      if (failure) failure_ = failure;
      busy_ = false;
      changed_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> pending_;
  bool busy_ = false;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread worker_;  // last: starts after the members it uses exist
};

}  // namespace mm::dist
