// SPDX-License-Identifier: MIT
#include "block_pool.hpp"

#include <algorithm>
#include <new>
#include <vector>

namespace sockserv::aio::detail {
namespace {

// How many free blocks a thread keeps: as many as it recently had lent out at once (between a
// loop's dispatch, which receives into a block for each ready connection, and the handlers
// that use and drop them, every connection served in one iteration holds one), at least 16.
// The high-water mark is taken over windows of 1,024 loans, so a burst's blocks go back to the
// heap once the burst is over, and a steady load allocates nothing.
constexpr std::size_t min_pooled = 16;
constexpr std::size_t window = 1024;

// Trivially destructible, so it can still be read while the thread's other thread_locals are
// destroyed: a lease dropped after the pool is gone frees its block instead.
thread_local bool pool_gone = false;

struct Pool {
  std::vector<char*> free;
  std::size_t lent = 0;         // blocks out now
  std::size_t window_peak = 0;  // the most out at once in this window
  std::size_t cap = min_pooled;
  std::size_t loans = 0;
  Pool() { free.reserve(min_pooled); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool() {
    pool_gone = true;
    for (char* block : free) delete[] block;
  }
};

Pool* pool() {
  if (pool_gone) return nullptr;
  thread_local Pool instance;
  return &instance;
}

void give_back(LeaseSource* /*self*/, char* block) noexcept { give_back_block(block); }

LeaseSource source{&give_back};

}  // namespace

char* take_block() {
  auto* p = pool();
  if (p == nullptr) return new char[BufferLease::block_size];
  p->window_peak = std::max(p->window_peak, ++p->lent);
  if (++p->loans == window) {  // a new window: keep what the last one needed at its peak
    p->cap = std::max(min_pooled, p->window_peak);
    p->window_peak = p->lent;
    p->loans = 0;
    while (p->free.size() > p->cap) {
      delete[] p->free.back();
      p->free.pop_back();
    }
  }
  if (!p->free.empty()) {
    char* block = p->free.back();
    p->free.pop_back();
    return block;
  }
  return new char[BufferLease::block_size];
}

void give_back_block(char* block) noexcept {
  auto* p = pool();
  if (p != nullptr && p->lent > 0) --p->lent;
  if (p != nullptr && p->free.size() < std::max(p->cap, p->window_peak)) {
    try {
      p->free.push_back(block);
      return;
    } catch (const std::bad_alloc&) {  // the list could not grow: the block goes instead
    }
  }
  delete[] block;
}

LeaseSource* block_pool_source() noexcept { return &source; }

std::size_t pooled_blocks() noexcept {
  auto* p = pool();
  return p != nullptr ? p->free.size() : 0;
}

}  // namespace sockserv::aio::detail
