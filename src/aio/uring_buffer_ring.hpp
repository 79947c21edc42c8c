// SPDX-License-Identifier: MIT
// The io_uring backend's provided-buffer ring: one per loop, shared by every connection the
// loop receives for (multishot recv with IOSQE_BUFFER_SELECT). The kernel picks a free buffer
// for each chunk it receives; the loop hands it to a handler as a BufferLease (zero copy), or
// copies out of it, and gives it back by writing its id into the ring. An idle connection owns
// no buffer: memory follows the data in flight, not the connections held.
//
// Lifetime: the ring outlives its reactor while leases are out (a handler may keep one past the
// loop): references are counted, the reactor holding one. Buffers given back on another thread
// wait in a locked list the loop drains (the ring's tail is the loop thread's to write).
#pragma once

#include <sockserv/aio/buffer_lease.hpp>

#include <liburing.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace sockserv::aio::detail {

class UringBufferRing : public LeaseSource {
 public:
  static constexpr std::uint16_t group = 0;
  static constexpr unsigned count = 256;      // a power of two, at most 32768
  static constexpr std::size_t size = 16384;  // each buffer's bytes: 4 MiB per loop in all

  // Registers the ring with `ring`; nullptr with `ec` when the kernel has no buffer rings
  // (before Linux 5.19) or memory is short.
  static UringBufferRing* create(io_uring& ring, std::error_code& ec) noexcept;
  // The reactor's reference: unregisters the ring (the reactor is going away); the memory goes
  // when the last lease is given back.
  void detach(io_uring& ring) noexcept;

  char* buffer(std::uint16_t id) noexcept { return memory_ + std::size_t{id} * size; }
  // Back into the ring (loop thread), for the kernel to fill again.
  void recycle(std::uint16_t id) noexcept;
  // Lends buffer `id` (bytes [offset, offset + n)) to a handler.
  BufferLease lend(std::uint16_t id, std::size_t offset, std::size_t n) noexcept;
  // Recycles what other threads gave back (loop thread, once per iteration).
  void drain_foreign() noexcept;
  // Buffers the kernel may fill now (the loop's count: taken by completions, back by recycle).
  unsigned available() const noexcept { return available_; }
  void taken() noexcept { --available_; }
  // The loop's thread: buffers given back on it go straight into the ring. Set when the loop
  // first waits (a loop may be made on one thread and run on another).
  void adopt_thread() noexcept { owner_.store(std::this_thread::get_id()); }

 private:
  UringBufferRing() noexcept;
  ~UringBufferRing();
  static void give_back(LeaseSource* self, char* block) noexcept;  // its id from its address
  void release() noexcept;

  io_uring_buf_ring* ring_ = nullptr;  // count entries, page aligned
  char* memory_ = nullptr;             // count * size bytes
  unsigned available_ = 0;
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::thread::id> owner_;
  std::mutex foreign_mutex_;
  std::vector<std::uint16_t> foreign_;
  std::atomic<bool> has_foreign_{false};
  bool detached_ = false;
};

}  // namespace sockserv::aio::detail
