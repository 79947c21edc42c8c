// SPDX-License-Identifier: MIT
#include <sockserv/error.hpp>
#include <sockserv/selector.hpp>

#include "poller/poller.hpp"

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace sockserv {
namespace detail {

// The one place where the backend is chosen (tests force poll through the environment).
Selector::Backend resolve_backend(Selector::Backend requested) noexcept {
  if (requested != Selector::Backend::automatic) return requested;
  const char* forced = std::getenv("SOCKSERV_POLLER");
  if (forced != nullptr && std::string_view(forced) == "poll") return Selector::Backend::poll;
  return Selector::Backend::epoll;
}

}  // namespace detail

Selector::Selector(Backend backend) : backend_(detail::resolve_backend(backend)) {
  poller_ = backend_ == Backend::poll ? detail::make_poll_poller() : detail::make_epoll_poller();
}

Selector::Selector(Selector&&) noexcept = default;
Selector& Selector::operator=(Selector&&) noexcept = default;
Selector::~Selector() = default;

const SelectorKey& Selector::register_(int fd, unsigned events, std::any data) {
  if ((events & (EVENT_READ | EVENT_WRITE)) == 0 || (events & ~(EVENT_READ | EVENT_WRITE))) {
    throw std::invalid_argument(
        "Selector::register_: events must be EVENT_READ and/or EVENT_WRITE");
  }
  if (keys_.contains(fd)) {
    throw std::invalid_argument("Selector::register_: fd " + std::to_string(fd) +
                                " is already registered");
  }
  if (const auto ec = poller_->add(fd, events)) {
    throw_error(ec, "Selector::register_", "fd " + std::to_string(fd));
  }
  auto& key = keys_[fd];
  key = SelectorKey{fd, events, std::move(data)};
  return key;
}

const SelectorKey& Selector::modify(int fd, unsigned events, std::any data) {
  if ((events & (EVENT_READ | EVENT_WRITE)) == 0 || (events & ~(EVENT_READ | EVENT_WRITE))) {
    throw std::invalid_argument("Selector::modify: events must be EVENT_READ and/or EVENT_WRITE");
  }
  auto& key = keys_.at(fd);
  if (events != key.events) {
    if (const auto ec = poller_->modify(fd, events)) {
      throw_error(ec, "Selector::modify", "fd " + std::to_string(fd));
    }
    key.events = events;
  }
  key.data = std::move(data);
  return key;
}

SelectorKey Selector::unregister(int fd) {
  const auto it = keys_.find(fd);
  if (it == keys_.end()) throw std::out_of_range("Selector::unregister: fd not registered");
  SelectorKey key = std::move(it->second);
  keys_.erase(it);
  // The descriptor may already be closed (epoll drops closed descriptors by itself); either way it
  // is no longer ours to watch, so a failure here is not reported.
  (void)poller_->remove(fd);
  return key;
}

std::vector<std::pair<const SelectorKey*, unsigned>> Selector::select(Timeout timeout) {
  int timeout_ms = -1;
  if (timeout) {
    using namespace std::chrono;
    timeout_ms =
        static_cast<int>(std::min<long long>(ceil<milliseconds>(*timeout).count(), 1 << 30));
    if (timeout_ms < 0) timeout_ms = 0;
  }
  std::vector<detail::ReadyFd> ready;
  if (const auto ec = poller_->wait(timeout_ms, ready)) throw_error(ec, "Selector::select");
  std::vector<std::pair<const SelectorKey*, unsigned>> out;
  out.reserve(ready.size());
  for (const auto& r : ready) {
    const auto it = keys_.find(r.fd);
    if (it == keys_.end()) continue;
    if (const unsigned events = r.events & it->second.events) out.emplace_back(&it->second, events);
  }
  return out;
}

const SelectorKey* Selector::get_key(int fd) const noexcept {
  const auto it = keys_.find(fd);
  return it == keys_.end() ? nullptr : &it->second;
}

void Selector::close() noexcept {
  poller_.reset();
  keys_.clear();
}

}  // namespace sockserv
