// SPDX-License-Identifier: MIT
#include "sys/unix_file.hpp"

#include "sys/fd.hpp"

#include <sys/stat.h>
#include <unistd.h>

namespace sockserv::sys {

void OwnedSocketFile::prepare(const Address& address, int socket_type) noexcept {
  if (address.is_unix() && !address.is_abstract()) {
    remove_stale_unix_socket(address.path().c_str(), socket_type);
  }
}

void OwnedSocketFile::remember(const Address& address) noexcept {
  if (!address.is_unix() || address.is_abstract()) return;
  struct stat st {};
  if (::stat(address.path().c_str(), &st) != 0) return;
  address_ = address;
  inode_ = st.st_ino;
  device_ = st.st_dev;
}

void OwnedSocketFile::remove() noexcept {
  if (inode_ == 0) return;
  const auto path = address_.path();
  struct stat st {};
  // Only our own file: another server may have replaced it since.
  if (::stat(path.c_str(), &st) == 0 && st.st_ino == inode_ && st.st_dev == device_) {
    ::unlink(path.c_str());
  }
  inode_ = 0;
}

}  // namespace sockserv::sys
