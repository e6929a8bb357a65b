// rackboot's native addon: the two things Node's sockets do not offer (see each file).
#include <node_api.h>

napi_value sendfile_start(napi_env env, napi_callback_info info);
napi_value sendfile_cancel(napi_env env, napi_callback_info info);
napi_value sendfile_sent(napi_env env, napi_callback_info info);
napi_value accept_pending(napi_env env, napi_callback_info info);
