// The native backend's threads. The calling JS thread is thread 0 and works too; the others wait
// on the pool between calls (spinning briefly, then sleeping), so back-to-back kernel calls find them
// awake while an idle process does not burn cores. One job at a time: N-API calls come from the one
// JS thread.
#pragma once
#include <functional>

namespace ns {

class Pool {
 public:
  static Pool& get();
  /** Threads a kernel call uses (the caller included). */
  int threads() const { return threads_; }
  void setThreads(int n);
  /**
   * Runs fn(task, thread) for every task in [0, tasks), tasks claimed in order by whichever thread
   * is free; returns when all are done. With one thread or one task it runs inline.
   */
  void run(int tasks, const std::function<void(int task, int thread)>& fn);

 private:
  Pool();
  int threads_ = 1;
};

}  // namespace ns
