// SPDX-License-Identifier: MIT
// Echo server on libuv, for bench/compare.py: one loop; uv_read_start() with an alloc_cb that hands
// out 64 KiB buffers from a free list, as libuv's own benchmark servers recycle theirs, so a buffer
// belongs to a connection only between a read and the write that echoes it (an idle connection
// owns none). Each read is echoed with uv_try_write(); what the socket does not take goes to
// uv_write(), and reading pauses until it is written (a slow reader never makes us buffer more).
//
//   libuv_echo [PORT]    0 or nothing: the kernel picks; prints "listening on 127.0.0.1:PORT"
#include <uv.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct buffer {
  struct buffer* next;
  char data[65536];
} buffer_t;

typedef struct {
  uv_write_t req;
  char* data;
} write_req_t;

static buffer_t* free_buffers;

static void alloc_cb(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf) {
  (void)handle;
  (void)suggested_size;
  buffer_t* b = free_buffers;
  if (b) {
    free_buffers = b->next;
  } else if (!(b = malloc(sizeof *b))) {
    *buf = uv_buf_init(NULL, 0);  // libuv reports UV_ENOBUFS to read_cb
    return;
  }
  *buf = uv_buf_init(b->data, sizeof b->data);
}

static void release(char* data) {
  buffer_t* b = (buffer_t*)(data - offsetof(buffer_t, data));
  b->next = free_buffers;
  free_buffers = b;
}

static void close_cb(uv_handle_t* handle) { free(handle); }

static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

static void write_cb(uv_write_t* req, int status) {
  write_req_t* w = (write_req_t*)req;
  uv_stream_t* stream = req->handle;
  release(w->data);
  free(w);
  if (status < 0) {
    if (!uv_is_closing((uv_handle_t*)stream)) uv_close((uv_handle_t*)stream, close_cb);
  } else if (stream->write_queue_size == 0) {
    uv_read_start(stream, alloc_cb, read_cb);
  }
}

static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  if (nread <= 0) {
    if (buf->base) release(buf->base);
    if (nread < 0) uv_close((uv_handle_t*)stream, close_cb);  // UV_EOF or an error
    return;
  }
  uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
  int sent = uv_try_write(stream, &out, 1);
  if (sent == nread) {
    release(buf->base);
    return;
  }
  if (sent == UV_EAGAIN) sent = 0;
  write_req_t* w = sent < 0 ? NULL : malloc(sizeof *w);
  if (!w) {
    release(buf->base);
    uv_close((uv_handle_t*)stream, close_cb);
    return;
  }
  w->data = buf->base;
  out = uv_buf_init(buf->base + sent, (unsigned)(nread - sent));
  uv_read_stop(stream);
  uv_write(&w->req, stream, &out, 1, write_cb);
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    fprintf(stderr, "libuv_echo: accept: %s\n", uv_strerror(status));
    return;
  }
  uv_tcp_t* client = malloc(sizeof *client);
  if (!client) return;
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, (uv_stream_t*)client) == 0) {
    uv_read_start((uv_stream_t*)client, alloc_cb, read_cb);
  } else {
    uv_close((uv_handle_t*)client, close_cb);
  }
}

int main(int argc, char** argv) {
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &addr);
  uv_tcp_init(loop, &server);
  int rc = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t*)&server, SOMAXCONN, on_connection);
  if (rc != 0) {
    fprintf(stderr, "libuv_echo: %s\n", uv_strerror(rc));
    return 1;
  }
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len);
  printf("listening on 127.0.0.1:%d\n", ntohs(bound.sin_port));
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
