// The block pipeline shared by MinHashIndex::add (minhash_index.cpp) and cluster_union_find
// (minhash_union_find.cpp): signatures on worker threads, consumed in document order on the caller.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "dedup/minhash.h"

namespace bmf {
namespace dedup {
namespace detail {

// reserve() to at least `size` elements, growing geometrically so that many small batches do not
// reallocate (and copy) on every call.
template <typename T>
void reserve_geometric(std::vector<T>& v, std::size_t size) {
  if (v.capacity() < size) v.reserve(std::max(size, v.capacity() + v.capacity() / 2));
}

// Joins worker threads (after asking them to stop) on every way out of run_pipelined.
struct JoinGuard {
  std::vector<std::thread>& pool;
  std::atomic<bool>& stop;
  ~JoinGuard() {
    stop.store(true);
    for (auto& th : pool) {
      if (th.joinable()) th.join();
    }
  }
};

// The signature / clustering pipeline shared by MinHashIndex::add and cluster_union_find.
//
// `compute(i, scratch)` (signature and band keys of document i: independent of every other document, so
// deterministic) runs block by block on `threads` threads, the calling thread included; meanwhile the
// calling thread hands the finished blocks, strictly in document order, to `consume(begin, end, ready_end)`
// (documents [begin, end); [end, ready_end) are computed as well, for prefetching), helping with the
// signatures whenever the next block is not ready yet. So the sequential part sees documents in index
// order whatever the thread count. `setup()` runs on the calling thread once the workers have started.
// An exception in `compute` stops the pipeline and is rethrown after every worker has stopped (the
// blocks consumed so far stay consumed); one from `setup` / `consume` propagates the same way.
template <typename Compute, typename Setup, typename Consume>
void run_pipelined(std::size_t n, std::size_t threads, Compute&& compute, Setup&& setup, Consume&& consume) {
  constexpr std::size_t kBlock = 64;
  const std::size_t num_blocks = (n + kBlock - 1) / kBlock;
  std::unique_ptr<std::atomic<std::uint8_t>[]> done(new std::atomic<std::uint8_t>[num_blocks]);
  for (std::size_t k = 0; k < num_blocks; ++k) done[k].store(0, std::memory_order_relaxed);
  std::atomic<std::size_t> next_block{0};
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  std::mutex failure_mutex;

  auto compute_next = [&](SignatureScratch& scratch) -> bool {
    const std::size_t k = next_block.fetch_add(1, std::memory_order_relaxed);
    if (k >= num_blocks) return false;
    const std::size_t end = std::min(n, (k + 1) * kBlock);
    for (std::size_t i = k * kBlock; i < end; ++i) compute(i, scratch);
    done[k].store(1, std::memory_order_release);
    return true;
  };
  auto worker = [&]() {
    try {
      SignatureScratch scratch;
      while (!stop.load(std::memory_order_relaxed) && compute_next(scratch)) {}
    } catch (...) {
      std::lock_guard<std::mutex> g(failure_mutex);
      if (!failure) failure = std::current_exception();
      stop.store(true);
    }
  };

  std::vector<std::thread> pool;
  threads = std::max<std::size_t>(1, std::min(threads, num_blocks));
  pool.reserve(threads - 1);
  JoinGuard guard{pool, stop};
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // could not start more threads: the running ones finish the work
    }
  }

  SignatureScratch scratch;
  setup();
  for (std::size_t k = 0; k < num_blocks; ++k) {
    while (!done[k].load(std::memory_order_acquire)) {
      if (stop.load()) break;
      if (!compute_next(scratch)) std::this_thread::yield();
    }
    if (!done[k].load(std::memory_order_acquire)) break;  // a worker failed
    const std::size_t end = std::min(n, (k + 1) * kBlock);
    const std::size_t ready_end =
        (k + 1 < num_blocks && done[k + 1].load(std::memory_order_acquire)) ? std::min(n, end + kBlock) : end;
    consume(k * kBlock, end, ready_end);
  }
  stop.store(true);
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace dedup
}  // namespace bmf
