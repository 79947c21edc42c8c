// SPDX-License-Identifier: MIT
// The Unix socket file policy of every sockserv server, in one place:
//   before bind: a stale socket file (a connect to it is refused) is removed; a live one stays,
//                and bind fails with EADDRINUSE;
//   after bind:  the file's identity (device, inode) is remembered;
//   at close:    the file is removed if it is still the one this server created.
#pragma once

#include <sockserv/address.hpp>

#include <sys/types.h>

namespace sockserv::sys {

class OwnedSocketFile {
 public:
  // Call before bind(): removes a stale file at `address` (nothing for other addresses).
  static void prepare(const Address& address, int socket_type) noexcept;
  // Call after a successful bind().
  void remember(const Address& address) noexcept;
  // Removes the file if it is still ours. Idempotent.
  void remove() noexcept;

 private:
  Address address_;
  ino_t inode_ = 0;
  dev_t device_ = 0;
};

}  // namespace sockserv::sys
