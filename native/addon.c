#include "addon.h"

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "sendfileStart", NULL, sendfile_start, NULL, NULL, NULL, napi_default, NULL },
    { "sendfileCancel", NULL, sendfile_cancel, NULL, NULL, NULL, napi_default, NULL },
    { "sendfileSent", NULL, sendfile_sent, NULL, NULL, NULL, napi_default, NULL },
    { "acceptPending", NULL, accept_pending, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
