/*
 * io — model and adapter file formats: GGUF (read), safetensors (read/write), and the
 * llama-architecture Q/K row permutation between GGUF and Hugging Face layouts.
 *
 * GGUF spec: ggml-org/ggml docs/gguf.md (v3, little-endian). Files are memory-mapped; every
 * offset, count and string length is checked against the file size at open, so a truncated or
 * corrupt file is an LT_ERR_MODEL naming the file (and the key or tensor) — never a crash.
 */
#ifndef LATHE_IO_H
#define LATHE_IO_H

#include "../core/core.h"

/* ---- GGUF --------------------------------------------------------------------------------- */

/* Metadata value types, numbered as in the spec. */
typedef enum {
    LT_GGUF_UINT8 = 0, LT_GGUF_INT8 = 1, LT_GGUF_UINT16 = 2, LT_GGUF_INT16 = 3,
    LT_GGUF_UINT32 = 4, LT_GGUF_INT32 = 5, LT_GGUF_FLOAT32 = 6, LT_GGUF_BOOL = 7,
    LT_GGUF_STRING = 8, LT_GGUF_ARRAY = 9, LT_GGUF_UINT64 = 10, LT_GGUF_INT64 = 11,
    LT_GGUF_FLOAT64 = 12,
} lt_gguf_type;

/* A string inside the mapping: NOT NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} lt_gguf_str;

typedef struct {
    char *key;          /* NUL-terminated copy (owned) */
    lt_gguf_type type;
    /* scalars (integers widen into i/u, floats into f) */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
        lt_gguf_str s;
    } v;
    /* arrays: element type, count, raw little-endian elements inside the mapping (unaligned;
     * read through lt_gguf_arr_*); string arrays also get an owned index of their elements */
    lt_gguf_type arr_type;
    uint64_t arr_n;
    const void *arr_data;
    lt_gguf_str *arr_str; /* [arr_n] for string arrays, else NULL */
} lt_gguf_kv;

typedef struct {
    char *name;          /* owned copy */
    uint32_t ggml_type;  /* the file's type id (ggml numbering: F32=0, F16=1, Q4_0=2, Q4_1=3,
                          * Q8_0=8, BF16=30) */
    lt_dtype dtype;      /* lathe dtype for ggml_type */
    int n_dims;
    int64_t ne[4];       /* GGUF order: ne[0] is the fastest-varying (the row length); unused = 1 */
    uint64_t offset;     /* relative to the data section */
    const void *data;    /* inside the mapping */
    size_t nbytes;
} lt_gguf_tensor;

typedef struct lt_gguf {
    char *path;
    void *map;
    size_t size;
    uint32_t version;
    int64_t n_kv;
    lt_gguf_kv *kv;
    int64_t n_tensors;
    lt_gguf_tensor *tensors;
    size_t alignment;    /* general.alignment, default 32 */
    size_t data_offset;  /* start of the tensor data section */
} lt_gguf;

/* Map and validate a GGUF file (v2 or v3). On failure *out is NULL and the message names the
 * file and the offending key/tensor: LT_ERR_IO when it cannot be opened, LT_ERR_MODEL when it is
 * not GGUF, truncated, inconsistent, or holds a tensor type lathe cannot read (the message names
 * the tensor and the type). */
lt_status lt_gguf_open(lt_gguf **out, const char *path);
void lt_gguf_close(lt_gguf *g);

/* Key lookup; NULL when absent. */
const lt_gguf_kv *lt_gguf_find(const lt_gguf *g, const char *key);
/* Typed getters: false when the key is absent or not convertible (any integer type converts to
 * int; integer and float types to float). */
bool lt_gguf_get_int(const lt_gguf *g, const char *key, int64_t *out);
bool lt_gguf_get_float(const lt_gguf *g, const char *key, double *out);
bool lt_gguf_get_bool(const lt_gguf *g, const char *key, bool *out);
bool lt_gguf_get_str(const lt_gguf *g, const char *key, lt_gguf_str *out);
/* Element i of a numeric array kv (any numeric element type). */
int64_t lt_gguf_arr_int(const lt_gguf_kv *kv, uint64_t i);
double lt_gguf_arr_float(const lt_gguf_kv *kv, uint64_t i);
/* 1 when s equals the NUL-terminated c. */
bool lt_gguf_str_eq(lt_gguf_str s, const char *c);

const lt_gguf_tensor *lt_gguf_find_tensor(const lt_gguf *g, const char *name);
/* Dequantize a whole tensor into dst (numel floats), rows in file order. */
void lt_gguf_tensor_to_f32(const lt_gguf_tensor *t, float *dst);

/* llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute` reorders the rows of q_proj (n_head) and
 * k_proj (n_kv_head) from HF's rotate_half layout into interleaved pairs. This undoes it in place:
 * w is [rows, cols] with rows = n_head · head_dim. lt_qk_permute is the forward direction (HF ->
 * GGUF) for exporters. */
void lt_qk_unpermute(float *w, int64_t rows, int64_t cols, int n_head);
void lt_qk_permute(float *w, int64_t rows, int64_t cols, int n_head);

/* ---- safetensors -------------------------------------------------------------------------- */
/* Spec: huggingface/safetensors README — u64 LE header length, JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then data. */

typedef struct {
    char *name;
    lt_dtype dtype;      /* F32, F16, BF16, I32, U8 */
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    const void *data;    /* inside the mapping */
    size_t nbytes;
} lt_st_tensor;

typedef struct lt_safetensors {
    char *path;
    void *map;
    size_t size;
    int n_tensors;
    lt_st_tensor *tensors;
    int n_meta;
    char **meta_keys, **meta_values; /* __metadata__ */
} lt_safetensors;

/* Map and validate: header length within 100 MB and the file, JSON well-formed, every tensor's
 * offsets inside the data section, sized dtype·shape, non-overlapping. LT_ERR_MODEL with the file
 * and tensor named otherwise. */
lt_status lt_safetensors_open(lt_safetensors **out, const char *path);
void lt_safetensors_close(lt_safetensors *st);
const lt_st_tensor *lt_safetensors_find(const lt_safetensors *st, const char *name);
/* Convert a tensor (F32/F16/BF16) to F32 into dst. */
void lt_st_tensor_to_f32(const lt_st_tensor *t, float *dst);

/* Writer: collect tensors (data borrowed until lt_st_writer_write returns), then write the file
 * atomically. Tensors are written in insertion order, 8-byte aligned header. */
typedef struct lt_st_writer lt_st_writer;
lt_st_writer *lt_st_writer_new(void);
void lt_st_writer_free(lt_st_writer *w);
void lt_st_writer_add(lt_st_writer *w, const char *name, lt_dtype dtype, int ndim,
                      const int64_t *shape, const void *data);
void lt_st_writer_meta(lt_st_writer *w, const char *key, const char *value);
lt_status lt_st_writer_write(lt_st_writer *w, const char *path);

#endif
