/*
 * Test-only bridge to llama.cpp's own quantizers: node-llama-cpp (a devDependency) ships
 * libggml-base.so, which exports ggml_quantize_chunk and dequantize_row_*. Node has no FFI, so
 * test/quant-oracle.test.ts compiles this file with the system C compiler (when there is one) and
 * pipes data through it.
 *
 *   quant-oracle q TYPE N   reads N float32 from stdin, writes the row quantized by ggml
 *   quant-oracle d TYPE N   reads one row of TYPE holding N values, writes N float32
 *
 * TYPE is the ggml type id. Everything little-endian, raw, one row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row,
                           const float *imatrix);
size_t ggml_row_size(int type, int64_t ne);
void ggml_quantize_init(int type);
void dequantize_row_q4_0(const void *x, float *y, int64_t k);
void dequantize_row_q4_1(const void *x, float *y, int64_t k);
void dequantize_row_q5_0(const void *x, float *y, int64_t k);
void dequantize_row_q5_1(const void *x, float *y, int64_t k);
void dequantize_row_q8_0(const void *x, float *y, int64_t k);
void dequantize_row_q4_K(const void *x, float *y, int64_t k);
void dequantize_row_q5_K(const void *x, float *y, int64_t k);
void dequantize_row_q6_K(const void *x, float *y, int64_t k);
void ggml_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
void ggml_bf16_to_fp32_row(const uint16_t *x, float *y, int64_t n);

static void read_all(void *buf, size_t n) {
  if (n && fread(buf, 1, n, stdin) != n) { fprintf(stderr, "short read\n"); exit(2); }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: %s q|d TYPE N\n", argv[0]); return 2; }
  const int type = atoi(argv[2]);
  const int64_t n = atoll(argv[3]);
  const size_t bytes = ggml_row_size(type, n);
  float *f = malloc(n * sizeof(float) + 1);
  unsigned char *q = malloc(bytes + 1);
  if (argv[1][0] == 'q') {
    read_all(f, n * sizeof(float));
    ggml_quantize_init(type);
    ggml_quantize_chunk(type, f, q, 0, 1, n, NULL);
    fwrite(q, 1, bytes, stdout);
  } else {
    read_all(q, bytes);
    switch (type) {
      case 0: memcpy(f, q, bytes); break;
      case 1: ggml_fp16_to_fp32_row((const uint16_t *)q, f, n); break;
      case 30: ggml_bf16_to_fp32_row((const uint16_t *)q, f, n); break;
      case 2: dequantize_row_q4_0(q, f, n); break;
      case 3: dequantize_row_q4_1(q, f, n); break;
      case 6: dequantize_row_q5_0(q, f, n); break;
      case 7: dequantize_row_q5_1(q, f, n); break;
      case 8: dequantize_row_q8_0(q, f, n); break;
      case 12: dequantize_row_q4_K(q, f, n); break;
      case 13: dequantize_row_q5_K(q, f, n); break;
      case 14: dequantize_row_q6_K(q, f, n); break;
      default: fprintf(stderr, "type %d not handled\n", type); return 2;
    }
    fwrite(f, sizeof(float), n, stdout);
  }
  return 0;
}
