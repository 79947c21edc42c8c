// SPDX-License-Identifier: MIT
// Umbrella header: everything of sockserv's public API.
#pragma once

#include <sockserv/address.hpp>
#include <sockserv/buffer.hpp>
#include <sockserv/byteorder.hpp>
#include <sockserv/error.hpp>
#include <sockserv/framing.hpp>
#include <sockserv/selector.hpp>
#include <sockserv/socket.hpp>
#include <sockserv/socket_file.hpp>
