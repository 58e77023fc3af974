/*
 * device — CUDA device plumbing: detection, error macros, device arenas (one cudaMalloc per
 * lifetime class), streams, the cuBLASLt handle, and host<->device copies with pinned staging.
 *
 * Plain C API usable from any module. When lathe is built without CUDA (LATHE_CUDA undefined) the
 * same functions exist: detection reports no device, lt_device_init(LT_CUDA) fails with a message
 * saying the build has no CUDA, and nothing else may be called (LT_ASSERT). So callers never need
 * #ifdefs to say "device: cuda is not available here".
 *
 * Device numerics (DESIGN.md §3, decided here for the CUDA backend):
 *   - activations (every op output except losses) are LT_BF16 on device; lt_tensor.dtype says so;
 *   - every grad is LT_F32 (activation grads and parameter grads), so backward accumulation (+=)
 *     never rounds to bf16; GEMMs read a bf16 copy of an F32 grad made in the step arena;
 *   - frozen base weights are LT_BF16 (or LT_Q8_0 / LT_NF4, dequantized to bf16 tiles per GEMM);
 *     norm weights may be LT_F32 or LT_BF16;
 *   - adapter params (LoRA A, B) are F32 master copies in one flat buffer; the optimizer moments
 *     mirror that layout (F32); each linear makes bf16 copies of A and B for its GEMMs;
 *   - losses and saved statistics (rstd, lse) are F32.
 *
 * Lifetime classes (one lt_dev_arena each, sized before the first step so peak memory is known):
 *   LT_DEV_BASE (frozen weights), LT_DEV_ADAPTER (A/B masters), LT_DEV_GRADS (adapter grads),
 *   LT_DEV_OPTIM (AdamW m, v), LT_DEV_STEP (activations, activation grads, scratch; reset after
 *   each optimizer step).
 *
 * Streams: one compute stream (every kernel and GEMM) and one copy stream (batch uploads from
 * pinned staging, ordered before compute with an event). Device API failures abort with
 * file:line (LT_CUDA_CHECK / LT_CUBLAS_CHECK, DESIGN.md §4); out-of-memory at arena creation is a
 * user-caused LT_ERR_OOM.
 */
#ifndef LATHE_DEVICE_H
#define LATHE_DEVICE_H

#include "core.h"

#ifdef LATHE_CUDA
#include <cuda_runtime_api.h>
/* Abort with the call, file:line and CUDA's message when a runtime call fails (a device failure
 * is not recoverable mid-step). */
#define LT_CUDA_CHECK(call)                                                                      \
    do {                                                                                         \
        cudaError_t lt_e_ = (call);                                                              \
        if (lt_e_ != cudaSuccess)                                                                \
            lt_device_fail(#call, cudaGetErrorString(lt_e_), __FILE__, __LINE__);                \
    } while (0)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Prints "CUDA error: <what> (<msg>) at file:line" and aborts. */
#if defined(__cplusplus)
[[noreturn]]
#else
_Noreturn
#endif
void lt_device_fail(const char *what, const char *msg, const char *file, int line);

/* Number of usable CUDA devices: 0 when built without CUDA, when there is no driver or GPU, or
 * when cudaGetDeviceCount fails for any reason (the reason is kept in lt_error_message()). */
int lt_cuda_device_count(void);

/* What a user asks for: the recipe's train.device and --device, in lt_device_choice_names order
 * ("auto", "cpu", "cuda"). */
typedef enum { LT_DEVICE_AUTO = 0, LT_DEVICE_CPU, LT_DEVICE_CUDA } lt_device_choice;
extern const char *const lt_device_choice_names[]; /* NULL-terminated */
/* The device a choice means on this machine, initialized: auto is CUDA when a GPU is visible
 * (lt_cuda_device_count) and the CPU otherwise; cuda without a usable GPU is LT_ERR_USAGE (exit
 * 2) carrying the driver's reason and the hint "device: cpu". `ordinal`: the GPU to take (a
 * data-parallel rank's local rank). */
lt_status lt_device_open(lt_device_choice c, int ordinal, lt_device *out);

/* Select the device for this process. LT_CPU: always LT_OK. LT_CUDA: creates the streams, the
 * cuBLASLt handle and workspace on device `ordinal`; LT_ERR_USAGE when the build has no CUDA or no
 * GPU is visible (message says which and hints "device: cpu"). Idempotent. */
lt_status lt_device_init(lt_device dev, int ordinal);
/* Release streams and handles (no-op when never initialized). */
void lt_device_shutdown(void);
/* True once lt_device_init(LT_CUDA) succeeded. */
bool lt_cuda_ready(void);
/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs" into buf (or "none"). */
const char *lt_cuda_describe(char *buf, size_t n);

/* Opaque handles as void* so C callers need no CUDA headers: cudaStream_t, cublasLtHandle_t. */
void *lt_cuda_stream(void);      /* compute stream */
void *lt_cuda_copy_stream(void); /* uploads */
void *lt_cublaslt(void);
void *lt_cublaslt_workspace(size_t *bytes);
/* Block the host until the compute stream is idle. */
void lt_cuda_sync(void);

/* ---- device arenas ------------------------------------------------------------------------ */

typedef enum { LT_DEV_BASE = 0, LT_DEV_ADAPTER, LT_DEV_GRADS, LT_DEV_OPTIM, LT_DEV_STEP,
               LT_DEV_CLASS_COUNT } lt_dev_class;

/* One cudaMalloc of `cap` bytes handed out by a bump pointer, 256-byte aligned (cuBLASLt and
 * 16-byte vector loads want that). reset() makes all of it reusable; peak is tracked. */
typedef struct lt_dev_arena {
    char *base;        /* device pointer */
    size_t cap, used, peak;
    const char *what;  /* for messages: "frozen base", "activations", ... */
} lt_dev_arena;

/* LT_ERR_OOM naming `what`, the size and the free memory when cudaMalloc fails. */
lt_status lt_dev_arena_init(lt_dev_arena *a, size_t cap, const char *what);
void lt_dev_arena_free(lt_dev_arena *a);
void lt_dev_arena_reset(lt_dev_arena *a);
/* Aborts (LT_ASSERT-style message with sizes) when the arena is exhausted: capacities are
 * computed up front from the model and batch shapes, so overflow is a sizing bug. */
void *lt_dev_arena_alloc(lt_dev_arena *a, size_t n);
/* Same, zeroed with cudaMemsetAsync on the compute stream. */
void *lt_dev_arena_calloc(lt_dev_arena *a, size_t n);
/* Bookkeeping only (no device): the aligned offset the next n-byte allocation would get, or
 * SIZE_MAX if it does not fit. Host-testable. */
size_t lt_dev_arena_plan(const lt_dev_arena *a, size_t n);

/* A tensor header from the host arena `h` whose data lives in device arena `d` (zeroed iff
 * `zero`). device = LT_CUDA. */
lt_tensor *lt_dev_tensor(lt_arena *h, lt_dev_arena *d, lt_dtype dt, int ndim,
                         const int64_t *shape, bool zero);

/* ---- copies ------------------------------------------------------------------------------- */

/* Synchronous copies on the compute stream (ordered after queued kernels). */
void lt_cuda_h2d(void *dst, const void *src, size_t n);
void lt_cuda_d2h(void *dst, const void *src, size_t n);
void lt_cuda_d2d(void *dst, const void *src, size_t n);
void lt_cuda_memset0(void *dst, size_t n);
/* Upload n floats as bf16 (converted on the host, round to nearest even). */
void lt_cuda_h2d_f32_to_bf16(void *dst, const float *src, int64_t n);
/* Download n bf16 values as floats. */
void lt_cuda_d2h_bf16_to_f32(float *dst, const void *src, int64_t n);
/* *p += v for one device float (the loss-grad seed in lt_backward). */
void lt_cuda_add_scalar_f32(float *p, float v);

/* Pinned staging for batch uploads: stage() copies host bytes into a pinned buffer and queues an
 * async copy on the copy stream followed by an event; the compute stream waits on that event
 * before the next kernel, so the upload of batch k+1 overlaps compute of batch k when the caller
 * stages ahead. One stager per input stream of batches; cap is the largest batch in bytes. */
typedef struct {
    void *pinned; /* host, cudaHostAlloc'ed, cap bytes */
    size_t cap;
    void *event;  /* cudaEvent_t */
} lt_dev_stager;
/* init: cap bytes of pinned host memory and an event (the device must be initialized); LT_ERR_OOM
 * when the memory cannot be pinned, LT_ERR_USAGE in a build without CUDA. free: releases both (a
 * zeroed stager is fine). */
lt_status lt_dev_stager_init(lt_dev_stager *s, size_t cap);
void lt_dev_stager_free(lt_dev_stager *s);
/* dst (device) <- src (host, n <= cap bytes). Waits for the previous upload through this stager
 * to finish reading the pinned buffer before overwriting it. */
void lt_dev_stager_upload(lt_dev_stager *s, void *dst, const void *src, size_t n);

/* ---- device-agnostic memory (the CPU is a backend behind the same calls) ---------------------
 * What model, train, eval and checkpoint code uses instead of memcpy / memset on tensor data:
 * `dev` says where the non-host side lives (LT_CPU: plain memcpy / memset; LT_CUDA: synchronous
 * copies on the compute stream, ordered after queued kernels). Host pointers are ordinary memory;
 * n in bytes. On LT_CUDA the device must be initialized (lt_device_init). */
void lt_mem_upload(lt_device dev, void *dst, const void *host_src, size_t n);
void lt_mem_download(lt_device dev, void *host_dst, const void *src, size_t n);
void lt_mem_zero(lt_device dev, void *dst, size_t n);
void lt_mem_copy(lt_device dev, void *dst, const void *src, size_t n); /* both on dev */
/* A zeroed buffer of n bytes on dev that lives until lt_buffer_free (an adapter-sized optimizer
 * state, say): CPU lt_alloc_big, CUDA one cudaMalloc. LT_ERR_OOM naming `what`. Whether the host
 * can read it directly (the CPU) or needs a mirror (lt_device_host_visible). */
lt_status lt_buffer_alloc(lt_device dev, size_t n, const char *what, void **out);
void *lt_cuda_buffer_alloc(size_t n, const char *what); /* its CUDA half: NULL + LT_ERR_OOM */
void lt_cuda_buffer_free(void *p);
void lt_buffer_free(lt_device dev, void *p);
bool lt_device_host_visible(lt_device dev);
/* Whole-tensor forms on t->device: lt_tensor_nbytes(t) bytes from / to host memory, or zeroed. */
void lt_tensor_upload(lt_tensor *t, const void *host_src);
void lt_tensor_download(const lt_tensor *t, void *host_dst);
void lt_tensor_zero(lt_tensor *t);
/* An F32 or BF16 tensor's values as floats on the host (numel of them): device activations are
 * bf16, so a forward's logits read back through this. */
void lt_tensor_download_f32(const lt_tensor *t, float *host_dst);

/* Bytes in use by the device (cudaMemGetInfo total - free) and the device's total. */
void lt_cuda_mem_info(size_t *used, size_t *total);

#ifdef __cplusplus
}
#endif

#endif
