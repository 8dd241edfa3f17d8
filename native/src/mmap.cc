// (placeholder: registers nothing yet)
#include "napi.h"

namespace ns {

void registerMmap(napi_env, napi_value) {}

}  // namespace ns
