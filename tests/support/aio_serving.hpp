// SPDX-License-Identifier: MIT
// Helpers shared by the async server tests: run serve_forever() on a thread for the length of a
// scope.
#pragma once

#include <sockserv/aio/server.hpp>

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

namespace sockserv::test {

// serve_forever() on a thread; stop() (or the destructor) shuts the server down and joins. A
// serve_forever() that throws fails the test.
class Serving {
 public:
  explicit Serving(aio::AsyncServerBase& server) : server_(server) {
    thread_ = std::thread([this] {
      try {
        server_.serve_forever();
      } catch (...) {
        error_ = std::current_exception();
      }
      returned_ = true;
    });
  }
  ~Serving() { stop(); }
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;

  bool returned() const { return returned_.load(); }
  void stop() {
    if (!thread_.joinable()) return;
    server_.shutdown();
    thread_.join();
    if (error_) ADD_FAILURE() << "serve_forever threw";
  }

 private:
  aio::AsyncServerBase& server_;
  std::thread thread_;
  std::exception_ptr error_;
  std::atomic<bool> returned_{false};
};

}  // namespace sockserv::test
