/*
 * core — status codes and error messages, logging, checked allocation, dtypes, tensors and the
 * bump arena every per-step tensor lives in.
 *
 * Error tiers (DESIGN.md §4): LT_ASSERT for invariants only a bug can break (prints file:line and
 * aborts); lt_status + lt_error_set() for everything a user can cause. Library code never exits.
 * The error message is thread-local and describes the most recent failure on this thread.
 */
#ifndef LATHE_CORE_H
#define LATHE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The release, as run manifests and reports record it. */
#define LATHE_VERSION "0.1.0"

/* ---- status and errors -------------------------------------------------------------------- */

typedef enum {
    LT_OK = 0,
    LT_ERR_USAGE,       /* bad command line (exit 2) */
    LT_ERR_RECIPE,      /* bad recipe or override (exit 2) */
    LT_ERR_MODEL,       /* unreadable / corrupt / unsupported model file (exit 3) */
    LT_ERR_DATA,        /* unreadable / corrupt input data or shard (exit 3) */
    LT_ERR_IO,          /* OS-level read/write failure on an otherwise valid file (exit 1) */
    LT_ERR_OOM,         /* an allocation the user's sizes asked for failed (exit 1) */
    LT_ERR_RUNTIME,     /* anything else at run time, e.g. NaN loss (exit 1) */
    LT_ERR_INTERRUPTED, /* SIGINT/SIGTERM after a checkpoint was written (exit 130) */
    LT_ERR_GATE,        /* trained, but the recipe's gate refused the adapter (exit 4) */
} lt_status;

/* Record a formatted message for the current thread and return `st` unchanged, so call sites read
 * `return lt_error_set(LT_ERR_DATA, "%s: ...", path);`. Messages should say what, where and a
 * hint. The message is truncated at 2 KiB. */
lt_status lt_error_set(lt_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "<prefix>: " (adds context on the way up). Returns st. */
lt_status lt_error_wrap(lt_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current thread's last message ("" if none). Valid until the next lt_error_set. */
const char *lt_error_message(void);

/* Process exit code for a status, per DESIGN.md §7: 0, 1 runtime, 2 usage/recipe, 3 model/data,
 * 130 interrupted. */
int lt_status_exit_code(lt_status st);

/* Invariant check for bugs, never for user input: prints the expression and file:line, aborts. */
#define LT_ASSERT(cond)                                                                          \
    do {                                                                                         \
        if (!(cond)) lt_assert_fail(#cond, __FILE__, __LINE__);                                  \
    } while (0)
_Noreturn void lt_assert_fail(const char *expr, const char *file, int line);

/* ---- logging (stderr) --------------------------------------------------------------------- */

typedef enum { LT_LOG_DEBUG = 0, LT_LOG_INFO, LT_LOG_WARN, LT_LOG_ERROR } lt_log_level;
/* Messages below `level` are dropped (default LT_LOG_INFO); lt_log prints one line to stderr,
 * prefixed "warning: " / "error: " by level. */
void lt_log_set_level(lt_log_level level);
void lt_log(lt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define lt_info(...) lt_log(LT_LOG_INFO, __VA_ARGS__)
#define lt_warn(...) lt_log(LT_LOG_WARN, __VA_ARGS__)

/* ---- allocation --------------------------------------------------------------------------- */

/* malloc/calloc/realloc that abort with the size on failure: for small bookkeeping allocations
 * whose failure means the machine is unusable anyway. Large user-sized buffers use
 * lt_alloc_big() and report LT_ERR_OOM instead. */
void *lt_xmalloc(size_t n);
void *lt_xcalloc(size_t count, size_t size);
void *lt_xrealloc(void *p, size_t n);
char *lt_xstrdup(const char *s);
/* 64-byte aligned, zeroed; NULL and an LT_ERR_OOM message naming `what` on failure. Free with
 * free(). */
void *lt_alloc_big(size_t n, const char *what);

/* Call first thing in main(). libgomp reads its wait policy from the environment when it is
 * loaded, before main runs, and its default spin-wait fights OpenBLAS's own worker threads for
 * the cores (SmolLM2-135M LoRA on 2 cores: 161 -> 236 tokens/s with a short spin). Unless the
 * user chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT), this sets GOMP_SPINCOUNT and
 * re-executes the program once via /proc/self/exe; if that fails it simply returns. */
void lt_tune_thread_env(char **argv);

/* Seconds on a monotonic clock. */
double lt_now(void);
/* Peak resident set size of this process in bytes (from getrusage). */
size_t lt_peak_rss(void);

/* ---- dtypes ------------------------------------------------------------------------------- */

typedef enum {
    LT_F32 = 0,
    LT_F16,
    LT_BF16,
    LT_I32,
    LT_U8,
    /* block-quantized storage, read only by dequant / matmul kernels */
    LT_Q8_0, /* GGUF: blocks of 32, F16 scale + 32 x int8 (34 bytes) */
    LT_Q4_0, /* GGUF: blocks of 32, F16 scale + 16 bytes of nibbles (18 bytes) */
    LT_Q4_1, /* GGUF: blocks of 32, F16 scale, F16 min + 16 bytes of nibbles (20 bytes) */
    LT_NF4,  /* QLoRA NormalFloat4, bitsandbytes layout */
    LT_DTYPE_COUNT
} lt_dtype;

/* "F32", "Q8_0", ...; "?" for an out-of-range value. */
const char *lt_dtype_name(lt_dtype t);
/* Elements per storage block (1 for plain types) and bytes per block. */
int64_t lt_dtype_block_elems(lt_dtype t);
size_t lt_dtype_block_bytes(lt_dtype t);
/* Bytes needed to store n elements (n must be a multiple of the block size). */
size_t lt_dtype_nbytes(lt_dtype t, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even on the way down). */
float lt_f16_to_f32(uint16_t h);
uint16_t lt_f32_to_f16(float f);
float lt_bf16_to_f32(uint16_t h);
uint16_t lt_f32_to_bf16(float f);

/* ---- tensors ------------------------------------------------------------------------------ */

typedef enum { LT_CPU = 0, LT_CUDA } lt_device;

struct lt_node;

#define LT_MAX_DIMS 4

/* A dense row-major contiguous tensor. `data` is borrowed unless the creator says otherwise:
 * per-step tensors point into the step arena, parameters into their lifetime-class buffer. */
typedef struct lt_tensor {
    lt_dtype dtype;
    lt_device device;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    void *data;
    const char *name;       /* for error messages; may be NULL */
    bool requires_grad;     /* true for trainable params and anything computed from them */
    struct lt_tensor *grad; /* same shape, F32; NULL until backward allocates it (or a param's) */
    struct lt_node *node;   /* tape node that produced this tensor; NULL for leaves */
    /* Per-format quantization state, read only by dequant / matmul kernels; borrowed (its owner
     * frees it with the data). LT_NF4: a `const lt_nf4_state *` (src/quant/quant.h: block size,
     * absmax or its double-quantized form). NULL for every other dtype: F32/F16/BF16 need none
     * and the ggml block types (Q8_0, Q4_0, Q4_1) carry their scales inline in `data`. */
    const void *quant;
} lt_tensor;

/* Element count (product of the ndim dims) and storage bytes (lt_dtype_nbytes of that count). */
int64_t lt_tensor_numel(const lt_tensor *t);
size_t lt_tensor_nbytes(const lt_tensor *t);
/* Fill the shape fields; `ndim` values follow. */
void lt_tensor_set_shape(lt_tensor *t, int ndim, const int64_t *shape);
/* Same shapes (dims and sizes)? */
bool lt_tensor_same_shape(const lt_tensor *a, const lt_tensor *b);
/* "[2, 3, 4]" into buf; returns buf. */
const char *lt_shape_str(const lt_tensor *t, char *buf, size_t n);
#define lt_f32(t) ((float *)(t)->data)

/* ---- arena -------------------------------------------------------------------------------- */

/* A bump allocator made of large blocks; reset() makes everything reusable without freeing.
 * Peak usage is tracked so a run can print its activation memory after the first step.
 * Allocations are 64-byte aligned and zeroed only when asked. Not thread-safe. */
typedef struct lt_arena_block lt_arena_block;
typedef struct {
    lt_arena_block *head;   /* current block (a singly linked list back to the first) */
    size_t block_size;      /* size of new blocks (grows to fit large requests) */
    size_t used;            /* bytes handed out since the last reset */
    size_t peak;            /* max of `used` over the arena's life */
    size_t reserved;        /* bytes malloc'ed in all blocks */
} lt_arena;

/* init: no memory yet; blocks of block_size bytes (0 = 64 MiB) are malloc'ed on demand, larger
 * for larger requests. free: releases every block (NULL is fine). reset: everything handed out
 * becomes reusable, blocks are kept, `peak` survives. */
void lt_arena_init(lt_arena *a, size_t block_size);
void lt_arena_free(lt_arena *a);
void lt_arena_reset(lt_arena *a);
/* n bytes, 64-byte aligned; aborts if the host is out of memory. */
void *lt_arena_alloc(lt_arena *a, size_t n);
void *lt_arena_calloc(lt_arena *a, size_t n);
/* A tensor header and its data in the arena; data zeroed iff `zero`. */
lt_tensor *lt_arena_tensor(lt_arena *a, lt_dtype dt, int ndim, const int64_t *shape, bool zero);
/* A position in the arena: everything allocated after lt_arena_mark() is handed out again by the
 * allocations that follow lt_arena_rewind() to it (blocks are kept, `peak` is not lowered).
 * Rewinding invalidates every pointer allocated after the mark; marks nest (rewind the inner
 * one first) and a mark taken before lt_arena_reset() is void after it. Gradient checkpointing
 * (autograd.h, lt_checkpoint) drops a segment's activations this way. */
typedef struct {
    lt_arena_block *block; /* head block at the mark; NULL when nothing was allocated yet */
    size_t block_used;     /* its `used` then */
    size_t used;           /* the arena's `used` then */
} lt_arena_pos;
lt_arena_pos lt_arena_mark(const lt_arena *a);
void lt_arena_rewind(lt_arena *a, lt_arena_pos m);

/* ---- files -------------------------------------------------------------------------------- */

/* mkdir -p. LT_ERR_IO naming the path on failure. */
lt_status lt_mkdir_p(const char *path);
/* Atomic file creation (DESIGN.md §5): lt_atomic_open() opens "<path>.tmp.<pid>" for writing;
 * lt_atomic_commit() flushes, fsyncs, closes and renames it onto `path` (then fsyncs the
 * directory); lt_atomic_abort() closes and unlinks it. `tmp` receives the temporary name and
 * must hold PATH_MAX bytes. */
lt_status lt_atomic_open(const char *path, char *tmp, FILE **fp);
lt_status lt_atomic_commit(FILE *fp, const char *tmp, const char *path);
void lt_atomic_abort(FILE *fp, const char *tmp);
/* Publish a directory built under a temporary name: rename `tmp_dir` onto `dir`. When `dir`
 * exists it is replaced only if `replace` (moved aside, then removed after the rename), else
 * LT_ERR_IO "exists". Either way a reader never sees a half-written `dir`. */
lt_status lt_dir_publish(const char *tmp_dir, const char *dir, bool replace);
/* rm -rf; errors ignored except on the top path (LT_ERR_IO). */
lt_status lt_remove_tree(const char *path);
/* Whole-buffer convenience on top of the three above. */
lt_status lt_write_file_atomic(const char *path, const void *data, size_t n);
/* Read a whole regular file into a NUL-terminated malloc'ed buffer (caller frees). LT_ERR_IO on
 * failure, message names the path; a FIFO, device or directory is refused without reading (a
 * FIFO would block, /dev/zero never ends). */
lt_status lt_read_file(const char *path, char **data, size_t *n);

/* Map a whole regular file read-only (MAP_PRIVATE). On failure returns `err` with a message naming
 * the path and the kind of file expected ("GGUF", "safetensors"). An empty file gives map NULL and
 * size 0 (the caller decides whether that is valid). Release with lt_unmap_file. */
lt_status lt_map_file(const char *path, lt_status err, const char *kind, void **map, size_t *size);
void lt_unmap_file(void *map, size_t size);

/* LT_OK when path names a regular file (after symlinks); else `err` with a message naming the
 * path, what it is (FIFO, device, directory) and `kind` ("dataset", "shard"). Never opens it, so
 * a FIFO cannot block. */
lt_status lt_require_regular(const char *path, lt_status err, const char *kind);

/* lathe's cache directory for `sub` ("shards", "locks"): $XDG_CACHE_HOME/lathe/sub, or
 * $HOME/.cache/lathe/sub when XDG_CACHE_HOME is unset or empty (XDG Base Directory spec), or
 * /tmp/.cache/lathe/sub without HOME. Not created. */
void lt_cache_dir(char *out, size_t cap, const char *sub);

/* SHA-256 (FIPS 180-4, via OpenSSL's EVP) as 64 lowercase hex chars + NUL. lt_sha256_file reads
 * regular files only (LT_ERR_IO otherwise, see lt_read_file). */
void lt_sha256_hex(const void *data, size_t n, char hex[65]);
lt_status lt_sha256_file(const char *path, char hex[65]);

/* ---- random numbers ----------------------------------------------------------------------- */

/* Functions the CPU and the CUDA kernels must compute identically are defined once, in headers
 * both compile; LT_HD makes them __host__ __device__ under nvcc. */
#ifdef __CUDACC__
#define LT_HD __host__ __device__
#else
#define LT_HD
#endif

/* splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
 * constants from Vigna's splitmix64.c): a tiny, seedable, platform-independent generator. Every
 * random choice in lathe (shuffles, LoRA init, dropout masks on CPU and GPU, sampling, the
 * train/eval split) derives from recipe seeds through these three functions, so runs are
 * reproducible bit for bit. The one definition, for host and device. */
typedef struct {
    uint64_t s;
} lt_rng;
#define LT_SPLITMIX64_GOLDEN 0x9e3779b97f4a7c15ull
/* The output function: a well-mixed 64-bit hash of the state z. */
static inline LT_HD uint64_t lt_splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* The next output of the stream whose state is *s. */
static inline LT_HD uint64_t lt_splitmix64(uint64_t *s) {
    return lt_splitmix64_mix(*s += LT_SPLITMIX64_GOLDEN);
}
/* Output j (0-based) of the stream seeded with `seed`, without state: any element is computable
 * on its own (dropout masks, kernels/kernels.h). */
static inline LT_HD uint64_t lt_splitmix64_at(uint64_t seed, uint64_t j) {
    return lt_splitmix64_mix(seed + (j + 1) * LT_SPLITMIX64_GOLDEN);
}
static inline uint64_t lt_rng_u64(lt_rng *r) { return lt_splitmix64(&r->s); }
/* Uniform in [0, 1) with 24 random bits. */
static inline float lt_rng_uniform(lt_rng *r) { return (lt_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

#endif
