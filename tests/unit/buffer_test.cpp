// SPDX-License-Identifier: MIT
#include <sockserv/buffer.hpp>  // Test that header file is self-contained.

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sockserv {
namespace {

TEST(BufferTest, StartsEmptyWithoutMemory) {
  Buffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.view(), "");
}

TEST(BufferTest, PrepareThenCommitAppendsOnlyTheCommittedBytes) {
  Buffer buffer;
  auto room = buffer.prepare(10);
  ASSERT_GE(room.size(), 10u);
  std::memcpy(room.data(), "abcdef", 6);
  buffer.commit(3);
  EXPECT_EQ(buffer.view(), "abc");
  buffer.append("xyz");
  EXPECT_EQ(buffer.view(), "abcxyz");
}

TEST(BufferTest, ConsumeDropsFromTheFront) {
  Buffer buffer;
  buffer.append("hello world");
  buffer.consume(6);
  EXPECT_EQ(buffer.view(), "world");
  EXPECT_EQ(std::string(buffer.data(), buffer.size()), "world");
  buffer.consume(5);
  EXPECT_TRUE(buffer.empty());
}

TEST(BufferTest, GrowsAndKeepsTheUnreadBytes) {
  Buffer buffer;
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    const std::string chunk = std::to_string(i) + ',';
    buffer.append(chunk);
    expected += chunk;
  }
  EXPECT_GE(buffer.capacity(), expected.size());
  EXPECT_EQ(buffer.view(), expected);
  buffer.append(std::string(100000, 'z'));
  EXPECT_EQ(buffer.view().substr(0, expected.size()), expected);
  EXPECT_EQ(buffer.size(), expected.size() + 100000);
}

// Space freed by consume() is reused by sliding the unread bytes down instead of growing.
TEST(BufferTest, SlidesConsumedSpaceBeforeGrowing) {
  Buffer buffer;
  buffer.append(std::string(4000, 'a'));
  const std::size_t capacity = buffer.capacity();
  buffer.consume(3990);
  buffer.append(std::string(3000, 'b'));
  EXPECT_EQ(buffer.capacity(), capacity);
  EXPECT_EQ(buffer.view(), std::string(10, 'a') + std::string(3000, 'b'));
}

TEST(BufferTest, ConsumingEverythingRewindsToTheStart) {
  Buffer buffer;
  buffer.append("abc");
  const char* const start = buffer.data();
  buffer.consume(3);
  buffer.append("d");
  EXPECT_EQ(buffer.data(), start);
}

TEST(BufferTest, ReleaseFreesOnlyAnEmptyBuffer) {
  Buffer buffer;
  buffer.append("pending");
  buffer.release();
  EXPECT_GT(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.view(), "pending");
  buffer.clear();
  EXPECT_TRUE(buffer.empty());
  buffer.release();
  EXPECT_EQ(buffer.capacity(), 0u);
  buffer.append("again");
  EXPECT_EQ(buffer.view(), "again");
}

TEST(BufferTest, MoveTransfersTheBytes) {
  Buffer a;
  a.append("moved");
  Buffer b(std::move(a));
  EXPECT_EQ(b.view(), "moved");
  Buffer c;
  c = std::move(b);
  EXPECT_EQ(c.view(), "moved");
}

// Regression: a defaulted move left the source claiming capacity without storage, so the next
// prepare() wrote through a null pointer.
TEST(BufferTest, MovedFromBufferIsEmptyAndReusable) {
  Buffer a;
  a.append("data");
  Buffer b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the state is specified
  EXPECT_EQ(a.capacity(), 0u);
  a.append("again");
  EXPECT_EQ(a.view(), "again");
  Buffer c;
  c = std::move(b);
  b.append("b too");  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.view(), "b too");
  EXPECT_EQ(c.view(), "data");
}

}  // namespace
}  // namespace sockserv
