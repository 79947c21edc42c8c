// SPDX-License-Identifier: MIT
// Selector: readiness multiplexing after Python's `selectors` module (the HOWTO's "Non-blocking
// Sockets" section: "select ... is the fastest").
//
//   Selector sel;
//   sel.register_(listener.fileno(), EVENT_READ, &on_accept);
//   for (;;)
//     for (auto [key, events] : sel.select())
//       (*std::any_cast<Callback*>(key->data))(key->fd, events);
//
// `register` is a C++ keyword, so the method is register_ (PEP 8's own rule for a name that is a
// keyword: add a trailing underscore). Backend: epoll on Linux; poll(2) when the environment sets
// SOCKSERV_POLLER=poll (CI runs the suite once that way), or when asked for explicitly.
//
// Ownership: does not own the registered descriptors; unregister one before closing it.
// Thread safety: not thread-safe; one thread registers and selects.
#pragma once

#include <sockserv/socket.hpp>

#include <any>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sockserv {

inline constexpr unsigned EVENT_READ = 1;
inline constexpr unsigned EVENT_WRITE = 2;

struct SelectorKey {
  int fd = -1;
  unsigned events = 0;
  std::any data;
};

namespace detail {
class Poller;
}

class Selector {
 public:
  enum class Backend { automatic, epoll, poll };

  // Throws SocketError when the backend cannot be created.
  explicit Selector(Backend backend = Backend::automatic);
  Selector(Selector&&) noexcept;
  Selector& operator=(Selector&&) noexcept;
  ~Selector();  // out of line: Poller is private (no <sys/epoll.h> in public headers)

  // Watches `fd` for `events` (EVENT_READ | EVENT_WRITE). Throws std::invalid_argument when the
  // descriptor is already registered or `events` is empty; SocketError when the kernel refuses.
  const SelectorKey& register_(int fd, unsigned events, std::any data = {});
  // Changes the events and data of a registered descriptor. Throws std::out_of_range when `fd`
  // is not registered.
  const SelectorKey& modify(int fd, unsigned events, std::any data = {});
  // Stops watching `fd` and returns its key. Throws std::out_of_range when not registered.
  SelectorKey unregister(int fd);

  // Waits until a descriptor is ready or `timeout` passes (nullopt: no limit; zero: just look).
  // Returns each ready key with the ready events (an error or hang-up counts as ready for the
  // registered events, so the next recv/send reports it). EINTR returns an empty list.
  std::vector<std::pair<const SelectorKey*, unsigned>> select(Timeout timeout = std::nullopt);

  const SelectorKey* get_key(int fd) const noexcept;
  const std::unordered_map<int, SelectorKey>& get_map() const noexcept { return keys_; }
  Backend backend() const noexcept { return backend_; }
  // Releases the backend; the selector is unusable afterwards.
  void close() noexcept;

 private:
  std::unique_ptr<detail::Poller> poller_;
  std::unordered_map<int, SelectorKey> keys_;
  Backend backend_;
};

}  // namespace sockserv
