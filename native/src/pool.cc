#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace ns {

namespace {

// Polls of the job counter before a worker sleeps: a few tens of microseconds, about what waking a
// sleeping thread costs, so a model's stream of kernel calls keeps the workers awake.
constexpr int kSpin = 20000;

struct State {
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> next{0};
  std::atomic<int> pending{0};
  // Workers done with the current job: the caller waits for all of them before it returns, so no
  // worker is still reading the job when the next one is set up.
  std::atomic<int> finished{0};
  int tasks = 0;
  const std::function<void(int, int)>* fn = nullptr;
  std::vector<std::thread> workers;
  std::atomic<bool> stop{false};
  int active = 1;  // threads taking part in jobs, the caller included
};

State& state() {
  static State* s = new State();  // never destroyed: workers may outlive static destruction order
  return *s;
}

void work(State& s, int thread) {
  for (;;) {
    int t = s.next.fetch_add(1, std::memory_order_relaxed);
    if (t >= s.tasks) break;
    (*s.fn)(t, thread);
    s.pending.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void workerLoop(int index) {
  State& s = state();
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen;
    int spins = 0;
    while ((gen = s.generation.load(std::memory_order_acquire)) == seen) {
      if (++spins >= kSpin) {
        std::unique_lock<std::mutex> lock(s.mu);
        s.wake.wait(lock, [&] { return s.generation.load(std::memory_order_acquire) != seen || s.stop.load(); });
        spins = 0;
      }
    }
    seen = gen;
    if (s.stop.load()) return;
    if (index < s.active) {
      work(s, index);
      s.finished.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace

Pool& Pool::get() {
  static Pool* p = new Pool();
  return *p;
}

Pool::Pool() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("NANOSEEK_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) n = v;
  }
  setThreads(n < 1 ? 1 : n);
}

void Pool::setThreads(int n) {
  State& s = state();
  while (static_cast<int>(s.workers.size()) < n - 1) {
    int index = static_cast<int>(s.workers.size()) + 1;
    s.workers.emplace_back(workerLoop, index);
    s.workers.back().detach();
  }
  // Only between jobs (calls come from the one JS thread), so no worker is inside a job now.
  s.active = n;
  threads_ = n;
}

void Pool::run(int tasks, const std::function<void(int, int)>& fn) {
  if (tasks <= 0) return;
  State& s = state();
  if (threads_ == 1 || tasks == 1) {
    for (int t = 0; t < tasks; t++) fn(t, 0);
    return;
  }
  s.fn = &fn;
  s.tasks = tasks;
  s.next.store(0, std::memory_order_relaxed);
  s.pending.store(tasks, std::memory_order_relaxed);
  s.finished.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.generation.fetch_add(1, std::memory_order_release);
  }
  s.wake.notify_all();
  work(s, 0);
  // The last tasks finish on other threads; then every worker has left the job.
  while (s.pending.load(std::memory_order_acquire) > 0 || s.finished.load(std::memory_order_acquire) < s.active - 1) {
  }
  s.fn = nullptr;
}

}  // namespace ns
