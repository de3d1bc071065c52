// Shared pieces of the MixNet CPU kernels: 16-float vectors, a vectorizable exp, activations, the
// thread pool, per-thread scratch and argument checks.

#ifndef MIXNET_KERNELS_COMMON_H_
#define MIXNET_KERNELS_COMMON_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <sched.h>

namespace mixnet {

typedef float v16 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));  // lane indices for __builtin_shuffle of v16
constexpr int64_t kLanes = 16;
// A weight gradient is cut into at least this many work items (image ranges when there are few
// groups), whatever the thread count, so its sums, and so training, are the same on any thread count.
constexpr int64_t kGradItems = 32;

enum Act { kNone = 0, kRelu = 1, kSwish = 2 };

inline v16 load(const float *p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float *p, v16 v) { std::memcpy(p, &v, sizeof v); }

inline v16 splat(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// dst[j] = src[j] for j < n; inline because rows are short and a memcpy call per row costs more.
inline void copy_row(const float *src, int64_t n, float *dst) {
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) store(dst + j, load(src + j));
  for (; j < n; ++j) dst[j] = src[j];
}

// sum_i a[i] * b[i] for any n, vectorized (a plain loop would keep the sequential float order).
inline float dot_n(const float *a, const float *b, int64_t n) {
  v16 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(a + i) * load(b + i);
  float s = 0.f;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// sum_i a[i] for any n, vectorized.
inline float sum_n(const float *a, int64_t n) {
  v16 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += load(a + i);
  float s = 0.f;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; i < n; ++i) s += a[i];
  return s;
}

// exp(x) for float32 (Cephes-style range reduction and polynomial), branch- and call-free so the
// compiler vectorizes loops over it.
inline float fast_exp(float x) {
  x = std::min(88.0f, std::max(-87.0f, x));  // keeps 2^n a normal float
  const float t = x * 1.44269504088896341f;
  const int32_t ni = static_cast<int32_t>(t + (t >= 0.f ? 0.5f : -0.5f));  // round to nearest
  const float n = static_cast<float>(ni);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * __builtin_bit_cast(float, (ni + 127) << 23);
}

inline float sigmoid(float x) { return 1.f / (1.f + fast_exp(-x)); }

inline float activate(int act, float x) {
  if (act == kRelu) return std::max(0.f, x);
  if (act == kSwish) return x * sigmoid(x);
  return x;
}

// Applies an activation known at compile time to a run of floats (vectorized by the compiler).
template <int A>
inline void activate_run(float *v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (A == kRelu) v[i] = std::max(0.f, v[i]);
    if (A == kSwish) v[i] = v[i] / (1.f + fast_exp(-v[i]));
  }
}

inline void activate_run(int act, float *v, int64_t n) {
  if (act == kRelu) activate_run<kRelu>(v, n);
  if (act == kSwish) activate_run<kSwish>(v, n);
}

// Folded inference BatchNorm: y = x * scale + shift.
inline void fold_batch_norm(const float *gamma, const float *beta, const float *mean, const float *var, float eps,
                            int64_t c, float *scale, float *shift) {
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = gamma[i] / std::sqrt(var[i] + eps);
    shift[i] = beta[i] - mean[i] * scale[i];
  }
}

// A hint to the CPU that this thread is waiting in a loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

inline bool all_float32(int n, const char **dtypes) {
  for (int i = 0; i < n; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0 && std::strcmp(dtypes[i], "float") != 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Thread pool: run(count, f) calls f(item, slot) for every item; the caller is slot 0 and takes items
// too. Items are claimed with a ticket that carries the job's generation, so a helper that wakes up
// late can never claim an item of a finished job, and the caller waits only for claimed items: a
// helper preempted by another process costs no idle time. The pool starts with $MIXNAS_NUM_THREADS
// threads (else one per CPU of the process affinity); resize() changes that between jobs.

class Pool {
 public:
  static Pool &instance() {
    static Pool pool(default_threads());
    return pool;
  }

  // Marks the jobs run while an InferenceCall lives (see loop).
  void begin_inference() { inference_calls_.fetch_add(1, std::memory_order_relaxed); }
  void end_inference() { inference_calls_.fetch_sub(1, std::memory_order_relaxed); }

  // Threads a job runs on: the caller and the helpers.
  int64_t slots() const { return slots_.load(std::memory_order_acquire); }

  // Slots passed to f stay below max_slots (a caller's earlier slots(), to size per-slot buffers).
  void run(int64_t count, const std::function<void(int64_t, int64_t)> &f, int64_t max_slots = INT64_MAX) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty() || count < 2 || max_slots < 2) {  // another kernel holds the pool: run inline
      for (int64_t i = 0; i < count; ++i) f(i, 0);
      return;
    }
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gen = ++generation_;
      job_ = &f;
      count_ = count;
      job_slots_ = max_slots;
      job_inference_ = inference_calls_.load(std::memory_order_relaxed) > 0;
      done_.store(0, std::memory_order_relaxed);
      ticket_.store(gen << kIndexBits, std::memory_order_release);
    }
    cv_.notify_all();
    work(gen, f, count, 0);
    while (done_.load(std::memory_order_acquire) < count) std::this_thread::yield();
  }

  // Runs the next jobs on ``threads`` threads (the caller included): stops or starts helpers once
  // the running job, if any, has finished.
  void resize(int64_t threads) {
    threads = std::max<int64_t>(1, threads);
    std::lock_guard<std::mutex> busy(run_mu_);
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = threads;
      seen = generation_;
    }
    cv_.notify_all();
    for (; static_cast<int64_t>(workers_.size()) >= threads; workers_.pop_back()) workers_.back().join();
    for (int64_t i = static_cast<int64_t>(workers_.size()) + 1; i < threads; ++i)
      workers_.emplace_back([this, i, seen] { loop(i, seen); });
    slots_.store(threads, std::memory_order_release);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
  }

 private:
  static constexpr int kIndexBits = 40;
  static constexpr std::chrono::microseconds kSpin{200};

  static int64_t default_threads() {
    if (const char *env = std::getenv("MIXNAS_NUM_THREADS")) {
      const long n = std::strtol(env, nullptr, 10);
      if (n >= 1) return n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1u, std::thread::hardware_concurrency());
  }

  explicit Pool(int64_t threads) { resize(threads); }

  void work(uint64_t gen, const std::function<void(int64_t, int64_t)> &f, int64_t count, int64_t slot) {
    const uint64_t mask = (uint64_t{1} << kIndexBits) - 1;
    uint64_t t = ticket_.load(std::memory_order_acquire);
    while ((t >> kIndexBits) == gen && static_cast<int64_t>(t & mask) < count) {
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) {
        f(static_cast<int64_t>(t & mask), slot);
        done_.fetch_add(1, std::memory_order_acq_rel);
        t = ticket_.load(std::memory_order_acquire);
      }
    }
  }

  // Waits up to kSpin for a job newer than ``seen`` without sleeping; true when one came.
  bool spin_for_job(uint64_t seen) const {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (generation_.load(std::memory_order_acquire) == seen) {
      for (int i = 0; i < 64; ++i) cpu_relax();
      if (std::chrono::steady_clock::now() > until) return false;
    }
    return true;
  }

  // After a job of an inference call a helper spins for the next one: a network's kernel calls follow
  // one another within microseconds at inference, and waking a sleeping thread takes longer. After a
  // training job it sleeps at once: MindSpore's own operators run between training kernel calls, and a
  // spinning helper would take their core.
  void loop(int64_t slot, uint64_t seen) {
    bool spin = false;
    for (;;) {
      const std::function<void(int64_t, int64_t)> *job;
      int64_t count, slots;
      uint64_t gen;
      const bool came = spin && spin_for_job(seen);
      std::unique_lock<std::mutex> lock(mu_);
      if (!came) cv_.wait(lock, [&] { return stop_ || slot >= limit_ || generation_ != seen; });
      if (stop_ || slot >= limit_) return;
      seen = gen = generation_;
      job = job_;
      count = count_;
      slots = job_slots_;
      spin = job_inference_;
      lock.unlock();
      if (slot < slots) work(gen, *job, count, slot);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex run_mu_, mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  const std::function<void(int64_t, int64_t)> *job_ = nullptr;
  int64_t count_ = 0, job_slots_ = 0, limit_ = 0;
  bool job_inference_ = false;
  std::atomic<int64_t> inference_calls_{0};
  std::atomic<int64_t> slots_{1};
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> done_{0};
  bool stop_ = false;
};

// Held by an inference kernel call: its jobs leave the pool's helpers spinning for the next call.
struct InferenceCall {
  InferenceCall() { Pool::instance().begin_inference(); }
  ~InferenceCall() { Pool::instance().end_inference(); }
  InferenceCall(const InferenceCall &) = delete;
  InferenceCall &operator=(const InferenceCall &) = delete;
};

// f(begin, end) over [0, n) in ranges of ``grain`` items, shared by the pool.
template <typename F>
void parallel_for(int64_t n, int64_t grain, const F &f) {
  grain = std::max<int64_t>(1, grain);
  Pool::instance().run((n + grain - 1) / grain, [&](int64_t item, int64_t) {
    f(item * grain, std::min(n, (item + 1) * grain));
  });
}

// Per-thread scratch that lives as long as the thread and only grows.
struct Scratch {
  std::vector<float> planes, out, wt;
  std::vector<const float *> src;
  uint64_t key_call = 0;  // which kernel call and work unit the planes hold
  int64_t key_item = -1;
};

inline float *grow(std::vector<float> &v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}

inline Scratch &thread_scratch() {
  thread_local Scratch s;
  return s;
}

// A number unique to each kernel call, to key cached per-thread planes.
inline uint64_t next_call_id() {
  static std::atomic<uint64_t> calls{0};
  return ++calls;
}

}  // namespace mixnet

#endif  // MIXNET_KERNELS_COMMON_H_
