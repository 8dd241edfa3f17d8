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

// A job is claimed task by task through one word, (job id << 32) | next task, with a compare-and-swap
// that only succeeds while that job is the current one. A worker that wakes late (its core was busy
// with another process) therefore finds the job gone and runs nothing, and the caller waits only for
// tasks that were claimed, never for a worker that has not shown up: on a loaded machine a call is
// then at worst as slow as on one thread, not a scheduler time slice slower. Id 0 means no job.
struct State {
  std::mutex mu;
  std::condition_variable wake;
  std::atomic<uint32_t> generation{0};  // the current job's id: workers wake on its change
  std::atomic<uint64_t> claim{0};
  std::atomic<int> done{0};  // tasks finished
  // The job, published before its id (and read only after a successful claim on that id).
  std::atomic<int> tasks{0};
  std::atomic<const std::function<void(int, int)>*> fn{nullptr};
  std::vector<std::thread> workers;
  std::atomic<bool> stop{false};
  std::atomic<int> active{1};  // threads taking part in jobs, the caller included
};

State& state() {
  static State* s = new State();  // never destroyed: workers may outlive static destruction order
  return *s;
}

/** Claims and runs tasks of job `id` until none are left or another job has replaced it. */
void work(State& s, uint32_t id, int thread) {
  const std::function<void(int, int)>* fn = s.fn.load(std::memory_order_acquire);
  const int tasks = s.tasks.load(std::memory_order_acquire);
  uint64_t c = s.claim.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(c >> 32) != id) return;
    const int t = static_cast<int>(c & 0xffffffffu);
    if (t >= tasks) return;
    // On failure c holds the word's new value and the checks run again.
    if (!s.claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    (*fn)(t, thread);
    s.done.fetch_add(1, std::memory_order_acq_rel);
    c = s.claim.load(std::memory_order_acquire);
  }
}

void workerLoop(int index) {
  State& s = state();
  uint32_t seen = 0;
  for (;;) {
    uint32_t id;
    int spins = 0;
    while ((id = s.generation.load(std::memory_order_acquire)) == seen) {
      if (++spins >= kSpin) {
        std::unique_lock<std::mutex> lock(s.mu);
        s.wake.wait(lock, [&] { return s.generation.load(std::memory_order_acquire) != seen || s.stop.load(); });
        spins = 0;
      }
    }
    seen = id;
    if (s.stop.load()) return;
    if (index < s.active.load(std::memory_order_relaxed)) work(s, id, index);
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
  // Between jobs (calls come from the one JS thread); a worker still waking from an earlier job
  // can claim nothing of a later one whatever this says.
  s.active.store(n, std::memory_order_relaxed);
  threads_ = n;
}

void Pool::run(int tasks, const std::function<void(int, int)>& fn) {
  if (tasks <= 0) return;
  State& s = state();
  if (threads_ == 1 || tasks == 1) {
    for (int t = 0; t < tasks; t++) fn(t, 0);
    return;
  }
  // Close the previous job's claims before its description changes, then publish this one.
  s.claim.store(0, std::memory_order_release);
  uint32_t id = s.generation.load(std::memory_order_relaxed) + 1;
  if (id == 0) id = 1;
  s.fn.store(&fn, std::memory_order_relaxed);
  s.tasks.store(tasks, std::memory_order_relaxed);
  s.done.store(0, std::memory_order_relaxed);
  s.claim.store(static_cast<uint64_t>(id) << 32, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.generation.store(id, std::memory_order_release);
  }
  s.wake.notify_all();
  work(s, id, 0);
  // Every task is claimed; wait for those still running on other threads, letting them have this
  // core if the machine is short of them.
  for (int spins = 0; s.done.load(std::memory_order_acquire) < tasks; spins++) {
    if (spins >= 1000) std::this_thread::yield();
  }
}

}  // namespace ns
