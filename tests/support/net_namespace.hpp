// SPDX-License-Identifier: MIT
// A network namespace a test makes for itself (`ip netns add PREFIX-PID-N`, deleted by the
// destructor; one left behind by a killed run is removed by the next run with the same prefix),
// so addresses and links can be changed without touching the machine's own network. Needs root:
// created() is false otherwise, and the test should skip.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace sockserv::test {

class NetNamespace {
 public:
  explicit NetNamespace(std::string prefix);
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  // True when the namespace exists and its loopback is up.
  bool created() const noexcept { return created_; }
  // Runs a command inside the namespace; true when it exits with 0.
  bool exec(std::vector<std::string> argv);
  // Runs `body` on a thread that has entered the namespace: the sockets it creates, and the
  // processes it starts, live there. A gtest failure when the namespace cannot be entered.
  void inside(const std::function<void()>& body);

 private:
  // Namespaces with our prefix whose run (its pid is in the name) is gone.
  void remove_stale() const;

  std::string prefix_;
  std::string name_;
  bool created_ = false;
};

}  // namespace sockserv::test
