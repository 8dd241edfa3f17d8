// Files mapped into memory: a model's tensors are read in place from the page cache instead of being
// copied into freshly allocated buffers (which must first be faulted in: on this kind of machine
// that alone is seconds per gigabyte). The mapping is private and copy-on-write, so a stray write
// changes the process's copy, never the file; it is unmapped when the ArrayBuffer is collected.
#include "napi.h"

#include <cerrno>
#include <cstring>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define NS_HAVE_MMAP 1
#endif

namespace ns {

#ifdef NS_HAVE_MMAP
namespace {

void unmap(napi_env, void* data, void* hint) {
  munmap(data, reinterpret_cast<size_t>(hint));
}

// mmap(path) → ArrayBuffer over the whole file (null for an empty file).
napi_value mapFile(const Args& a) {
  size_t len = 0;
  napi_get_value_string_utf8(a.env, a.argv[0], nullptr, 0, &len);
  std::string path(len, '\0');
  if (napi_get_value_string_utf8(a.env, a.argv[0], path.data(), len + 1, &len) != napi_ok) a.fail(0, "not a string");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error(path + ": " + std::strerror(e));
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    close(fd);
    napi_value nul;
    napi_get_null(a.env, &nul);
    return nul;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed: " + std::strerror(e));
  napi_value out;
  if (napi_create_external_arraybuffer(a.env, p, size, unmap, reinterpret_cast<void*>(size), &out) != napi_ok) {
    munmap(p, size);
    throw std::runtime_error("cannot wrap the mapping in an ArrayBuffer");
  }
  return out;
}

}  // namespace

void registerMmap(napi_env env, napi_value exports) {
  define(env, exports, "mmap", 1, mapFile);
}
#else
void registerMmap(napi_env, napi_value) {}
#endif

}  // namespace ns
