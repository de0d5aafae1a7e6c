// The threaded prefetcher: worker threads build batches ahead of the consumer into a bounded ring.
//
// Batch j always goes to slot j % prefetch and a worker only claims j < consumed + prefetch, so at most
// `prefetch` batches exist at once and they come out in order. Batches are pure functions of their index, so
// the output does not depend on num_threads. Workers never touch Python objects (no GIL needed); a worker's
// exception is stored with its batch and rethrown by next() on the consumer thread. stop() (and the destructor)
// wakes and joins every worker.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "loader/batch.h"

namespace bmf {
namespace loader {

class Prefetcher {
 public:
  Prefetcher(std::shared_ptr<const Corpus> corpus, int num_threads, int prefetch);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Blocks (call without the GIL) until batch `position()` is ready; returns it and advances the position.
  // Rethrows the exception a worker hit while building it (the position does not advance then).
  std::unique_ptr<Batch> next();
  std::int64_t position() const;
  // How many next() calls found their batch not ready yet (the consumer had to wait for a worker).
  std::int64_t waits() const;
  // Drops prefetched batches and continues at `index` (resume).
  void seek(std::int64_t index);
  // Joins the workers; a later next() starts them again.
  void stop();

 private:
  struct Slot {
    std::int64_t index = -1;
    std::unique_ptr<Batch> batch;
    std::exception_ptr error;
  };
  void start_locked();
  void worker(std::uint64_t generation);

  std::shared_ptr<const Corpus> corpus_;
  int num_threads_;
  int prefetch_;
  mutable std::mutex mu_;
  std::condition_variable ready_cv_;  // consumer waits for its slot
  std::condition_variable space_cv_;  // workers wait for a free slot
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::int64_t consumed_ = 0;  // next batch index handed out
  std::int64_t claimed_ = 0;   // next batch index a worker will build
  std::int64_t waits_ = 0;
  int sleeping_workers_ = 0;  // workers blocked on space_cv_ (notify only when someone listens)
  bool stopping_ = false;
  std::uint64_t generation_ = 0;
};

}  // namespace loader
}  // namespace bmf
