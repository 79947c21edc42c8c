// SPDX-License-Identifier: MIT
/// @file
/// Buffer: a growable byte queue for incoming stream data, shared by SocketFile, FrameDecoder and
/// the event loop's connections.
///
/// ```
///   +-------------------+------------------+------------------+
///   |  consumed bytes   |  readable bytes  |  writable bytes  |
///   |  (reclaimed)      |    (data())      |   (prepare())    |
///   +-------------------+------------------+------------------+
///   0      <=      read_pos_     <=    write_pos_     <=    capacity
/// ```
///
/// A reader appends with prepare(n) + commit(k) (so recv() writes straight into the buffer, no
/// extra copy), looks at data(), and drops what it used with consume(k). Consumed space at the
/// front is reclaimed by sliding the readable bytes down before the buffer grows, so a long-lived
/// connection's buffer stays as large as its largest unread backlog, not its lifetime traffic.
///
/// Not thread-safe; owned by one reader.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace sockserv {

/// A growable byte queue: append at the end (prepare/commit or append), read and consume at the
/// front. buffer.hpp has the layout. Allocation failures throw std::bad_alloc; nothing
/// else throws.
/// @threadsafety Not thread-safe; owned by one reader.
class Buffer {
 public:
  /// An empty buffer; it allocates (4 KiB, then doubling) on the first prepare().
  Buffer() = default;
  /// A moved-from Buffer is empty and reusable (the defaulted move would leave it claiming the
  /// capacity of storage it no longer owns).
  /// @{
  Buffer(Buffer&& other) noexcept
      : storage_(std::move(other.storage_)),
        capacity_(std::exchange(other.capacity_, 0)),
        read_pos_(std::exchange(other.read_pos_, 0)),
        write_pos_(std::exchange(other.write_pos_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      storage_ = std::move(other.storage_);
      capacity_ = std::exchange(other.capacity_, 0);
      read_pos_ = std::exchange(other.read_pos_, 0);
      write_pos_ = std::exchange(other.write_pos_, 0);
    }
    return *this;
  }
  /// @}

  /// The bytes received and not yet consumed.
  std::string_view view() const noexcept {
    return {storage_.get() + read_pos_, write_pos_ - read_pos_};
  }
  /// The first readable byte (view().data()).
  const char* data() const noexcept { return storage_.get() + read_pos_; }
  /// How many bytes are readable.
  std::size_t size() const noexcept { return write_pos_ - read_pos_; }
  /// True when nothing is readable.
  bool empty() const noexcept { return read_pos_ == write_pos_; }
  /// The bytes allocated (0 after release()).
  std::size_t capacity() const noexcept { return capacity_; }

  /// Room for at least `n` more bytes at the end; write into it, then commit() what was written.
  /// The span may be larger than `n`; it is invalidated by the next prepare() or append().
  std::span<char> prepare(std::size_t n) {
    if (capacity_ - write_pos_ < n) make_room(n);
    return {storage_.get() + write_pos_, capacity_ - write_pos_};
  }
  /// Makes the first `n` bytes written into prepare()'s span readable.
  void commit(std::size_t n) noexcept { write_pos_ += n; }

  /// Copies `bytes` to the end (prepare() + commit()).
  void append(std::string_view bytes) {
    auto room = prepare(bytes.size());
    if (!bytes.empty()) std::memcpy(room.data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }

  /// Drops the first `n` readable bytes (n <= size()).
  void consume(std::size_t n) noexcept {
    read_pos_ += n;
    if (read_pos_ == write_pos_) read_pos_ = write_pos_ = 0;
  }
  /// Drops every readable byte; keeps the memory.
  void clear() noexcept { read_pos_ = write_pos_ = 0; }

  /// Gives the memory back when nothing is readable (an idle connection should not own a read
  /// buffer); does nothing otherwise.
  void release() noexcept {
    if (empty()) {
      storage_.reset();
      capacity_ = read_pos_ = write_pos_ = 0;
    }
  }

 private:
  void make_room(std::size_t n);

  std::unique_ptr<char[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t read_pos_ = 0;
  std::size_t write_pos_ = 0;
};

inline void Buffer::make_room(std::size_t n) {
  const std::size_t used = size();
  if (read_pos_ > 0 && capacity_ - used >= n) {  // sliding down is enough
    std::memmove(storage_.get(), storage_.get() + read_pos_, used);
  } else {
    std::size_t new_capacity = capacity_ == 0 ? 4096 : capacity_ * 2;
    while (new_capacity - used < n) new_capacity *= 2;
    auto bigger = std::make_unique_for_overwrite<char[]>(new_capacity);
    if (used) std::memcpy(bigger.get(), storage_.get() + read_pos_, used);
    storage_ = std::move(bigger);
    capacity_ = new_capacity;
  }
  read_pos_ = 0;
  write_pos_ = used;
}

}  // namespace sockserv
