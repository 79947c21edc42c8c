// SPDX-License-Identifier: MIT
/// @file
/// Selector: readiness multiplexing after Python's `selectors` module (the HOWTO's "Non-blocking
/// Sockets" section: "select ... is the fastest").
///
/// ```
///   Selector sel;
///   sel.register_(listener.fileno(), EVENT_READ, &on_accept);
///   for (;;)
///     for (auto [key, events] : sel.select())
///       (*std::any_cast<Callback*>(key->data))(key->fd, events);
/// ```
///
/// `register` is a C++ keyword, so the method is register_ (PEP 8's own rule for a name that is a
/// keyword: add a trailing underscore). Backend: epoll on Linux; poll(2) when the environment sets
/// SOCKSERV_POLLER=poll (CI runs the suite once that way), or when asked for explicitly.
///
/// Ownership: does not own the registered descriptors; unregister one before closing it.
/// Thread safety: not thread-safe; one thread registers and selects.
#pragma once

#include <sockserv/socket.hpp>

#include <any>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sockserv {

/// The events a descriptor is watched for, combined with `|`: readable, writable.
/// @python selectors.EVENT_READ, selectors.EVENT_WRITE
/// @{
inline constexpr unsigned EVENT_READ = 1;
inline constexpr unsigned EVENT_WRITE = 2;
/// @}

/// A registered descriptor: what it is watched for and the caller's data.
/// @python selectors.SelectorKey (without fileobj: a descriptor is the key)
struct SelectorKey {
  int fd = -1;          ///< the registered descriptor
  unsigned events = 0;  ///< EVENT_READ and/or EVENT_WRITE
  std::any data;        ///< whatever the caller attached at register_() or modify()
};

namespace detail {
class Poller;
}

/// Watches descriptors for readiness: register_() them, then select() returns those ready.
/// Move-only; the descriptors are not owned.
/// @threadsafety Not thread-safe; one thread registers and selects.
/// @python selectors.DefaultSelector
class Selector {
 public:
  /// The kernel interface: `automatic` is epoll unless SOCKSERV_POLLER=poll is set.
  enum class Backend { automatic, epoll, poll };

  /// A selector on `backend`.
  /// @throws SocketError when the backend cannot be created (epoll_create1 fails).
  explicit Selector(Backend backend = Backend::automatic);
  /// Moves the registrations and the backend; the moved-from selector is empty.
  /// @{
  Selector(Selector&&) noexcept;
  Selector& operator=(Selector&&) noexcept;
  /// @}
  /// Releases the backend. Out of line: Poller is private (no `<sys/epoll.h>` in public headers).
  ~Selector();

  /// Watches `fd` for `events` (EVENT_READ | EVENT_WRITE) and returns its key.
  /// @throws std::invalid_argument when the descriptor is already registered or `events` is
  ///         empty or unknown.
  /// @throws SocketError when the kernel refuses (a closed descriptor, a regular file).
  /// @python selectors.BaseSelector.register
  const SelectorKey& register_(int fd, unsigned events, std::any data = {});
  /// Changes the events and data of a registered descriptor.
  /// @throws std::out_of_range when `fd` is not registered.
  /// @throws std::invalid_argument when `events` is empty or unknown.
  /// @throws SocketError when the kernel refuses.
  /// @python selectors.BaseSelector.modify
  const SelectorKey& modify(int fd, unsigned events, std::any data = {});
  /// Stops watching `fd` and returns its key (a descriptor already closed is fine).
  /// @throws std::out_of_range when `fd` is not registered.
  /// @python selectors.BaseSelector.unregister
  SelectorKey unregister(int fd);

  /// Waits until a descriptor is ready or `timeout` passes (nullopt: no limit; zero: just look).
  /// Returns each ready key with the ready events (an error or hang-up counts as ready for the
  /// registered events, so the next recv/send reports it). EINTR returns an empty list. The key
  /// pointers are valid until that descriptor is unregistered.
  /// @throws SocketError when the wait fails.
  /// @python selectors.BaseSelector.select
  std::vector<std::pair<const SelectorKey*, unsigned>> select(Timeout timeout = std::nullopt);

  /// The key of `fd`, or nullptr when it is not registered.
  /// @python selectors.BaseSelector.get_key (which raises KeyError instead)
  const SelectorKey* get_key(int fd) const noexcept;
  /// Every registration, by descriptor.
  /// @python selectors.BaseSelector.get_map
  const std::unordered_map<int, SelectorKey>& get_map() const noexcept { return keys_; }
  /// The backend in use (`automatic` resolved to epoll or poll).
  Backend backend() const noexcept { return backend_; }
  /// Releases the backend and forgets every registration; the selector is unusable afterwards.
  /// @python selectors.BaseSelector.close
  void close() noexcept;

 private:
  std::unique_ptr<detail::Poller> poller_;
  std::unordered_map<int, SelectorKey> keys_;
  Backend backend_;
};

}  // namespace sockserv
