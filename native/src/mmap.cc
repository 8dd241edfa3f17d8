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

struct Mapping {
  void* base;
  size_t size;
};

void unmap(napi_env, void*, void* hint) {
  Mapping* m = static_cast<Mapping*>(hint);
  munmap(m->base, m->size);
  delete m;
}

// mmap(path, offset, length) → ArrayBuffer over bytes [offset, offset + length) of the file. The
// mapping starts at the page holding `offset`; the ArrayBuffer starts exactly at `offset`. One
// mapping per range, since one JS typed array cannot exceed 4 GiB while model files do.
napi_value mapRange(const Args& a) {
  size_t len = 0;
  napi_get_value_string_utf8(a.env, a.argv[0], nullptr, 0, &len);
  std::string path(len, '\0');
  if (napi_get_value_string_utf8(a.env, a.argv[0], path.data(), len + 1, &len) != napi_ok) a.fail(0, "not a string");
  int64_t offset = a.i64(1), length = a.i64(2);
  if (offset < 0 || length <= 0) a.fail(2, "the range must be non-empty and start at a non-negative offset");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || offset + length > st.st_size) {
    close(fd);
    throw std::runtime_error(path + ": bytes " + std::to_string(offset) + " to " + std::to_string(offset + length) + " are not inside the file");
  }
  const int64_t page = sysconf(_SC_PAGESIZE);
  const int64_t start = offset / page * page;
  const size_t size = static_cast<size_t>(offset + length - start);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, start);
  int e = errno;
  close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed: " + std::strerror(e));
  Mapping* m = new Mapping{p, size};
  napi_value out;
  if (napi_create_external_arraybuffer(a.env, static_cast<char*>(p) + (offset - start), static_cast<size_t>(length), unmap, m, &out) != napi_ok) {
    munmap(p, size);
    delete m;
    throw std::runtime_error("cannot wrap the mapping in an ArrayBuffer");
  }
  return out;
}

}  // namespace

void registerMmap(napi_env env, napi_value exports) {
  define(env, exports, "mmap", 3, mapRange);
}
#else
void registerMmap(napi_env, napi_value) {}
#endif

}  // namespace ns
