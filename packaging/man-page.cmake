# SPDX-License-Identifier: MIT
# Writes sockserv.1.gz with help2man from the built command's --help and --version, and adds
# each subcommand's --help (help2man reads only the top-level one), the systemd units and where
# to read more. Run at build time (packaging/CMakeLists.txt):
#   cmake -DSOCKSERV=path/to/sockserv -DHELP2MAN=path -DUNIT_DIR=/lib/systemd/system
#         -DOUTPUT=sockserv.1.gz -P man-page.cmake

# Text printed by a program, as roff that keeps its lines: backslashes escaped, and lines that
# roff or help2man's include format would read as requests or section names protected by \&.
function(as_roff_block text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'[/])" "\\1\\\\&\\2" text "${text}")
  set(${out} ".nf\n${text}.fi\n" PARENT_SCOPE)
endfunction()

set(include "[COMMANDS]\n")
foreach(command serve send bench)
  execute_process(COMMAND "${SOCKSERV}" ${command} --help OUTPUT_VARIABLE help
                  COMMAND_ERROR_IS_FATAL ANY)
  string(REPLACE "${SOCKSERV}" "sockserv" help "${help}")  # CLI11's usage line names argv[0]
  as_roff_block("${help}" block)
  string(APPEND include ".SS \"sockserv ${command}\"\n${block}")
endforeach()
string(APPEND include "[FILES]
.TP
.I ${UNIT_DIR}/sockserv.socket
.TQ
.I ${UNIT_DIR}/sockserv.service
systemd units that start \\fBsockserv serve\\fR on 127.0.0.1:9999 on the first connection
(socket activation). They are not enabled:
.B systemctl enable \\-\\-now sockserv.socket
does it.
[SEE ALSO]
The project's docs/OPERATIONS.md (limits, timeouts, deployment) and README.md.
")

get_filename_component(dir "${OUTPUT}" DIRECTORY)
set(page "${dir}/sockserv.1")
file(WRITE "${dir}/sockserv.h2m" "${include}")
execute_process(COMMAND "${HELP2MAN}" --no-info
                        --name "network servers after Python's socketserver"
                        --include "${dir}/sockserv.h2m" --output "${page}" "${SOCKSERV}"
                COMMAND_ERROR_IS_FATAL ANY)
# Debian installs man pages compressed; -n leaves the time stamp out (reproducible packages).
execute_process(COMMAND gzip -9nf "${page}" COMMAND_ERROR_IS_FATAL ANY)
