// SPDX-License-Identifier: MIT
/// @file
/// Descriptor passing over Unix sockets (SCM_RIGHTS), with Python's names and signatures:
///
/// ```
///   Python                                          sockserv
///   socket.send_fds(sock, [b"hi"], [fd])            send_fds(sock, {"hi"}, {fd});
///   data, fds, flags, addr = socket.recv_fds(s, 1024, 4)
///                                                   auto [data, fds, flags, addr] = recv_fds(s,
///                                                   1024, 4);
/// ```
///
/// The received descriptors are owned (FileDescriptor closes them) and close-on-exec
/// (MSG_CMSG_CLOEXEC), so none leaks into a program the receiver runs. When more descriptors come
/// than `maxfds` (the kernel cuts the control data: MSG_CTRUNC), recv_fds() closes those that did
/// arrive and throws: a truncated message never hands on a partial set, and never leaks one.
///
/// Both follow the socket's mode (blocking, timeout, non-blocking) as its other calls do, retry
/// EINTR, and never raise SIGPIPE. A socket with a stream layer (TLS) cannot carry descriptors:
/// std::invalid_argument. Thread safety: as the Socket's own calls.
///
/// Δ Python: Python returns MSG_CTRUNC in the flags and the descriptors that fit; sockserv throws
/// errc::control_truncated and closes them.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/socket.hpp>

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sockserv {

/// One descriptor of any kind (a file, a pipe, a socket), owned: the destructor closes it.
/// Move-only. Socket::from_fd(fd.release()) turns a received socket into a Socket.
/// @threadsafety Not thread-safe; distinct objects are independent.
class FileDescriptor {
 public:
  /// An empty holder (get() == -1).
  FileDescriptor() noexcept = default;
  /// Takes ownership of `fd`.
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  /// Takes over the other's descriptor (closing this one's first, on assignment); the other is
  /// left empty.
  /// @{
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  /// @}
  /// Not copyable: one owner per descriptor.
  /// @{
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  /// @}
  /// Closes the descriptor, if any.
  ~FileDescriptor() { reset(); }

  /// The descriptor, still owned; -1 when empty.
  int get() const noexcept { return fd_; }
  /// True when a descriptor is held.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives up ownership: returns the descriptor and leaves this one empty.
  int release() noexcept;
  /// Closes the descriptor (if any). Never throws.
  void reset() noexcept;

 private:
  int fd_ = -1;
};

/// What recv_fds() returns, in Python's order: (data, fds, msg_flags, address).
/// @python the tuple socket.recv_fds returns
struct RecvFdsResult {
  std::string data;                 ///< "" when the peer has closed (a stream)
  std::vector<FileDescriptor> fds;  ///< in the order they were sent
  int msg_flags = 0;                ///< recvmsg's flags (MSG_TRUNC: a datagram was cut)
  Address address;                  ///< the sender (datagram sockets); empty on a stream
};

/// One sendmsg(2) of `buffers` (gathered) with `fds` attached (SCM_RIGHTS), to `address` when
/// given (unconnected datagram sockets). Returns the bytes sent, which may be fewer than the
/// buffers hold (a stream): the descriptors go with the first byte, so send the rest with
/// sendall(). At least one byte must be sent with descriptors on a stream socket (the kernel's
/// rule). The second form takes braced lists: `send_fds(sock, {"hi"}, {fd})`.
/// @throws std::invalid_argument for descriptors on a socket that is not AF_UNIX, or a socket
///         with a stream layer (TLS).
/// @throws TimeoutError, ConnectionError or SocketError as Socket::send does.
/// @python socket.send_fds
/// @{
std::size_t send_fds(Socket& sock, std::span<const std::string_view> buffers,
                     std::span<const int> fds, int flags = 0,
                     const std::optional<Address>& address = std::nullopt);
inline std::size_t send_fds(Socket& sock, std::initializer_list<std::string_view> buffers,
                            std::initializer_list<int> fds, int flags = 0,
                            const std::optional<Address>& address = std::nullopt) {
  return send_fds(sock, std::span(buffers.begin(), buffers.size()),
                  std::span(fds.begin(), fds.size()), flags, address);
}
/// @}

/// One recvmsg(2) of at most `bufsize` bytes and at most `maxfds` descriptors, which arrive
/// owned and close-on-exec.
/// @throws SocketError with errc::control_truncated when more descriptors came than `maxfds`
///         (those that arrived are closed).
/// @throws std::invalid_argument for a socket with a stream layer (TLS).
/// @throws TimeoutError, ConnectionError or SocketError as Socket::recv does.
/// @python socket.recv_fds
RecvFdsResult recv_fds(Socket& sock, std::size_t bufsize, std::size_t maxfds, int flags = 0);

}  // namespace sockserv
