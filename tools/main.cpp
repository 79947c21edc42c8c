// SPDX-License-Identifier: MIT
// sockserv: run a server (serve) or talk to one (send).
#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "sockserv: network servers after Python's socketserver.\n"
      "  sockserv serve   run a server (upper-case echo on localhost:9999 by default)\n"
      "  sockserv send    send one message to a server and print the reply\n"
      "  sockserv bench   measure a server: throughput, latency, its CPU and memory"};
  app.require_subcommand(1);
  // "sockserv 0.1.0": also what help2man reads for the man page's header (packaging/).
  app.set_version_flag("--version", "sockserv " SOCKSERV_VERSION);
  int exit_status = 0;
  sockserv::tool::add_send_command(app, exit_status);
  sockserv::tool::add_serve_command(app, exit_status);
  sockserv::tool::add_bench_command(app, exit_status);
  CLI11_PARSE(app, argc, argv);
  return exit_status;
}
