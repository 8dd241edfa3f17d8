// (placeholder: registers nothing yet)
#include "napi.h"

namespace ns {

void registerGemm(napi_env, napi_value) {}

}  // namespace ns
