// SPDX-License-Identifier: MIT
#include "aio/uring_buffer_ring.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace sockserv::aio::detail {

UringBufferRing::UringBufferRing() noexcept
    : LeaseSource{&UringBufferRing::give_back}, owner_(std::this_thread::get_id()) {}

UringBufferRing::~UringBufferRing() {
  if (ring_ != nullptr) ::munmap(ring_, count * sizeof(io_uring_buf));
  if (memory_ != nullptr) ::munmap(memory_, count * size);
}

UringBufferRing* UringBufferRing::create(io_uring& ring, std::error_code& ec) noexcept {
  auto* self = new (std::nothrow) UringBufferRing;
  if (self == nullptr) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return nullptr;
  }
  // Anonymous mappings: page aligned (the ring must be), and the buffers' pages are only
  // backed once the kernel writes into them.
  void* ring_memory = ::mmap(nullptr, count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* buffers =
      ::mmap(nullptr, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring_memory != MAP_FAILED) self->ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
  if (buffers != MAP_FAILED) self->memory_ = static_cast<char*>(buffers);
  if (self->ring_ == nullptr || self->memory_ == nullptr) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    delete self;
    return nullptr;
  }
  ::io_uring_buf_ring_init(self->ring_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(self->ring_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (const int rc = ::io_uring_register_buf_ring(&ring, &reg, 0); rc < 0) {
    ec = {-rc, std::generic_category()};
    delete self;
    return nullptr;
  }
  const int mask = ::io_uring_buf_ring_mask(count);
  for (unsigned id = 0; id < count; ++id) {
    ::io_uring_buf_ring_add(self->ring_, self->buffer(static_cast<std::uint16_t>(id)), size,
                            static_cast<unsigned short>(id), mask, static_cast<int>(id));
  }
  ::io_uring_buf_ring_advance(self->ring_, count);
  self->available_ = count;
  return self;
}

void UringBufferRing::detach(io_uring& ring) noexcept {
  (void)::io_uring_unregister_buf_ring(&ring, group);
  detached_ = true;
  release();
}

void UringBufferRing::recycle(std::uint16_t id) noexcept {
  if (detached_) return;
  ::io_uring_buf_ring_add(ring_, buffer(id), size, id, ::io_uring_buf_ring_mask(count), 0);
  ::io_uring_buf_ring_advance(ring_, 1);
  ++available_;
}

BufferLease UringBufferRing::lend(std::uint16_t id, std::size_t offset, std::size_t n) noexcept {
  refs_.fetch_add(1, std::memory_order_relaxed);
  BufferLease lease(buffer(id), offset + n, this);
  lease.remove_prefix(offset);
  return lease;
}

void UringBufferRing::give_back(LeaseSource* self, char* block) noexcept {
  auto* ring = static_cast<UringBufferRing*>(self);
  const auto id =
      static_cast<std::uint16_t>(static_cast<std::size_t>(block - ring->memory_) / size);
  if (std::this_thread::get_id() == ring->owner_.load(std::memory_order_relaxed)) {
    ring->recycle(id);
  } else {
    const std::lock_guard lock(ring->foreign_mutex_);
    ring->foreign_.push_back(id);
    ring->has_foreign_.store(true, std::memory_order_release);
  }
  ring->release();
}

void UringBufferRing::drain_foreign() noexcept {
  if (!has_foreign_.load(std::memory_order_acquire)) return;
  const std::lock_guard lock(foreign_mutex_);
  for (const auto id : foreign_) recycle(id);
  foreign_.clear();
  has_foreign_.store(false, std::memory_order_relaxed);
}

void UringBufferRing::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace sockserv::aio::detail
