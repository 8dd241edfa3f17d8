// (placeholder: registers nothing yet)
#include "napi.h"

namespace ns {

void registerRows(napi_env, napi_value) {}

}  // namespace ns
