// SPDX-License-Identifier: MIT
// StreamLayer: what a Socket's bytes pass through when it is not plain (TLS). Not part of the
// API: implemented by the TLS layer, used by Socket and the event loop's Connection
// (docs/adr/0003-transport-model.md).
//
// Every call is one *attempt*, never a wait: it moves bytes, or says which readiness of the
// descriptor it needs before it can go on (a TLS read may need to write, and a write to read).
// The caller does the waiting, under its own timeout rules: Socket in poll(), the event loop in
// epoll/io_uring. So there is one implementation of timeouts and deadlines for every transport.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace sockserv::detail {

class StreamLayer {
 public:
  StreamLayer() = default;
  StreamLayer(const StreamLayer&) = delete;
  StreamLayer& operator=(const StreamLayer&) = delete;
  virtual ~StreamLayer() = default;

  // One read attempt: the byte count (0: the peer ended the stream cleanly), or -1 with either
  // `want` = POLLIN/POLLOUT (try again when the descriptor is ready) or `ec` set.
  virtual ssize_t read_some(std::span<char> into, short& want, std::error_code& ec) noexcept = 0;
  // One write attempt: the byte count taken (> 0), or -1 as read_some.
  virtual ssize_t write_some(std::string_view data, short& want, std::error_code& ec) noexcept = 0;
  // One attempt at ending the layer (TLS: send close_notify): 1 done, or -1 as read_some.
  virtual int close_some(short& want, std::error_code& ec) noexcept = 0;
  // Bytes the layer holds that a read returns without touching the descriptor. While this is
  // non-zero, waiting for the descriptor to be readable would wait for nothing.
  virtual std::size_t pending() const noexcept = 0;
  // Why the last attempt failed, in words (OpenSSL's reason), for the exception's message.
  virtual std::string error_detail() const = 0;
};

}  // namespace sockserv::detail
