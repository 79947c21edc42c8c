// SPDX-License-Identifier: MIT
// `sockserv send [--udp] ADDRESS MESSAGE...`: the seed's TCP and UDP clients.
//
//   $ sockserv send localhost:9999 hello world with TCP
//   Sent:     hello world with TCP
//   Received: HELLO WORLD WITH TCP
#include "commands.hpp"
#include "tls_options.hpp"

#include <sockserv/error.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>
#include <sockserv/tls/ssl_socket.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace sockserv::tool {
namespace {

struct SendOptions {
  std::string address;
  std::vector<std::string> words;
  bool udp = false;
  double timeout_seconds = 5.0;
  ClientTlsOptions tls;
};

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string strip(std::string s) {
  const auto end = s.find_last_not_of(" \t\r\n");
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// Sends one line over a stream socket and reads one line back (or what comes before EOF).
// Over TLS the handshake comes first (verifying the server unless --insecure), and the end is
// close_notify, so the server sees a clean close.
std::string exchange_stream(const Address& address, const std::string& data, Timeout timeout,
                            const SendOptions& o) {
  Socket sock = create_connection(address, timeout);
  if (o.tls.tls) {
    const auto ctx = build_client_context(o.tls);
    sock = ctx.wrap_socket(std::move(sock), false, client_server_name(o.tls, o.address));
  }
  sock.sendall(data + "\n");
  SocketFile reply(sock);
  auto line = reply.readline();
  if (o.tls.tls) sock.graceful_close(std::chrono::seconds(1));
  return line;
}

// Sends one datagram and waits for one reply. A Unix datagram client needs a name of its own to
// be answered: the kernel gives it an abstract one (autobind) when we bind an empty address.
std::string exchange_datagram(const Address& address, const std::string& data, Timeout timeout) {
  Socket sock(address.family(), SOCK_DGRAM);
  if (address.is_unix()) {
    const sa_family_t family = AF_UNIX;
    sock.bind(Address(reinterpret_cast<const sockaddr*>(&family), sizeof family));
  }
  sock.settimeout(timeout);
  sock.sendto(data + "\n", address);
  return sock.recvfrom(65536).first;
}

int run_send(const SendOptions& options) {
  const std::string data = join(options.words);
  try {
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(options.timeout_seconds));
    const Address address =
        Address::lookup(options.address, options.udp ? SOCK_DGRAM : SOCK_STREAM);
    const std::string received = options.udp ? exchange_datagram(address, data, timeout)
                                             : exchange_stream(address, data, timeout, options);
    std::cout << "Sent:     " << data << "\n"
              << "Received: " << strip(received) << std::endl;
    return 0;
  } catch (const TimeoutError& e) {
    std::cerr << "sockserv send: no reply within " << options.timeout_seconds << " s (" << e.what()
              << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "sockserv send: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace

void add_send_command(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<SendOptions>();
  auto* cmd = app.add_subcommand("send", "Send one message and print the server's reply");
  cmd->add_option("address", options->address,
                  "Server address: HOST:PORT, [IPv6]:PORT, unix:/path or unix:@abstract")
      ->required();
  cmd->add_option("message", options->words, "Words of the message (joined by spaces)");
  cmd->add_flag("--udp", options->udp, "Send a datagram (UDP, or a Unix datagram socket)");
  cmd->add_option("--timeout", options->timeout_seconds, "Seconds to wait for connect and reply")
      ->default_val(5.0)
      ->check(CLI::PositiveNumber);
  add_client_tls_options(*cmd, options->tls);
  cmd->callback([options, &exit_status] { exit_status = run_send(*options); });
}

}  // namespace sockserv::tool
