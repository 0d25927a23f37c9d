// A small work-sharing pool for the elementwise, reduction and copy kernels.
//
// The calling thread never waits for a worker to *start*: it claims chunks itself, and workers
// that wake up in time claim the rest. A fork-join barrier (OpenMP's) instead stalls every
// kernel for a scheduler time slice whenever another process holds a core, which on a 2-core
// machine made kernels 5-10x slower than single-threaded ones.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

#include "common.h"

namespace ssfer {

namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

struct Job {
  void (*fn)(void*, i64, i64);
  void* ctx;
  i64 n;
  i64 chunk;
  i64 chunks;
  std::atomic<i64> next{0};
};

struct Pool {
  std::mutex m;
  std::condition_variable cv;
  std::atomic<uint64_t> gen{0};
  std::atomic<Job*> job{nullptr};
  std::atomic<int> inside{0};
  std::atomic<int> sleepers{0};
  std::atomic<uint64_t> park{0};
  bool parkEnabled = true;
  std::mutex submit;
  std::mutex spawn;
  int spawned = 0;
  // How long an idle worker spins before sleeping: long enough to stay awake across the JS
  // overhead between two kernels, short enough not to compete with OpenBLAS's threads for long.
  std::chrono::microseconds spin{50};
};

// Deliberately leaked: destroying the mutex/condition variable at process exit while workers
// still wait on them would be undefined behaviour, and the workers never need joining.
Pool* ThePool() {
  static Pool* pool = [] {
    Pool* p = new Pool();
    if (const char* s = std::getenv("SSFER_NATIVE_SPIN_US")) p->spin = std::chrono::microseconds(std::atoi(s));
    if (const char* s = std::getenv("SSFER_NATIVE_PARK")) p->parkEnabled = std::atoi(s) != 0;
    return p;
  }();
  return pool;
}

thread_local bool tl_in_job = false;
std::atomic<int> g_threads{1};

void RunChunks(Job* j) {
  for (;;) {
    i64 c = j->next.fetch_add(1, std::memory_order_relaxed);
    if (c >= j->chunks) return;
    i64 b = c * j->chunk;
    i64 e = std::min(j->n, b + j->chunk);
    j->fn(j->ctx, b, e);
  }
}

void WorkerMain(Pool* p, int index) {
  tl_in_job = true;  // a kernel running on a worker must not submit nested jobs
  uint64_t seen = p->gen.load();
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    const uint64_t parked = p->park.load();
    int spins = 0;
    while (p->gen.load() == seen) {
      if ((++spins & 63) != 0) {
        CpuRelax();
        continue;
      }
      if (std::chrono::steady_clock::now() - start < p->spin && p->park.load() == parked) continue;
      std::unique_lock<std::mutex> lock(p->m);
      p->sleepers.fetch_add(1);
      p->cv.wait(lock, [&] { return p->gen.load() != seen; });
      p->sleepers.fetch_sub(1);
    }
    seen = p->gen.load();
    if (index >= g_threads.load(std::memory_order_relaxed) - 1) continue;
    // Announce before looking at the job: the submitter unpublishes the job and then waits
    // until no worker is inside, so a job is never touched after its submitter returned.
    p->inside.fetch_add(1);
    Job* j = p->job.load();
    if (j) RunChunks(j);
    p->inside.fetch_sub(1);
  }
}

void EnsureWorkers(Pool* p, int n) {
  std::lock_guard<std::mutex> lock(p->spawn);
  while (p->spawned < n) {
    std::thread(WorkerMain, p, p->spawned).detach();
    p->spawned++;
  }
}

}  // namespace

void ParkWorkers() {
  Pool* p = ThePool();
  if (p->parkEnabled) p->park.fetch_add(1);
}

int NumThreads() { return g_threads.load(std::memory_order_relaxed); }

void SetNumThreads(int n) { g_threads.store(std::max(1, std::min(n, 64))); }

int HardwareThreads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

void RunParallel(i64 n, i64 grain, void (*fn)(void*, i64, i64), void* ctx) {
  const int nt = NumThreads();
  if (nt <= 1 || n < 2 * grain || tl_in_job) {
    fn(ctx, 0, n);
    return;
  }
  Pool* p = ThePool();
  // Another JS thread (worker_threads) is using the pool: just run here.
  std::unique_lock<std::mutex> own(p->submit, std::try_to_lock);
  if (!own.owns_lock()) {
    fn(ctx, 0, n);
    return;
  }
  EnsureWorkers(p, nt - 1);
  Job job;
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  // A few chunks per thread, so whoever is running takes over the share of a late worker.
  job.chunks = std::min<i64>((n + grain - 1) / grain, static_cast<i64>(nt) * 4);
  job.chunk = (n + job.chunks - 1) / job.chunks;
  job.chunks = (n + job.chunk - 1) / job.chunk;
  p->job.store(&job);
  p->gen.fetch_add(1);
  if (p->sleepers.load() > 0) {
    std::lock_guard<std::mutex> lock(p->m);
    p->cv.notify_all();
  }
  tl_in_job = true;
  RunChunks(&job);
  tl_in_job = false;
  p->job.store(nullptr);
  int spins = 0;
  while (p->inside.load() > 0) {
    if (++spins < 4096) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace ssfer
