// SPDX-License-Identifier: MIT
// The UDP load generator of bench/compare.py --udp. Talks to 127.0.0.1 only, and every phase is
// bounded in datagrams and in time.
//
//   udp_load PORT SERVER_PID [CLIENTS [SIZE [DURATION [WARMUP [BURST]]]]]
//            defaults:          50      64      3         1       10000
//
// 1. Steady load: CLIENTS connected sockets each keep one SIZE-byte datagram in flight (sent
//    again after 200 ms without an answer, counted as lost); after WARMUP seconds, for DURATION
//    seconds, the answers and the server's CPU time (utime + stime of /proc/PID/stat, all its
//    threads) are counted: server CPU per datagram, datagrams per second.
// 2. Burst: the sockets send BURST datagrams in all (BURST / CLIENTS each, round-robin, 8 per
//    sendmmsg, with no pause and without reading), then read answers until 500 ms pass with none
//    (at most 10 s): lost = BURST - answers (each answer counted once, by its sequence number).
// Prints one JSON line.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double server_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = all.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(all.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);  // utime, stime
    if (i == 15) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Client {
  int fd = -1;
  std::uint32_t seq = 0;
  Clock::time_point sent_at{};
};

// Payload: phase (1 byte), client (2 bytes), sequence (4 bytes), padding to SIZE.
void encode(char* p, char phase, std::uint16_t client, std::uint32_t seq) {
  p[0] = phase;
  std::memcpy(p + 1, &client, 2);
  std::memcpy(p + 3, &seq, 4);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: udp_load PORT SERVER_PID [CLIENTS [SIZE [DURATION [WARMUP "
                 "[BURST]]]]]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int pid = std::atoi(argv[2]);
  const int clients = argc > 3 ? std::atoi(argv[3]) : 50;
  const int size = argc > 4 ? std::atoi(argv[4]) : 64;
  const double duration = argc > 5 ? std::atof(argv[5]) : 3;
  const double warmup = argc > 6 ? std::atof(argv[6]) : 1;
  const int burst = argc > 7 ? std::atoi(argv[7]) : 10000;
  if (clients < 1 || clients > 1000 || size < 8 || size > 65507 || duration <= 0 || duration > 60 ||
      warmup < 0 || warmup > 60 || burst < 0 || burst > 1000000) {
    std::fprintf(stderr, "udp_load: an argument is out of range\n");
    return 2;
  }
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<std::uint16_t>(port));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only, whatever the arguments

  std::vector<Client> cs(static_cast<std::size_t>(clients));
  std::vector<pollfd> fds;
  for (auto& c : cs) {
    c.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int buf = 1 << 20;
    ::setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&server), sizeof server) < 0) {
      std::perror("udp_load: socket/connect");
      return 1;
    }
    fds.push_back({c.fd, POLLIN, 0});
  }
  std::vector<char> out(static_cast<std::size_t>(size), 'x');
  char in[65536];

  // ---- 1. Steady load.
  auto send_one = [&](std::size_t i, char phase) {
    encode(out.data(), phase, static_cast<std::uint16_t>(i), ++cs[i].seq);
    cs[i].sent_at = Clock::now();
    (void)::send(cs[i].fd, out.data(), out.size(), 0);
  };
  for (std::size_t i = 0; i < cs.size(); ++i) send_one(i, 'S');
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration<double>(warmup);
  const auto measure_to = measure_from + std::chrono::duration<double>(duration);
  bool measuring = false;
  double cpu_before = 0;
  long answers = 0;
  long resent = 0;
  Clock::time_point window_start{};
  for (;;) {
    const auto now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      answers = 0;
      resent = 0;
      cpu_before = server_cpu_seconds(pid);
      window_start = now;
    }
    if (now >= measure_to) break;
    if (::poll(fds.data(), fds.size(), 20) < 0) continue;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      bool answered = false;
      if (fds[i].revents & POLLIN) {
        ssize_t n;
        while ((n = ::recv(cs[i].fd, in, sizeof in, 0)) > 0) {
          std::uint32_t seq;
          std::memcpy(&seq, in + 3, 4);
          if (in[0] == 'S' && seq == cs[i].seq) answered = true;  // late answers are ignored
        }
      }
      if (answered) {
        ++answers;
        send_one(i, 'S');
      } else if (Clock::now() - cs[i].sent_at > std::chrono::milliseconds(200)) {
        ++resent;
        send_one(i, 'S');
      }
    }
  }
  const double cpu = server_cpu_seconds(pid) - cpu_before;
  const double seconds = std::chrono::duration<double>(Clock::now() - window_start).count();

  // Let the last answers arrive, and drop them.
  const auto settle = Clock::now() + std::chrono::milliseconds(300);
  while (Clock::now() < settle) {
    ::poll(fds.data(), fds.size(), 20);
    for (auto& c : cs) {
      while (::recv(c.fd, in, sizeof in, 0) > 0) {
      }
    }
  }

  // ---- 2. Burst.
  std::vector<std::vector<bool>> seen(cs.size());
  const int per_client = burst / clients;
  const double burst_cpu_before = server_cpu_seconds(pid);
  for (auto& s : seen) s.assign(static_cast<std::size_t>(per_client), false);
  // Round-robin over the sockets, 8 datagrams per socket per sendmmsg: as fast as one CPU sends.
  constexpr int chunk = 8;
  std::vector<std::vector<char>> payloads(chunk, out);
  std::vector<iovec> iov(chunk);
  std::vector<mmsghdr> msgs(chunk);
  for (int k = 0; k < per_client; k += chunk) {
    const int n = std::min(chunk, per_client - k);
    for (std::size_t i = 0; i < cs.size(); ++i) {
      for (int j = 0; j < n; ++j) {
        auto& p = payloads[static_cast<std::size_t>(j)];
        encode(p.data(), 'B', static_cast<std::uint16_t>(i), static_cast<std::uint32_t>(k + j));
        iov[static_cast<std::size_t>(j)] = {p.data(), p.size()};
        msgs[static_cast<std::size_t>(j)] = {};
        msgs[static_cast<std::size_t>(j)].msg_hdr.msg_iov = &iov[static_cast<std::size_t>(j)];
        msgs[static_cast<std::size_t>(j)].msg_hdr.msg_iovlen = 1;
      }
      // The local send buffer never fills on loopback (each datagram is handed on at once), but
      // EAGAIN is retried anyway.
      for (int sent = 0; sent < n;) {
        const int m = ::sendmmsg(cs[i].fd, msgs.data() + sent, static_cast<unsigned>(n - sent), 0);
        if (m > 0)
          sent += m;
        else if (errno != EAGAIN && errno != EINTR)
          break;
      }
    }
  }
  const auto burst_sent = Clock::now();
  long burst_answers = 0;
  auto last_answer = Clock::now();
  while (Clock::now() - last_answer < std::chrono::milliseconds(500) &&
         Clock::now() - burst_sent < std::chrono::seconds(10)) {
    ::poll(fds.data(), fds.size(), 50);
    for (std::size_t i = 0; i < cs.size(); ++i) {
      ssize_t n;
      while ((n = ::recv(cs[i].fd, in, sizeof in, 0)) > 0) {
        std::uint32_t seq;
        std::memcpy(&seq, in + 3, 4);
        if (in[0] == 'B' && seq < seen[i].size() && !seen[i][seq]) {
          seen[i][seq] = true;
          ++burst_answers;
          last_answer = Clock::now();
        }
      }
    }
  }
  const double burst_cpu = server_cpu_seconds(pid) - burst_cpu_before;
  const long burst_total = static_cast<long>(per_client) * clients;
  std::printf(
      "{\"clients\": %d, \"size\": %d, \"dgrams_per_s\": %.1f, \"server_cpu_us_per_dgram\": "
      "%.3f, \"server_cpu_s\": %.3f, \"answers\": %ld, \"resent\": %ld, \"burst\": %ld, "
      "\"burst_answers\": %ld, \"burst_lost\": %ld, \"burst_loss_pct\": %.2f, "
      "\"burst_server_cpu_us_per_dgram\": %.3f}\n",
      clients, size, answers / seconds, answers ? cpu * 1e6 / static_cast<double>(answers) : 0.0,
      cpu, answers, resent, burst_total, burst_answers, burst_total - burst_answers,
      burst_total ? 100.0 * static_cast<double>(burst_total - burst_answers) /
                        static_cast<double>(burst_total)
                  : 0.0,
      burst_answers ? burst_cpu * 1e6 / static_cast<double>(burst_answers) : 0.0);
  return 0;
}
