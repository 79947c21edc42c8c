// SPDX-License-Identifier: MIT
// BufferLease: received bytes in a buffer lent to the handler, given back when the lease is
// dropped. The zero-copy receive of the event-loop servers:
//
//   Task<void> echo(Connection conn) {
//     for (;;) {
//       BufferLease data = co_await conn.recv_lease();
//       if (data.empty()) co_return;              // the peer closed
//       co_await conn.sendall(std::move(data));   // sent from the same buffer, then given back
//     }
//   }
//
// The bytes are received straight into the buffer (no copy), and the buffer comes from a pool of
// the thread's (no allocation per message once the pool is warm). A connection owns a buffer
// only while its handler holds a lease: an idle connection owns none. Under the io_uring backend
// the buffer may be one the kernel filled from the loop's buffer ring; the lease looks the same.
//
// Ownership: move-only; the destructor (or reset()) gives the buffer back. A lease may be moved
// to and dropped on another thread (the buffer then joins that thread's pool). Keep leases short
// lived: each holds up to block_size bytes of memory.
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

class BufferLease {
 public:
  // The largest receive one lease holds, and the size of each pooled buffer: 64 KiB, so a
  // stream moves in as few receives as the kernel allows (16 KiB blocks cost a bulk echo 1.4x
  // the CPU). Under io_uring a lease may also be one of the ring's 16 KiB buffers.
  static constexpr std::size_t block_size = 65536;

  BufferLease() noexcept = default;
  BufferLease(BufferLease&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)),
        offset_(other.offset_),
        size_(std::exchange(other.size_, 0)),
        source_(other.source_) {}
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
  ~BufferLease() { reset(); }

  // The bytes not yet consumed.
  std::string_view view() const noexcept { return {block_ + offset_, size_}; }
  std::span<const char> data() const noexcept { return {block_ + offset_, size_}; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string str() const { return std::string(view()); }  // a copy, for convenience

  // Drops the first `n` bytes (a parser consumed them); the buffer stays leased.
  void remove_prefix(std::size_t n) noexcept {
    n = n < size_ ? n : size_;
    offset_ += static_cast<std::uint32_t>(n);
    size_ -= static_cast<std::uint32_t>(n);
  }
  // Gives the buffer back now; the lease is empty afterwards.
  void reset() noexcept {
    if (block_ != nullptr) source_->give_back(source_, std::exchange(block_, nullptr));
    size_ = 0;
  }

  // For the library's receive operations: a lease of `size` bytes at the start of `block`.
  BufferLease(char* block, std::size_t size, detail::LeaseSource* source) noexcept
      : block_(block), size_(static_cast<std::uint32_t>(size)), source_(source) {}

 private:
  char* block_ = nullptr;
  std::uint32_t offset_ = 0;
  std::uint32_t size_ = 0;
  detail::LeaseSource* source_ = nullptr;
};

}  // namespace sockserv::aio
