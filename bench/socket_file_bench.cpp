// SPDX-License-Identifier: MIT
// SocketFile::readline throughput over a Unix socket pair, for 64-byte and 4 KiB lines. A writer
// thread keeps the socket full, so the numbers are the reader's: recv() calls into the buffer,
// the '\n' search, and one string per line.
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <thread>

namespace {

using namespace sockserv;

void BM_Readline(benchmark::State& state) {
  const auto line_size = static_cast<std::size_t>(state.range(0));
  std::string line(line_size - 1, 'x');
  line += '\n';
  const std::size_t lines_per_block = (std::size_t{1} << 20) / line_size;
  std::string block;
  for (std::size_t i = 0; i < lines_per_block; ++i) block += line;

  auto [writer, reader] = socketpair();
  std::atomic<bool> stop{false};
  std::thread sender([&, &out = writer] {
    while (!stop.load(std::memory_order_relaxed)) out.sendall(block);
    out.shutdown(SHUT_WR);
  });

  SocketFile file(reader);
  for (auto _ : state) {
    const std::string got = file.readline();
    benchmark::DoNotOptimize(got.data());
  }
  // Drain what the writer still sends, so it sees room, finishes its block and stops.
  stop = true;
  while (!file.read(std::size_t{1} << 16).empty()) {
  }
  sender.join();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * line_size));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Real time, not CPU time: the writer thread shares the pinned core, and its cost is part of the
// pipe a reader sees.
BENCHMARK(BM_Readline)->Arg(64)->Arg(4096)->UseRealTime();

}  // namespace
