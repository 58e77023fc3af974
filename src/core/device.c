/*
 * device — CUDA plumbing behind device.h, written in C against the CUDA runtime and cuBLASLt
 * C APIs. Without LATHE_CUDA only detection and a clear "no CUDA in this build" error exist;
 * every other entry point asserts (nothing can have created device memory).
 */
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LATHE_CUDA
#include <cublasLt.h>
#include <cuda_runtime.h>
#endif

void lt_device_fail(const char *what, const char *msg, const char *file, int line) {
    fprintf(stderr, "CUDA error: %s (%s) at %s:%d\n", what, msg, file, line);
    fflush(stderr);
    abort();
}

size_t lt_dev_arena_plan(const lt_dev_arena *a, size_t n) {
    size_t off = (a->used + 255) & ~(size_t)255;
    if (off > a->cap || n > a->cap - off) return SIZE_MAX;
    return off;
}

/* ---- device-agnostic memory: one branch per backend, here and nowhere else --------------- */

void lt_mem_upload(lt_device dev, void *dst, const void *host_src, size_t n) {
    if (n == 0) return;
    if (dev == LT_CUDA) lt_cuda_h2d(dst, host_src, n);
    else memcpy(dst, host_src, n);
}

void lt_mem_download(lt_device dev, void *host_dst, const void *src, size_t n) {
    if (n == 0) return;
    if (dev == LT_CUDA) lt_cuda_d2h(host_dst, src, n);
    else memcpy(host_dst, src, n);
}

void lt_mem_zero(lt_device dev, void *dst, size_t n) {
    if (n == 0) return;
    if (dev == LT_CUDA) lt_cuda_memset0(dst, n);
    else memset(dst, 0, n);
}

void lt_mem_copy(lt_device dev, void *dst, const void *src, size_t n) {
    if (n == 0 || dst == src) return;
    if (dev == LT_CUDA) lt_cuda_d2d(dst, src, n);
    else memmove(dst, src, n);
}

bool lt_device_host_visible(lt_device dev) { return dev == LT_CPU; }

const char *const lt_device_choice_names[] = {"auto", "cpu", "cuda", NULL};

lt_status lt_device_open(lt_device_choice c, int ordinal, lt_device *out) {
    *out = LT_CPU;
    if (c == LT_DEVICE_CPU || (c == LT_DEVICE_AUTO && lt_cuda_device_count() <= 0)) return LT_OK;
    lt_status st = lt_device_init(LT_CUDA, ordinal); /* its message carries the driver's reason */
    if (!st) *out = LT_CUDA;
    return st;
}

lt_status lt_buffer_alloc(lt_device dev, size_t n, const char *what, void **out) {
    if (dev != LT_CUDA) {
        *out = lt_alloc_big(n, what);
        return *out ? LT_OK : LT_ERR_OOM;
    }
    *out = lt_cuda_buffer_alloc(n, what);
    return *out ? LT_OK : LT_ERR_OOM;
}

void lt_buffer_free(lt_device dev, void *p) {
    if (dev == LT_CUDA) lt_cuda_buffer_free(p);
    else free(p);
}

void lt_tensor_upload(lt_tensor *t, const void *host_src) {
    lt_mem_upload(t->device, t->data, host_src, lt_tensor_nbytes(t));
}

void lt_tensor_download(const lt_tensor *t, void *host_dst) {
    lt_mem_download(t->device, host_dst, t->data, lt_tensor_nbytes(t));
}

void lt_tensor_zero(lt_tensor *t) { lt_mem_zero(t->device, t->data, lt_tensor_nbytes(t)); }

void lt_tensor_download_f32(const lt_tensor *t, float *host_dst) {
    const int64_t n = lt_tensor_numel(t);
    LT_ASSERT(t->dtype == LT_F32 || t->dtype == LT_BF16);
    if (t->dtype == LT_F32) {
        lt_tensor_download(t, host_dst);
    } else if (t->device == LT_CUDA) {
        lt_cuda_d2h_bf16_to_f32(host_dst, t->data, n);
    } else {
        for (int64_t i = 0; i < n; i++) host_dst[i] = lt_bf16_to_f32(((const uint16_t *)t->data)[i]);
    }
}

#ifndef LATHE_CUDA
/* ---- CPU-only build ----------------------------------------------------------------------- */

int lt_cuda_device_count(void) { return 0; }

lt_status lt_device_init(lt_device dev, int ordinal) {
    (void)ordinal;
    if (dev == LT_CPU) return LT_OK;
    return lt_error_set(LT_ERR_USAGE, "device: cuda requested, but this lathe was built without "
                        "CUDA (nvcc was not found at build time); hint: set device: cpu, or "
                        "rebuild on a machine with the CUDA toolkit (make CUDA=1)");
}
void lt_device_shutdown(void) {}
bool lt_cuda_ready(void) { return false; }
const char *lt_cuda_describe(char *buf, size_t n) {
    snprintf(buf, n, "none (built without CUDA)");
    return buf;
}
#define NO_CUDA lt_assert_fail("CUDA call in a build without CUDA", __FILE__, __LINE__)
void *lt_cuda_stream(void) { NO_CUDA; }
void *lt_cuda_copy_stream(void) { NO_CUDA; }
void *lt_cublaslt(void) { NO_CUDA; }
void *lt_cublaslt_workspace(size_t *bytes) { (void)bytes; NO_CUDA; }
void lt_cuda_sync(void) {}
lt_status lt_dev_arena_init(lt_dev_arena *a, size_t cap, const char *what) {
    (void)a, (void)cap;
    return lt_error_set(LT_ERR_USAGE, "%s: no CUDA in this build", what);
}
void lt_dev_arena_free(lt_dev_arena *a) { (void)a; }
void lt_dev_arena_reset(lt_dev_arena *a) { if (a) a->used = 0; }
void *lt_dev_arena_alloc(lt_dev_arena *a, size_t n) { (void)a, (void)n; NO_CUDA; }
void *lt_dev_arena_calloc(lt_dev_arena *a, size_t n) { (void)a, (void)n; NO_CUDA; }
lt_tensor *lt_dev_tensor(lt_arena *h, lt_dev_arena *d, lt_dtype dt, int ndim,
                         const int64_t *shape, bool zero) {
    (void)h, (void)d, (void)dt, (void)ndim, (void)shape, (void)zero;
    NO_CUDA;
}
void lt_cuda_h2d(void *d, const void *s, size_t n) { (void)d, (void)s, (void)n; NO_CUDA; }
void lt_cuda_d2h(void *d, const void *s, size_t n) { (void)d, (void)s, (void)n; NO_CUDA; }
void lt_cuda_d2d(void *d, const void *s, size_t n) { (void)d, (void)s, (void)n; NO_CUDA; }
void lt_cuda_memset0(void *d, size_t n) { (void)d, (void)n; NO_CUDA; }
void lt_cuda_h2d_f32_to_bf16(void *d, const float *s, int64_t n) { (void)d, (void)s, (void)n; NO_CUDA; }
void lt_cuda_d2h_bf16_to_f32(float *d, const void *s, int64_t n) { (void)d, (void)s, (void)n; NO_CUDA; }
void lt_cuda_add_scalar_f32(float *p, float v) { (void)p, (void)v; NO_CUDA; }
lt_status lt_dev_stager_init(lt_dev_stager *s, size_t cap) {
    (void)s, (void)cap;
    return lt_error_set(LT_ERR_USAGE, "no CUDA in this build");
}
void lt_dev_stager_free(lt_dev_stager *s) { (void)s; }
void lt_dev_stager_upload(lt_dev_stager *s, void *d, const void *src, size_t n) {
    (void)s, (void)d, (void)src, (void)n;
    NO_CUDA;
}
void lt_cuda_mem_info(size_t *used, size_t *total) { *used = *total = 0; }
void *lt_cuda_buffer_alloc(size_t n, const char *what) { (void)n, (void)what; NO_CUDA; }
void lt_cuda_buffer_free(void *p) { (void)p; }

#else
/* ---- CUDA build --------------------------------------------------------------------------- */

#define LT_CUBLAS_CHECK_C(call)                                                                  \
    do {                                                                                         \
        cublasStatus_t lt_s_ = (call);                                                           \
        if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                                      \
            lt_device_fail(#call, cublasLtGetStatusString(lt_s_), __FILE__, __LINE__);           \
    } while (0)

/* cuBLASLt workspace: NVIDIA recommends 32 MiB on Hopper (cuBLAS docs, cublasSetWorkspace). */
#define LT_LT_WORKSPACE (32u << 20)

static struct {
    bool ready;
    int ordinal;
    cudaStream_t compute, copy;
    cublasLtHandle_t lt;
    void *workspace;
} dev;

int lt_cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        lt_error_set(LT_ERR_USAGE, "no usable CUDA device: %s", cudaGetErrorString(e));
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    return n;
}

lt_status lt_device_init(lt_device d, int ordinal) {
    if (d == LT_CPU) return LT_OK;
    if (dev.ready) return LT_OK;
    int n = lt_cuda_device_count();
    if (n <= 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", n < 0 || lt_error_message()[0] ? lt_error_message()
                                                                       : "no GPU visible");
        return lt_error_set(LT_ERR_USAGE, "device: cuda requested, but %s; hint: set device: cpu "
                            "or run on a machine with an NVIDIA GPU and driver", why);
    }
    if (ordinal < 0 || ordinal >= n)
        return lt_error_set(LT_ERR_USAGE, "device ordinal %d out of range (%d CUDA devices)",
                            ordinal, n);
    LT_CUDA_CHECK(cudaSetDevice(ordinal));
    LT_CUDA_CHECK(cudaStreamCreateWithFlags(&dev.compute, cudaStreamNonBlocking));
    LT_CUDA_CHECK(cudaStreamCreateWithFlags(&dev.copy, cudaStreamNonBlocking));
    LT_CUBLAS_CHECK_C(cublasLtCreate(&dev.lt));
    LT_CUDA_CHECK(cudaMalloc(&dev.workspace, LT_LT_WORKSPACE));
    dev.ordinal = ordinal;
    dev.ready = true;
    return LT_OK;
}

void lt_device_shutdown(void) {
    if (!dev.ready) return;
    cudaStreamSynchronize(dev.compute);
    cublasLtDestroy(dev.lt);
    cudaFree(dev.workspace);
    cudaStreamDestroy(dev.compute);
    cudaStreamDestroy(dev.copy);
    memset(&dev, 0, sizeof dev);
}

bool lt_cuda_ready(void) { return dev.ready; }

const char *lt_cuda_describe(char *buf, size_t n) {
    if (!dev.ready) {
        snprintf(buf, n, "none");
        return buf;
    }
    struct cudaDeviceProp p;
    LT_CUDA_CHECK(cudaGetDeviceProperties(&p, dev.ordinal));
    snprintf(buf, n, "%s, sm_%d%d, %d SMs, %.1f GiB", p.name, p.major, p.minor,
             p.multiProcessorCount, (double)p.totalGlobalMem / (1u << 30));
    return buf;
}

#define READY LT_ASSERT(dev.ready && "lt_device_init(LT_CUDA) first")
void *lt_cuda_stream(void) { READY; return dev.compute; }
void *lt_cuda_copy_stream(void) { READY; return dev.copy; }
void *lt_cublaslt(void) { READY; return dev.lt; }
void *lt_cublaslt_workspace(size_t *bytes) {
    READY;
    *bytes = LT_LT_WORKSPACE;
    return dev.workspace;
}
void lt_cuda_sync(void) {
    if (dev.ready) LT_CUDA_CHECK(cudaStreamSynchronize(dev.compute));
}

void *lt_cuda_buffer_alloc(size_t n, const char *what) {
    READY;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n ? n : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        lt_error_set(LT_ERR_OOM, "%s: cannot allocate %.2f GiB on the GPU (%.2f GiB free of %.2f)",
                     what, (double)n / (1u << 30), (double)fr / (1u << 30),
                     (double)tot / (1u << 30));
        return NULL;
    }
    LT_CUDA_CHECK(cudaMemsetAsync(p, 0, n, (cudaStream_t)dev.compute));
    return p;
}

void lt_cuda_buffer_free(void *p) {
    if (p) LT_CUDA_CHECK(cudaFree(p));
}

lt_status lt_dev_arena_init(lt_dev_arena *a, size_t cap, const char *what) {
    READY;
    memset(a, 0, sizeof *a);
    a->what = what;
    if (cap == 0) return LT_OK;
    cudaError_t e = cudaMalloc((void **)&a->base, cap);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return lt_error_set(LT_ERR_OOM, "%s: cannot allocate %.2f GiB on the GPU (%.2f GiB free of "
                            "%.2f); hint: lower micro_batch_size or seq_len, or quantize the base "
                            "(nf4)", what, (double)cap / (1u << 30), (double)fr / (1u << 30),
                            (double)tot / (1u << 30));
    }
    a->cap = cap;
    return LT_OK;
}

void lt_dev_arena_free(lt_dev_arena *a) {
    if (!a) return;
    if (a->base) cudaFree(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void lt_dev_arena_reset(lt_dev_arena *a) { a->used = 0; }

void *lt_dev_arena_alloc(lt_dev_arena *a, size_t n) {
    size_t off = lt_dev_arena_plan(a, n);
    if (off == SIZE_MAX) {
        fprintf(stderr, "device arena '%s' exhausted: %zu bytes asked, %zu of %zu used\n",
                a->what ? a->what : "?", n, a->used, a->cap);
        LT_ASSERT(!"device arena too small (a sizing bug)");
    }
    a->used = off + n;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + off;
}

void *lt_dev_arena_calloc(lt_dev_arena *a, size_t n) {
    void *p = lt_dev_arena_alloc(a, n);
    if (n) LT_CUDA_CHECK(cudaMemsetAsync(p, 0, n, dev.compute));
    return p;
}

lt_tensor *lt_dev_tensor(lt_arena *h, lt_dev_arena *d, lt_dtype dt, int ndim,
                         const int64_t *shape, bool zero) {
    lt_tensor *t = lt_arena_calloc(h, sizeof *t);
    t->dtype = dt;
    t->device = LT_CUDA;
    lt_tensor_set_shape(t, ndim, shape);
    size_t nb = lt_tensor_nbytes(t);
    t->data = zero ? lt_dev_arena_calloc(d, nb) : lt_dev_arena_alloc(d, nb);
    return t;
}

void lt_cuda_h2d(void *dst, const void *src, size_t n) {
    READY;
    LT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, dev.compute));
    LT_CUDA_CHECK(cudaStreamSynchronize(dev.compute));
}
void lt_cuda_d2h(void *dst, const void *src, size_t n) {
    READY;
    LT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, dev.compute));
    LT_CUDA_CHECK(cudaStreamSynchronize(dev.compute));
}
void lt_cuda_d2d(void *dst, const void *src, size_t n) {
    READY;
    LT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, dev.compute));
}
void lt_cuda_memset0(void *dst, size_t n) {
    READY;
    LT_CUDA_CHECK(cudaMemsetAsync(dst, 0, n, dev.compute));
}
void lt_cuda_h2d_f32_to_bf16(void *dst, const float *src, int64_t n) {
    uint16_t *tmp = lt_xmalloc((size_t)n * 2 + 2);
    for (int64_t i = 0; i < n; i++) tmp[i] = lt_f32_to_bf16(src[i]);
    lt_cuda_h2d(dst, tmp, (size_t)n * 2);
    free(tmp);
}
void lt_cuda_d2h_bf16_to_f32(float *dst, const void *src, int64_t n) {
    uint16_t *tmp = lt_xmalloc((size_t)n * 2 + 2);
    lt_cuda_d2h(tmp, src, (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) dst[i] = lt_bf16_to_f32(tmp[i]);
    free(tmp);
}
void lt_cuda_add_scalar_f32(float *p, float v) {
    float h;
    lt_cuda_d2h(&h, p, sizeof h);
    h += v;
    lt_cuda_h2d(p, &h, sizeof h);
}

lt_status lt_dev_stager_init(lt_dev_stager *s, size_t cap) {
    READY;
    memset(s, 0, sizeof *s);
    if (cudaHostAlloc(&s->pinned, cap ? cap : 1, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        return lt_error_set(LT_ERR_OOM, "cannot pin %zu bytes of host memory for batch uploads",
                            cap);
    }
    s->cap = cap;
    cudaEvent_t ev;
    LT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    LT_CUDA_CHECK(cudaEventRecord(ev, dev.copy)); /* "previous upload done" holds initially */
    s->event = ev;
    return LT_OK;
}

void lt_dev_stager_free(lt_dev_stager *s) {
    if (!s || !s->pinned) return;
    cudaEventSynchronize((cudaEvent_t)s->event);
    cudaEventDestroy((cudaEvent_t)s->event);
    cudaFreeHost(s->pinned);
    memset(s, 0, sizeof *s);
}

void lt_dev_stager_upload(lt_dev_stager *s, void *dst, const void *src, size_t n) {
    LT_ASSERT(n <= s->cap);
    cudaEvent_t ev = (cudaEvent_t)s->event;
    LT_CUDA_CHECK(cudaEventSynchronize(ev)); /* the pinned buffer is free again */
    memcpy(s->pinned, src, n);
    LT_CUDA_CHECK(cudaMemcpyAsync(dst, s->pinned, n, cudaMemcpyHostToDevice, dev.copy));
    LT_CUDA_CHECK(cudaEventRecord(ev, dev.copy));
    LT_CUDA_CHECK(cudaStreamWaitEvent(dev.compute, ev, 0));
}

void lt_cuda_mem_info(size_t *used, size_t *total) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        (void)cudaGetLastError();
        *used = *total = 0;
        return;
    }
    *used = tot - fr;
    *total = tot;
}
#endif
