// The addon's entry point and the argument plumbing every kernel shares.
#include "napi.h"

#include "cpu.h"
#include "pool.h"

namespace ns {

namespace {

struct Entry {
  const char* name;
  size_t argc;
  Impl impl;
};

void throwError(napi_env env, const std::string& message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, nullptr, message.c_str());
}

napi_value call(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  const Entry* e = static_cast<const Entry*>(data);
  try {
    Args args(env, info, e->name, e->argc);
    return e->impl(args);
  } catch (const std::exception& err) {
    throwError(env, std::string("native ") + e->name + ": " + err.what());
    return nullptr;
  }
}

}  // namespace

Args::Args(napi_env e, napi_callback_info info, const char* name, size_t expected) : env(e), fn(name), argc(24) {
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != expected) throw ArgError(std::to_string(expected) + " arguments expected, got " + std::to_string(argc));
}

void Args::fail(size_t i, const std::string& problem) const {
  throw ArgError("argument " + std::to_string(i) + ": " + problem);
}

double Args::num(size_t i) const {
  double v;
  if (napi_get_value_double(env, argv[i], &v) != napi_ok) fail(i, "not a number");
  return v;
}

int64_t Args::i64(size_t i) const {
  double v = num(i);
  if (v != static_cast<double>(static_cast<int64_t>(v))) fail(i, "not an integer");
  return static_cast<int64_t>(v);
}

bool Args::flag(size_t i) const {
  bool v;
  if (napi_get_value_bool(env, argv[i], &v) != napi_ok) fail(i, "not a boolean");
  return v;
}

bool Args::isNull(size_t i) const {
  napi_valuetype t;
  napi_typeof(env, argv[i], &t);
  return t == napi_null || t == napi_undefined;
}

void* Args::array(size_t i, napi_typedarray_type expected, size_t* length) const {
  bool is = false;
  napi_is_typedarray(env, argv[i], &is);
  if (!is) fail(i, "not a typed array");
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value buffer;
  size_t offset;
  napi_get_typedarray_info(env, argv[i], &type, &len, &data, &buffer, &offset);
  if (type != expected) {
    static const char* names[] = {"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
                                  "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"};
    fail(i, std::string("expected a ") + names[expected] + ", got a " + (type <= napi_biguint64_array ? names[type] : "typed array"));
  }
  *length = len;
  return data;
}

napi_value undefinedValue(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

void define(napi_env env, napi_value exports, const char* name, size_t argc, Impl impl) {
  // Entries live as long as the process: an addon is never unloaded.
  Entry* e = new Entry{name, argc, impl};
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, call, e, &fn);
  napi_set_named_property(env, exports, name, fn);
}

namespace {

napi_value info(const Args& a) {
  napi_value out, v;
  napi_create_object(a.env, &out);
  napi_create_string_utf8(a.env, cpu().name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(a.env, out, "simd", v);
  napi_set_named_property(a.env, out, "threads", number(a.env, Pool::get().threads()));
  return out;
}

napi_value setThreads(const Args& a) {
  int64_t n = a.i64(0);
  if (n < 1 || n > 1024) a.fail(0, "thread count must be in [1, 1024]");
  Pool::get().setThreads(static_cast<int>(n));
  return undefinedValue(a.env);
}

}  // namespace

}  // namespace ns

NAPI_MODULE_INIT() {
  ns::define(env, exports, "info", 0, ns::info);
  ns::define(env, exports, "setThreads", 1, ns::setThreads);
  ns::registerGemm(env, exports);
  ns::registerRows(env, exports);
  ns::registerAdamw(env, exports);
  ns::registerQuant(env, exports);
  ns::registerMmap(env, exports);
  return exports;
}
