// The native thread pool: persistent workers that split index ranges (parallel_for) or run one task each
// (parallel_tasks). One job runs at a time; the caller works too and waits for the rest.
// Workers spin briefly before sleeping, because training launches thousands of small jobs per step.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "mm.h"

namespace mm {
namespace {

class ThreadPool {
 public:
  explicit ThreadPool(int n) { start(n); }
  ~ThreadPool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    if (n == size()) return;
    stop();
    start(n);
  }

  // Runs task(t) for t in [0, num_tasks); tasks are claimed dynamically by the caller and the workers.
  void run(int num_tasks, const std::function<void(int)>& task) {
    if (num_tasks <= 0) return;
    if (num_tasks == 1 || workers_.empty() || in_worker_) {
      for (int t = 0; t < num_tasks; ++t) task(t);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one job at a time
    in_worker_ = true;  // the caller works too: a parallel call nested in a task must run serially
    {
      // The whole job is published under the mutex before the generation changes, so a worker that sees
      // the new generation (under the same mutex) sees a consistent job.
      std::lock_guard<std::mutex> lk(mutex_);
      task_ = &task;
      num_tasks_ = num_tasks;
      next_.store(0, std::memory_order_relaxed);
      done_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // Wait until every task is done and every worker that joined has left, so no straggler touches the
    // next job's counters.
    while (done_.load(std::memory_order_acquire) < num_tasks || active_.load(std::memory_order_acquire) > 0)
      std::this_thread::yield();
    std::lock_guard<std::mutex> lk(mutex_);
    task_ = nullptr;
    in_worker_ = false;
  }

 private:
  void start(int n) {
    if (n < 1) n = 1;
    quit_ = false;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      quit_ = true;
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void work() {
    for (;;) {
      int t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= num_tasks_) break;
      (*task_)(t);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void loop() {
    in_worker_ = true;
    uint64_t seen = 0;
    for (;;) {
      // Spin a little for the next job before sleeping: training launches many short jobs per step.
      for (int spin = 0; spin < 4000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
        std::this_thread::yield();
      bool has_job;
      {
        std::unique_lock<std::mutex> lk(mutex_);
        cv_.wait(lk, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (quit_) return;
        has_job = task_ != nullptr;
        if (has_job) active_.fetch_add(1, std::memory_order_relaxed);
      }
      if (has_job) {
        work();
        active_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_, mutex_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  bool quit_ = false;
  std::atomic<int> active_{0};
  const std::function<void(int)>* task_ = nullptr;
  int num_tasks_ = 0;
  std::atomic<int> next_{0}, done_{0};
  static thread_local bool in_worker_;
};

thread_local bool ThreadPool::in_worker_ = false;

int default_threads() {
  if (const char* env = std::getenv("MINIMIND_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? static_cast<int>(hw) : 1;
}

ThreadPool& pool() {
  static ThreadPool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n > 0 ? n : static_cast<int>(std::thread::hardware_concurrency())); }

void parallel_tasks(int num_tasks, const std::function<void(int)>& fn) { pool().run(num_tasks, fn); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  // A few chunks per thread balance uneven work without much scheduling cost.
  int64_t max_chunks = static_cast<int64_t>(num_threads()) * 4;
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, max_chunks);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  int64_t step = (n + chunks - 1) / chunks;
  pool().run(static_cast<int>(chunks), [&](int c) {
    int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace mm
