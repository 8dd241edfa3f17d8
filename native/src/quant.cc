// (placeholder: registers nothing yet)
#include "napi.h"

namespace ns {

void registerQuant(napi_env, napi_value) {}

}  // namespace ns
