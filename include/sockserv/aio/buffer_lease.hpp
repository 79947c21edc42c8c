// SPDX-License-Identifier: MIT
/// @file
/// BufferLease: received bytes in a buffer lent to the handler, given back when the lease is
/// dropped. The zero-copy receive of the event-loop servers:
///
/// ```
///   Task<void> echo(Connection conn) {
///     for (;;) {
///       BufferLease data = co_await conn.recv_lease();
///       if (data.empty()) co_return;              // the peer closed
///       co_await conn.sendall(std::move(data));   // sent from the same buffer, then given back
///     }
///   }
/// ```
///
/// The bytes are received straight into the buffer (no copy), and the buffer comes from a pool of
/// the thread's (no allocation per message once the pool is warm). A connection owns a buffer
/// only while its handler holds a lease: an idle connection owns none. Under the io_uring backend
/// the buffer may be one the kernel filled from the loop's buffer ring; the lease looks the same.
///
/// Ownership: move-only; the destructor (or reset()) gives the buffer back. A lease may be moved
/// to and dropped on another thread (the buffer then joins that thread's pool). Keep leases short
/// lived: each holds up to block_size bytes of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sockserv::aio {

namespace detail {
// Where a lease's buffer goes back to (the thread's block pool, a loop's buffer ring).
struct LeaseSource {
  void (*give_back)(LeaseSource* self, char* block) noexcept;
};
}  // namespace detail

/// Received bytes in a pooled buffer lent to the handler (Connection::recv_lease()); the
/// buffer goes back to its pool when the lease is reset or destroyed. Move-only.
/// @threadsafety One thread at a time; a lease may be moved to and dropped on another thread.
class BufferLease {
 public:
  /// The largest receive one lease holds, and the size of each pooled buffer: 64 KiB, so a
  /// stream moves in as few receives as the kernel allows (16 KiB blocks cost a bulk echo 1.4x
  /// the CPU). Under io_uring a lease may also be one of the ring's 16 KiB buffers.
  static constexpr std::size_t block_size = 65536;

  /// An empty lease: no buffer.
  BufferLease() noexcept = default;
  /// Takes over `other`'s buffer; `other` is empty afterwards.
  BufferLease(BufferLease&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)),
        offset_(other.offset_),
        size_(std::exchange(other.size_, 0)),
        source_(other.source_) {}
  /// Gives this lease's buffer back, then takes over `other`'s; `other` is empty afterwards.
  BufferLease& operator=(BufferLease&& other) noexcept {
    if (this != &other) {
      reset();
      block_ = std::exchange(other.block_, nullptr);
      offset_ = other.offset_;
      size_ = std::exchange(other.size_, 0);
      source_ = other.source_;
    }
    return *this;
  }
  BufferLease(const BufferLease&) = delete;
  BufferLease& operator=(const BufferLease&) = delete;
  /// Gives the buffer back.
  ~BufferLease() { reset(); }

  /// The bytes not yet consumed, valid while the lease holds its buffer.
  /// @{
  std::string_view view() const noexcept { return {block_ + offset_, size_}; }
  std::span<const char> data() const noexcept { return {block_ + offset_, size_}; }
  /// @}
  /// The number of bytes not yet consumed.
  std::size_t size() const noexcept { return size_; }
  /// True when no bytes are left (or the lease holds no buffer: the peer closed).
  bool empty() const noexcept { return size_ == 0; }
  /// A copy of the bytes not yet consumed, for convenience.
  std::string str() const { return std::string(view()); }

  /// Drops the first `n` bytes (a parser consumed them; at most size()); the buffer stays
  /// leased.
  void remove_prefix(std::size_t n) noexcept {
    n = n < size_ ? n : size_;
    offset_ += static_cast<std::uint32_t>(n);
    size_ -= static_cast<std::uint32_t>(n);
  }
  /// Gives the buffer back now; the lease is empty afterwards.
  void reset() noexcept {
    if (block_ != nullptr) source_->give_back(source_, std::exchange(block_, nullptr));
    size_ = 0;
  }

  /// For the library's receive operations: a lease of `size` bytes at the start of `block`,
  /// which goes back to `source`.
  BufferLease(char* block, std::size_t size, detail::LeaseSource* source) noexcept
      : block_(block), size_(static_cast<std::uint32_t>(size)), source_(source) {}

 private:
  char* block_ = nullptr;
  std::uint32_t offset_ = 0;
  std::uint32_t size_ = 0;
  detail::LeaseSource* source_ = nullptr;
};

}  // namespace sockserv::aio
