// SPDX-License-Identifier: MIT
// The subcommands of the `sockserv` tool. Each registers its options on the CLI11 app and returns
// the exit status through the callback's result.
#pragma once

#include <CLI/CLI.hpp>

namespace sockserv::tool {

// Sets up `sockserv send`; `exit_status` receives the command's exit status when it runs.
void add_send_command(CLI::App& app, int& exit_status);
// Sets up `sockserv serve`.
void add_serve_command(CLI::App& app, int& exit_status);
// Sets up `sockserv bench`, the load generator of docs/BENCHMARKS.md.
void add_bench_command(CLI::App& app, int& exit_status);

}  // namespace sockserv::tool
