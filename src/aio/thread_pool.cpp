// SPDX-License-Identifier: MIT
// The worker pool behind to_thread(): a fixed set of threads started on first use, a bounded
// queue, and workers that live until the process exits (they own nothing a destructor must free).
#include <sockserv/aio/to_thread.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace sockserv::aio::detail {
namespace {

constexpr std::size_t max_queued = 65536;

class ThreadPool {
 public:
  ThreadPool() {
    const unsigned n = std::max(4u, 2 * std::max(1u, std::thread::hardware_concurrency()));
    for (unsigned i = 0; i < n; ++i) std::thread([this] { work(); }).detach();
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= max_queued) {
        throw std::runtime_error("to_thread: more than 65536 calls are waiting for a worker");
      }
      queue_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  [[noreturn]] void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
};

}  // namespace

void submit_to_pool(std::function<void()> job) {
  // Intentionally leaked: detached workers may still use it while static destructors run.
  static auto* pool = new ThreadPool();
  pool->submit(std::move(job));
}

}  // namespace sockserv::aio::detail
