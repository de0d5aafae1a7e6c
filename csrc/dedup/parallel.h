// A small block-parallel loop for the dedup batch calls (run with the GIL released).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace bmf {
namespace dedup {

// Calls fn(begin, end, state) for consecutive blocks [begin, end) of `block` items covering [0, n), on up to
// `threads` threads (the calling thread is one of them). Blocks are handed out one at a time, so uneven item costs
// balance; each thread owns one default-constructed State (scratch buffers). The first exception thrown by fn
// stops the hand-out and is rethrown here once every thread has joined. If the OS refuses to start a thread, the
// running ones finish the work.
template <typename State, typename Fn>
void parallel_blocks(std::size_t n, std::size_t block, std::size_t threads, Fn&& fn) {
  const std::size_t num_blocks = (n + block - 1) / block;
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&]() {
    try {
      State state;
      for (;;) {
        const std::size_t k = next.fetch_add(1, std::memory_order_relaxed);
        if (k >= num_blocks) return;
        fn(k * block, std::min(n, (k + 1) * block), state);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next.store(num_blocks);
    }
  };
  threads = std::max<std::size_t>(1, std::min(threads, num_blocks));
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace dedup
}  // namespace bmf
