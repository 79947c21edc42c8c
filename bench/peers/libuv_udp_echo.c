// SPDX-License-Identifier: MIT
// UDP echo server on libuv, for bench/compare.py --udp: one loop, one socket opened with
// UV_UDP_RECVMMSG, so libuv receives with recvmmsg into the buffer alloc_cb hands out (a single
// 32 x 64 KiB buffer, reused: libuv calls recv_cb once per datagram with UV_UDP_MMSG_CHUNK, then
// once with UV_UDP_MMSG_FREE when the batch is done). Each datagram is echoed with
// uv_udp_try_send(); one the socket does not take at once is dropped, as the network may.
//
//   libuv_udp_echo [PORT]    0 or nothing: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>

#define BATCH 32
#define SLOT (64 * 1024)

static char batch_buffer[BATCH * SLOT];
static int buffer_in_use;

static void alloc_cb(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf) {
  (void)handle;
  (void)suggested_size;
  if (buffer_in_use) {  // not expected: libuv frees a batch before it asks again
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  buffer_in_use = 1;
  *buf = uv_buf_init(batch_buffer, sizeof batch_buffer);
}

static void recv_cb(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf,
                    const struct sockaddr* addr, unsigned flags) {
  if (nread > 0 && addr) {
    uv_buf_t reply = uv_buf_init(buf->base, (unsigned)nread);
    (void)uv_udp_try_send(handle, &reply, 1, addr);
  }
  // The batch's buffer comes back once: with UV_UDP_MMSG_FREE after a recvmmsg batch, or with a
  // plain (not chunk) callback after a single recvmsg or an error.
  if ((flags & UV_UDP_MMSG_FREE) || !(flags & UV_UDP_MMSG_CHUNK)) {
    if (buf->base == batch_buffer) buffer_in_use = 0;
  }
}

int main(int argc, char** argv) {
  const int port = argc > 1 ? atoi(argv[1]) : 0;
  uv_loop_t* loop = uv_default_loop();
  uv_udp_t server;
  if (uv_udp_init_ex(loop, &server, AF_INET | UV_UDP_RECVMMSG) != 0) return 1;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int r = uv_udp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (r != 0) {
    fprintf(stderr, "bind: %s\n", uv_strerror(r));
    return 1;
  }
  int len = sizeof addr;
  uv_udp_getsockname(&server, (struct sockaddr*)&addr, &len);
  if ((r = uv_udp_recv_start(&server, alloc_cb, recv_cb)) != 0) {
    fprintf(stderr, "recv_start: %s\n", uv_strerror(r));
    return 1;
  }
  if (!uv_udp_using_recvmmsg(&server)) fprintf(stderr, "libuv_udp_echo: recvmmsg not in use\n");
  printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
