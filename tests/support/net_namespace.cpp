// SPDX-License-Identifier: MIT
#include "support/net_namespace.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace sockserv::test {

using namespace std::chrono_literals;

NetNamespace::NetNamespace(std::string prefix) : prefix_(std::move(prefix)) {
  remove_stale();
  static std::atomic<int> counter{0};
  name_ = prefix_ + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  created_ = run_command({"ip", "netns", "add", name_}, {}, 10s).exit_code == 0;
  if (created_) created_ = exec({"ip", "link", "set", "lo", "up"});
}

NetNamespace::~NetNamespace() {
  if (!name_.empty()) run_command({"ip", "netns", "del", name_}, {}, 10s);
}

bool NetNamespace::exec(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  return run_command(argv, {}, 10s).exit_code == 0;
}

void NetNamespace::inside(const std::function<void()>& body) {
  const int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << "open /run/netns/" << name_;
  bool entered = false;
  std::thread([&] {
    entered = ::setns(fd, CLONE_NEWNET) == 0;
    if (entered) body();
  }).join();
  ::close(fd);
  ASSERT_TRUE(entered) << "setns failed";
}

void NetNamespace::remove_stale() const {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix_, 0) != 0) continue;
    const int pid = std::atoi(name.c_str() + prefix_.size());
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
      run_command({"ip", "netns", "del", name}, {}, 10s);
    }
  }
}

}  // namespace sockserv::test
