/*
 * The peer of `nanoseek bench quant`: llama.cpp's own matrix product (ggml_mul_mat on its CPU
 * backend) timed on the same weight bytes, activations and thread count as ours. It links the
 * prebuilt libggml that node-llama-cpp (a devDependency) ships, loads the CPU variant llama.cpp
 * itself would choose for this processor, and places the weights where llama.cpp's model loader
 * does: in the CPU_REPACK buffer for the types it repacks on x86 (Q4_0 and Q4_K, row count a
 * multiple of 8), which interleaves 8 rows for its GEMM kernels; elsewhere in plain CPU memory.
 * bench/quant-native.ts compiles this file with the system C compiler and drives it over pipes.
 *
 * Commands, one per line on stdin, answers one line on stdout:
 *   load TYPE ROWS COLS COPIES WPATH  weights (ROWS rows of COLS values of ggml type TYPE) from
 *                                     WPATH, held COPIES times (runs cycle through the copies, so
 *                                     that a working set larger than the caches streams from memory)
 *                                     -> "ok BUFFER" (the buffer type the weights went to)
 *   run M THREADS REPS XPATH YPATH    y = x·Wᵀ with x (M × COLS float32) from XPATH, REPS times
 *                                     -> the seconds of each run; y of the first run to YPATH
 *   bw MB THREADS                     the machine's read bandwidth: THREADS threads sum a buffer of
 *                                     MB megabytes (best of 5) -> GB/s
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The few ggml declarations needed (ggml.h, ggml-backend.h, ggml-alloc.h); every handle is opaque. */
struct ggml_context;
struct ggml_tensor;
struct ggml_cgraph;
typedef struct ggml_backend *ggml_backend_t;
typedef struct ggml_backend_device *ggml_backend_dev_t;
typedef struct ggml_backend_reg *ggml_backend_reg_t;
typedef struct ggml_backend_buffer_type *ggml_backend_buffer_type_t;
typedef struct ggml_backend_buffer *ggml_backend_buffer_t;
struct ggml_init_params {
  size_t mem_size;
  void *mem_buffer;
  bool no_alloc;
};
enum { GGML_TYPE_F32 = 0, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_K = 12 };
enum { GGML_BACKEND_DEVICE_TYPE_CPU = 0 };

void ggml_backend_load_all_from_path(const char *dir);
ggml_backend_dev_t ggml_backend_dev_by_type(int type);
ggml_backend_t ggml_backend_dev_init(ggml_backend_dev_t dev, const char *params);
ggml_backend_reg_t ggml_backend_dev_backend_reg(ggml_backend_dev_t dev);
void *ggml_backend_reg_get_proc_address(ggml_backend_reg_t reg, const char *name);
ggml_backend_buffer_type_t ggml_backend_dev_buffer_type(ggml_backend_dev_t dev);
const char *ggml_backend_buft_name(ggml_backend_buffer_type_t buft);
ggml_backend_buffer_t ggml_backend_alloc_ctx_tensors_from_buft(struct ggml_context *ctx, ggml_backend_buffer_type_t buft);
void ggml_backend_buffer_free(ggml_backend_buffer_t buf);
void ggml_backend_tensor_set(struct ggml_tensor *t, const void *data, size_t offset, size_t size);
void ggml_backend_tensor_get(const struct ggml_tensor *t, void *data, size_t offset, size_t size);
int ggml_backend_graph_compute(ggml_backend_t backend, struct ggml_cgraph *graph);
struct ggml_context *ggml_init(struct ggml_init_params params);
void ggml_free(struct ggml_context *ctx);
size_t ggml_tensor_overhead(void);
size_t ggml_graph_overhead(void);
size_t ggml_row_size(int type, int64_t ne);
struct ggml_tensor *ggml_new_tensor_2d(struct ggml_context *ctx, int type, int64_t ne0, int64_t ne1);
struct ggml_tensor *ggml_mul_mat(struct ggml_context *ctx, struct ggml_tensor *a, struct ggml_tensor *b);
struct ggml_cgraph *ggml_new_graph(struct ggml_context *ctx);
void ggml_build_forward_expand(struct ggml_cgraph *graph, struct ggml_tensor *tensor);

typedef void (*set_threads_fn)(ggml_backend_t, int);
typedef ggml_backend_buffer_type_t *(*extra_bufts_fn)(ggml_backend_dev_t);
/* ggml_threadpool_params is filled by ggml itself (ggml_threadpool_params_init); only its size matters here. */
struct threadpool_params {
  unsigned char opaque[4096];
};
typedef struct ggml_threadpool *ggml_threadpool_t;
void ggml_threadpool_params_init(struct threadpool_params *p, int n_threads);
typedef ggml_threadpool_t (*threadpool_new_fn)(struct threadpool_params *p);
typedef void (*set_threadpool_fn)(ggml_backend_t, ggml_threadpool_t);

static ggml_backend_dev_t dev;
static ggml_backend_t backend;
static set_threads_fn set_threads;
static ggml_backend_buffer_type_t repack_buft;
static threadpool_new_fn threadpool_new;
static set_threadpool_fn set_threadpool;
/* One persistent pool per thread count, as a llama.cpp context with an attached threadpool has: a
   pool made and joined per graph (ggml's default) would cost more than a one-product graph. */
static ggml_threadpool_t pools[65];

static struct ggml_context *wctx;
static ggml_backend_buffer_t wbuf;
static struct ggml_tensor **weights;
static int ncopies, wtype;
static int64_t wrows, wcols;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *read_file(const char *path, size_t bytes) {
  FILE *f = fopen(path, "rb");
  void *p = malloc(bytes ? bytes : 1);
  if (!f || !p || fread(p, 1, bytes, f) != bytes) {
    fprintf(stderr, "ggml-matmul: cannot read %zu bytes from %s\n", bytes, path);
    exit(2);
  }
  fclose(f);
  return p;
}

static void setup(const char *libdir) {
  ggml_backend_load_all_from_path(libdir);
  dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (!dev) {
    fprintf(stderr, "ggml-matmul: no CPU backend in %s\n", libdir);
    exit(2);
  }
  backend = ggml_backend_dev_init(dev, NULL);
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
  set_threads = (set_threads_fn)ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
  extra_bufts_fn extra = (extra_bufts_fn)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
  threadpool_new = (threadpool_new_fn)ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
  set_threadpool = (set_threadpool_fn)ggml_backend_reg_get_proc_address(reg, "ggml_backend_cpu_set_threadpool");
  for (ggml_backend_buffer_type_t *b = extra ? extra(dev) : NULL; b && *b; b++) {
    if (strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) repack_buft = *b;
  }
}

static void load(int type, int64_t rows, int64_t cols, int copies, const char *path) {
  if (wctx) {
    ggml_backend_buffer_free(wbuf);
    ggml_free(wctx);
    free(weights);
  }
  const size_t bytes = ggml_row_size(type, cols) * rows;
  void *data = read_file(path, bytes);
  struct ggml_init_params p = {ggml_tensor_overhead() * copies + 1024, NULL, true};
  wctx = ggml_init(p);
  weights = malloc(sizeof(*weights) * copies);
  for (int c = 0; c < copies; c++) weights[c] = ggml_new_tensor_2d(wctx, type, cols, rows);
  const bool repack = repack_buft && (type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_K) && rows % 8 == 0;
  ggml_backend_buffer_type_t buft = repack ? repack_buft : ggml_backend_dev_buffer_type(dev);
  wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, buft);
  if (!wbuf) {
    fprintf(stderr, "ggml-matmul: cannot allocate %d × %zu bytes\n", copies, bytes);
    exit(2);
  }
  for (int c = 0; c < copies; c++) ggml_backend_tensor_set(weights[c], data, 0, bytes);
  free(data);
  ncopies = copies;
  wtype = type;
  wrows = rows;
  wcols = cols;
  printf("ok %s\n", ggml_backend_buft_name(buft));
}

static void run(int64_t m, int threads, int reps, const char *xpath, const char *ypath) {
  float *x = read_file(xpath, sizeof(float) * m * wcols);
  struct ggml_init_params p = {ggml_tensor_overhead() * (2 + 2 * ncopies) + ggml_graph_overhead() * ncopies + 4096, NULL, true};
  struct ggml_context *ctx = ggml_init(p);
  struct ggml_tensor *xt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, wcols, m);
  struct ggml_cgraph **graphs = malloc(sizeof(*graphs) * ncopies);
  struct ggml_tensor **outs = malloc(sizeof(*outs) * ncopies);
  for (int c = 0; c < ncopies; c++) {
    outs[c] = ggml_mul_mat(ctx, weights[c], xt);
    graphs[c] = ggml_new_graph(ctx);
    ggml_build_forward_expand(graphs[c], outs[c]);
  }
  ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_dev_buffer_type(dev));
  ggml_backend_tensor_set(xt, x, 0, sizeof(float) * m * wcols);
  set_threads(backend, threads);
  if (threadpool_new && set_threadpool && threads > 0 && threads <= 64) {
    if (!pools[threads]) {
      struct threadpool_params tp;
      ggml_threadpool_params_init(&tp, threads);
      pools[threads] = threadpool_new(&tp);
    }
    set_threadpool(backend, pools[threads]);
  }
  double *times = malloc(sizeof(double) * (reps > 0 ? reps : 1));
  for (int r = 0; r < reps; r++) {
    const double t0 = now();
    ggml_backend_graph_compute(backend, graphs[r % ncopies]);
    times[r] = now() - t0;
  }
  float *y = malloc(sizeof(float) * m * wrows);
  ggml_backend_tensor_get(outs[0], y, 0, sizeof(float) * m * wrows);
  FILE *f = fopen(ypath, "wb");
  if (f) {
    fwrite(y, sizeof(float), m * wrows, f);
    fclose(f);
  }
  for (int r = 0; r < reps; r++) printf("%s%.9f", r ? " " : "", times[r]);
  printf("\n");
  free(times);
  free(y);
  free(x);
  free(graphs);
  free(outs);
  ggml_backend_buffer_free(buf);
  ggml_free(ctx);
}

struct reader {
  const uint64_t *p;
  size_t n;
  uint64_t sum;
};

static void *read_part(void *arg) {
  struct reader *r = arg;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= r->n; i += 4) {
    s0 += r->p[i];
    s1 += r->p[i + 1];
    s2 += r->p[i + 2];
    s3 += r->p[i + 3];
  }
  r->sum = s0 + s1 + s2 + s3;
  return NULL;
}

static void bandwidth(size_t mb, int threads) {
  const size_t n = mb << 17; /* uint64s */
  uint64_t *buf = malloc(n * sizeof(uint64_t));
  for (size_t i = 0; i < n; i++) buf[i] = i;
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    pthread_t t[64];
    struct reader r[64];
    const double t0 = now();
    for (int k = 0; k < threads && k < 64; k++) {
      r[k] = (struct reader){buf + k * (n / threads), n / threads, 0};
      pthread_create(&t[k], NULL, read_part, &r[k]);
    }
    for (int k = 0; k < threads && k < 64; k++) pthread_join(t[k], NULL);
    const double dt = now() - t0;
    if (dt < best) best = dt;
  }
  free(buf);
  printf("%.3f\n", n * sizeof(uint64_t) / best / 1e9);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s LIBDIR\n", argv[0]);
    return 2;
  }
  setup(argv[1]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[4096], a[2048], b[2048];
  while (fgets(line, sizeof line, stdin)) {
    int type, copies, threads, reps;
    long long rows, cols, m;
    if (sscanf(line, "load %d %lld %lld %d %2047s", &type, &rows, &cols, &copies, a) == 5) {
      load(type, rows, cols, copies, a);
    } else if (sscanf(line, "run %lld %d %d %2047s %2047s", &m, &threads, &reps, a, b) == 5) {
      run(m, threads, reps, a, b);
    } else if (sscanf(line, "bw %lld %d", &m, &threads) == 2) {
      bandwidth((size_t)m, threads);
    } else {
      fprintf(stderr, "ggml-matmul: bad command: %s", line);
      return 2;
    }
  }
  return 0;
}
