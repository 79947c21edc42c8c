// SPDX-License-Identifier: MIT
// The thread's pool of receive buffers (BufferLease::block_size bytes each) behind
// Connection::recv_lease(). A free list sized to the recent peak of blocks lent at once: a warm
// pool serves a receive without allocating, and what a burst took goes back to the heap after.
#pragma once

#include <sockserv/aio/buffer_lease.hpp>

namespace sockserv::aio::detail {

// A block to receive into (allocated when the pool is empty).
char* take_block();
// Returns a block to the calling thread's pool (freed when the pool is full or being destroyed).
void give_back_block(char* block) noexcept;
// The LeaseSource that gives blocks back with give_back_block().
LeaseSource* block_pool_source() noexcept;
// Blocks the calling thread's pool holds now (for tests).
std::size_t pooled_blocks() noexcept;

}  // namespace sockserv::aio::detail
