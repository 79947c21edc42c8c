// SPDX-License-Identifier: MIT
#include "block_pool.hpp"

#include <vector>

namespace sockserv::aio::detail {
namespace {

// 16 blocks of 64 KiB: at most 1 MiB kept per thread, enough for every connection a loop
// serves in one iteration to hold a lease in a typical echo or proxy.
constexpr std::size_t max_pooled = 16;

// Trivially destructible, so it can still be read while the thread's other thread_locals are
// destroyed: a lease dropped after the pool is gone frees its block instead.
thread_local bool pool_gone = false;

struct Pool {
  std::vector<char*> free;
  Pool() { free.reserve(max_pooled); }
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

void give_back(LeaseSource* /*self*/, char* block, std::uint32_t /*tag*/) noexcept {
  give_back_block(block);
}

LeaseSource source{&give_back};

}  // namespace

char* take_block() {
  if (auto* p = pool(); p != nullptr && !p->free.empty()) {
    char* block = p->free.back();
    p->free.pop_back();
    return block;
  }
  return new char[BufferLease::block_size];
}

void give_back_block(char* block) noexcept {
  if (auto* p = pool(); p != nullptr && p->free.size() < max_pooled) {
    p->free.push_back(block);  // never reallocates: reserved up to the cap
  } else {
    delete[] block;
  }
}

LeaseSource* block_pool_source() noexcept { return &source; }

std::size_t pooled_blocks() noexcept {
  auto* p = pool();
  return p != nullptr ? p->free.size() : 0;
}

}  // namespace sockserv::aio::detail
