// Small helpers over the N-API C interface: reading arguments (numbers, booleans, typed arrays as
// raw pointers) with errors that name the function and the argument, and registering functions.
// Every kernel entry point is synchronous: it runs on the calling JS thread plus the pool's threads
// and returns when the result is written.
#pragma once
#include <node_api.h>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ns {

/** Thrown by argument readers; turned into a JS Error by `wrap`. */
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  napi_env env;
  const char* fn;
  size_t argc;
  napi_value argv[24];

  Args(napi_env e, napi_callback_info info, const char* name, size_t expected);
  double num(size_t i) const;
  int64_t i64(size_t i) const;
  bool flag(size_t i) const;
  /** A typed array of the expected kind: its data (at its byte offset) and element count. */
  void* array(size_t i, napi_typedarray_type expected, size_t* length) const;
  float* f32(size_t i, size_t* length) const { return static_cast<float*>(array(i, napi_float32_array, length)); }
  int32_t* i32(size_t i, size_t* length) const { return static_cast<int32_t*>(array(i, napi_int32_array, length)); }
  uint8_t* u8(size_t i, size_t* length) const { return static_cast<uint8_t*>(array(i, napi_uint8_array, length)); }
  /** null or undefined. */
  bool isNull(size_t i) const;
  [[noreturn]] void fail(size_t i, const std::string& problem) const;
};

using Impl = napi_value (*)(const Args&);

/** Registers `impl` as exports[name], converting C++ exceptions into JS Errors. */
void define(napi_env env, napi_value exports, const char* name, size_t argc, Impl impl);

napi_value undefinedValue(napi_env env);
napi_value number(napi_env env, double v);

// Each kernel family registers its functions (one file each).
void registerGemm(napi_env env, napi_value exports);
void registerRows(napi_env env, napi_value exports);
void registerAdamw(napi_env env, napi_value exports);
void registerQuant(napi_env env, napi_value exports);
void registerMmap(napi_env env, napi_value exports);

}  // namespace ns
