// Zero-copy file -> socket for rackboot's image serving: sendfile(2) on a non-blocking socket,
// driven by a libuv poll handle on the event loop, the way nginx does it. Node's sockets offer no
// sendfile, and copying through user space held image serving at about half of nginx's throughput.
//
// sendfileStart(socketFd, fileFd, offset, length, callback) -> job; sendfileCancel(job); sendfileSent(job).
// The callback runs once, always asynchronously: callback(errno, bytesSent), errno 0 on success.
// Both descriptors are dup'ed: if Node closes the socket meanwhile, its descriptor number can be reused
// by another connection, and our copy keeps writing to the right one (or fails with EPIPE) instead.
#define _GNU_SOURCE
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

enum state { RUNNING, CLOSING, DONE };

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int sock, file;
  int64_t offset, end, start;
  int err;
  enum state state;
  int refs; // the poll handle and the JS external each hold one
} job_t;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "sendfile: " #call " failed"); return NULL; } } while (0)

static void release(job_t *job) {
  if (--job->refs == 0) free(job);
}

static void on_closed(uv_handle_t *handle) {
  job_t *job = (job_t *)handle->data;
  close(job->sock);
  close(job->file);
  job->state = DONE;
  napi_env env = job->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    napi_value cb, recv, argv[2], result;
    napi_get_reference_value(env, job->callback, &cb);
    napi_get_global(env, &recv); // make_callback needs an object as receiver
    napi_create_int32(env, job->err, &argv[0]);
    napi_create_int64(env, job->offset - job->start, &argv[1]);
    // make_callback, not call_function: promise continuations waiting on this must run afterwards.
    napi_make_callback(env, job->context, recv, cb, 2, argv, &result);
    napi_close_handle_scope(env, scope);
  }
  napi_delete_reference(env, job->callback);
  napi_async_destroy(env, job->context);
  release(job);
}

static void finish(job_t *job, int err) {
  if (job->state != RUNNING) return;
  job->state = CLOSING;
  job->err = err;
  int off = 0;
  setsockopt(job->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof off); // flush the last partial segment now
  uv_poll_stop(&job->poll);
  uv_close((uv_handle_t *)&job->poll, on_closed);
}

// Send until the socket buffer is full (then wait until it is writable) or the range is done.
static void pump(job_t *job) {
  while (job->state == RUNNING && job->offset < job->end) {
    off_t off = (off_t)job->offset;
    int64_t left = job->end - job->offset;
    size_t want = left > (1 << 30) ? (1 << 30) : (size_t)left;
    ssize_t n = sendfile(job->sock, job->file, &off, want);
    if (n > 0) {
      job->offset = off;
      // Short: the socket buffer is full. Wait for the poll rather than spend a call on EAGAIN (as nginx does).
      if ((size_t)n < want) return;
      continue;
    }
    if (n == 0) { finish(job, ENODATA); return; } // the file shrank under us
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return; // the poll handle stays on: on_writable calls again

    finish(job, errno);
    return;
  }
  finish(job, 0);
}

static void on_writable(uv_poll_t *poll, int status, int events) {
  (void)events;
  job_t *job = (job_t *)poll->data;
  if (status < 0) { finish(job, -status); return; }
  pump(job);
}

static void finalize_external(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  release((job_t *)data);
}

napi_value sendfile_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, NULL, "sendfileStart(socketFd, fileFd, offset, length, callback)"); return NULL; }
  int32_t sock, file;
  int64_t offset, length;
  CHECK(napi_get_value_int32(env, argv[0], &sock));
  CHECK(napi_get_value_int32(env, argv[1], &file));
  CHECK(napi_get_value_int64(env, argv[2], &offset));
  CHECK(napi_get_value_int64(env, argv[3], &length));
  if (sock < 0 || file < 0 || offset < 0 || length < 0) { napi_throw_range_error(env, NULL, "sendfile: negative descriptor, offset or length"); return NULL; }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));

  job_t *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, NULL, "sendfile: out of memory"); return NULL; }
  job->sock = fcntl(sock, F_DUPFD_CLOEXEC, 3);
  job->file = job->sock < 0 ? -1 : fcntl(file, F_DUPFD_CLOEXEC, 3);
  if (job->sock < 0 || job->file < 0 || uv_poll_init(loop, &job->poll, job->sock) < 0) {
    if (job->sock >= 0) close(job->sock);
    if (job->file >= 0) close(job->file);
    free(job);
    napi_throw_error(env, NULL, "sendfile: cannot duplicate or poll the descriptors");
    return NULL;
  }
  job->poll.data = job;
  job->env = env;
  // Full segments while the body streams, as nginx's tcp_nopush does: Node's sockets have TCP_NODELAY on,
  // which sends every partial write at once.
  int on = 1;
  setsockopt(job->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  job->offset = job->start = offset;
  job->end = offset + length;
  job->state = RUNNING;
  job->refs = 2;
  napi_value name, external;
  CHECK(napi_create_reference(env, argv[4], 1, &job->callback));
  CHECK(napi_create_string_utf8(env, "rackboot.sendfile", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &job->context));
  CHECK(napi_create_external(env, job, finalize_external, NULL, &external));
  // Start by waiting for writability: the first sendfile then runs on the loop, never inside this call,
  // so the callback is always asynchronous.
  if (uv_poll_start(&job->poll, UV_WRITABLE, on_writable) < 0) finish(job, EIO);
  return external;
}

static job_t *job_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendfile: expected a job from sendfileStart()");
    return NULL;
  }
  return (job_t *)data;
}

napi_value sendfile_cancel(napi_env env, napi_callback_info info) {
  job_t *job = job_arg(env, info);
  if (job) finish(job, ECANCELED);
  return NULL;
}

napi_value sendfile_sent(napi_env env, napi_callback_info info) {
  job_t *job = job_arg(env, info);
  if (!job) return NULL;
  napi_value out;
  CHECK(napi_create_int64(env, job->offset - job->start, &out));
  return out;
}
