#include "loader/loader.h"

#include <chrono>
#include <stdexcept>
#include <string>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace bmf {
namespace loader {

namespace {
constexpr int kWorkerNice = 10;
constexpr std::chrono::milliseconds kPollInterval{2};
}  // namespace

Prefetcher::Prefetcher(std::shared_ptr<const Corpus> corpus, int num_threads, int prefetch)
    : corpus_(std::move(corpus)), num_threads_(num_threads), prefetch_(prefetch) {
  if (num_threads < 1) throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(num_threads));
  if (prefetch < 1) throw std::invalid_argument("prefetch must be >= 1, got " + std::to_string(prefetch));
  slots_.resize(static_cast<std::size_t>(prefetch));
}

Prefetcher::~Prefetcher() { stop(); }

std::int64_t Prefetcher::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consumed_;
}

std::int64_t Prefetcher::waits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waits_;
}

void Prefetcher::start_locked() {
  if (!threads_.empty()) return;
  stopping_ = false;
  ++generation_;
  claimed_ = consumed_;
  for (Slot& s : slots_) s = Slot();
  threads_.reserve(static_cast<std::size_t>(num_threads_));
  for (int t = 0; t < num_threads_; ++t) threads_.emplace_back(&Prefetcher::worker, this, generation_);
}

void Prefetcher::stop() {
  std::vector<std::thread> joining;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    joining.swap(threads_);
  }
  space_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : joining) {
    if (t.joinable()) t.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Slot& s : slots_) s = Slot();
  claimed_ = consumed_;
}

void Prefetcher::seek(std::int64_t index) {
  corpus_->check_index(index);
  stop();
  std::lock_guard<std::mutex> lock(mu_);
  consumed_ = claimed_ = index;
}

void Prefetcher::worker(std::uint64_t generation) {
#if defined(__linux__)
  // A batch takes microseconds; running the workers at a lower priority keeps them from preempting the
  // training thread (which would show up as data-wait time on machines with few cores). When the consumer
  // does wait, its core is idle and the workers run at once. Best effort: failure is harmless.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kWorkerNice);
#endif
  for (;;) {
    std::int64_t j;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // The ring is full: sleep until a slot frees. The consumer wakes a worker only when the ring runs low
      // (a wake-up in its hot path can cost it a context switch); otherwise workers notice free slots by
      // polling every kPollInterval, which keeps the ring nearly full whenever steps are slower than that.
      while (!(stopping_ || claimed_ < consumed_ + prefetch_)) {
        ++sleeping_workers_;
        space_cv_.wait_for(lock, kPollInterval);
        --sleeping_workers_;
      }
      if (stopping_ || generation != generation_) return;
      j = claimed_++;
    }
    auto batch = std::make_unique<Batch>();
    std::exception_ptr error;
    try {
      corpus_->build(j, batch.get());
    } catch (...) {
      error = std::current_exception();
      batch.reset();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || generation != generation_) return;
      Slot& slot = slots_[static_cast<std::size_t>(j % prefetch_)];
      slot.index = j;
      slot.batch = std::move(batch);
      slot.error = error;
    }
    ready_cv_.notify_all();
  }
}

std::unique_ptr<Batch> Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mu_);
  start_locked();
  std::int64_t want = consumed_;
  if (slots_[static_cast<std::size_t>(want % prefetch_)].index != want) ++waits_;
  // (Re-)read `want` after every wake-up: another thread calling next() may have taken that batch.
  ready_cv_.wait(lock, [&] {
    want = consumed_;
    return stopping_ || slots_[static_cast<std::size_t>(want % prefetch_)].index == want;
  });
  Slot& slot = slots_[static_cast<std::size_t>(want % prefetch_)];
  if (slot.index != want) throw std::runtime_error("TokenLoader was closed while waiting for a batch");
  if (slot.error) {
    std::exception_ptr error = slot.error;
    lock.unlock();
    stop();  // restart from the same position next time: the same error is raised again, deterministically
    std::rethrow_exception(error);
  }
  std::unique_ptr<Batch> batch = std::move(slot.batch);
  slot = Slot();
  ++consumed_;
  // Wake a worker only when at most half the ring is ready or being built; see worker().
  const bool wake = sleeping_workers_ > 0 && 2 * (claimed_ - consumed_) <= prefetch_;
  lock.unlock();
  if (wake) space_cv_.notify_one();
  return batch;
}

}  // namespace loader
}  // namespace bmf
