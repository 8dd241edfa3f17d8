// (placeholder: registers nothing yet)
#include "napi.h"

namespace ns {

void registerAdamw(napi_env, napi_value) {}

}  // namespace ns
