// acceptPending(listenFd, max) -> [fd, ...]: every connection waiting in the listen queue, now.
// libuv accepts one connection per turn of the event loop (libuv PR #3696). Under load a turn lasts
// as long as it takes to answer every ready socket (~15 ms at 64 busy connections), so a burst of
// new connections, a rack powering on, was let in at one per turn: the 64th waited ~1 s.
// Called from the server's 'connection' handler, this empties the queue in the same turn.
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>
#include "addon.h"

napi_value accept_pending(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, fdValue;
  int32_t listenFd, max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &listenFd) != napi_ok || napi_get_value_int32(env, argv[1], &max) != napi_ok || listenFd < 0) {
    napi_throw_type_error(env, NULL, "acceptPending(listenFd, max)");
    return NULL;
  }
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  for (uint32_t n = 0; (int32_t)n < max;) {
    int fd = accept4(listenFd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break; // EAGAIN: the queue is empty; anything else (EMFILE...) Node's own accept reports
    }
    if (napi_create_int32(env, fd, &fdValue) != napi_ok || napi_set_element(env, out, n++, fdValue) != napi_ok) return NULL;
  }
  return out;
}
