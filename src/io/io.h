/*
 * io — model and adapter file formats: GGUF (read/write), safetensors (read/write), and the
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

/* ggml tensor type ids (ggml include/ggml.h `enum ggml_type`) that lathe reads or writes; the
 * full table of names 0..LT_GGML_TYPE_COUNT-1 is behind lt_ggml_type_name(). */
enum {
    LT_GGML_F32 = 0, LT_GGML_F16 = 1, LT_GGML_Q4_0 = 2, LT_GGML_Q4_1 = 3, LT_GGML_Q8_0 = 8,
    LT_GGML_Q2_K = 10, LT_GGML_BF16 = 30,
    LT_GGML_TYPE_COUNT = 40
};

/* ggml's name for a type id ("Q2_K", "BF16", ...); "unknown" for ids >= LT_GGML_TYPE_COUNT.
 * Static string. */
const char *lt_ggml_type_name(uint32_t type);
/* Map between ggml type ids and lathe dtypes (F32, F16, BF16, Q8_0, Q4_0, Q4_1 only); false when
 * the type has no counterpart (out is then untouched). */
bool lt_ggml_type_to_dtype(uint32_t type, lt_dtype *out);
bool lt_dtype_to_ggml_type(lt_dtype t, uint32_t *out);

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
 * file and the offending key/tensor; always LT_ERR_MODEL (exit 3): missing or unreadable, or
 * not GGUF, truncated, inconsistent, or holds a tensor type lathe cannot read (the message names
 * the tensor and the type). */
lt_status lt_gguf_open(lt_gguf **out, const char *path);
/* lt_gguf_open reading only the header and the metadata (what a tokenizer needs): the tensor
 * infos are not read, so any tensor types (Q4_K, Q6_K, ...) are fine; n_tensors is 0 and
 * lt_gguf_find_tensor finds nothing. Errors as lt_gguf_open for the part it reads. */
lt_status lt_gguf_open_meta(lt_gguf **out, const char *path);
void lt_gguf_close(lt_gguf *g);

/* Key lookup; NULL when absent. */
const lt_gguf_kv *lt_gguf_find(const lt_gguf *g, const char *key);
/* Typed getters: false when the key is absent or not convertible (any integer type converts to
 * int; integer and float types to float). */
bool lt_gguf_get_int(const lt_gguf *g, const char *key, int64_t *out);
bool lt_gguf_get_float(const lt_gguf *g, const char *key, double *out);
bool lt_gguf_get_bool(const lt_gguf *g, const char *key, bool *out);
bool lt_gguf_get_str(const lt_gguf *g, const char *key, lt_gguf_str *out);
/* True when kv is an array whose elements are integers (or bools): what lt_gguf_arr_int reads.
 * Check it before lt_gguf_arr_int on a file's key: a float or string element is a bug there. */
bool lt_gguf_arr_is_int(const lt_gguf_kv *kv);
/* Element i of a numeric array kv: lt_gguf_arr_int needs an integer or bool element type
 * (lt_gguf_arr_is_int), lt_gguf_arr_float any numeric one; i < kv->arr_n. */
int64_t lt_gguf_arr_int(const lt_gguf_kv *kv, uint64_t i);
double lt_gguf_arr_float(const lt_gguf_kv *kv, uint64_t i);
/* 1 when s equals the NUL-terminated c. */
bool lt_gguf_str_eq(lt_gguf_str s, const char *c);

const lt_gguf_tensor *lt_gguf_find_tensor(const lt_gguf *g, const char *name);
/* ne[0]·ne[1]·ne[2]·ne[3] (fits int64: checked at open). */
int64_t lt_gguf_tensor_numel(const lt_gguf_tensor *t);
/* Dequantize a whole tensor into dst (numel floats), rows in file order (quant/ lt_dequant). */
void lt_gguf_tensor_to_f32(const lt_gguf_tensor *t, float *dst);

/* GGUF writer (v3, little-endian, alignment 32), for exporters and for tests that craft files.
 * Metadata setters copy key and value; setting an existing key replaces its value (the key keeps
 * its first position). Tensors are written in insertion order; their data is borrowed until
 * lt_gguf_writer_write returns. Misuse (NULL key, a dtype GGUF cannot hold, a row length that is
 * not a multiple of the block size, n_dims outside 1..4) is a bug: LT_ASSERT. */
typedef struct lt_gguf_writer lt_gguf_writer;
/* An empty writer (owned; release with lt_gguf_writer_free). */
lt_gguf_writer *lt_gguf_writer_new(void);
void lt_gguf_writer_free(lt_gguf_writer *w); /* NULL is fine */
void lt_gguf_writer_set_u32(lt_gguf_writer *w, const char *key, uint32_t v);
void lt_gguf_writer_set_i32(lt_gguf_writer *w, const char *key, int32_t v);
void lt_gguf_writer_set_u64(lt_gguf_writer *w, const char *key, uint64_t v);
void lt_gguf_writer_set_f32(lt_gguf_writer *w, const char *key, float v);
void lt_gguf_writer_set_bool(lt_gguf_writer *w, const char *key, bool v);
void lt_gguf_writer_set_str(lt_gguf_writer *w, const char *key, const char *v);
void lt_gguf_writer_set_str_arr(lt_gguf_writer *w, const char *key, const char *const *v,
                                size_t n);
void lt_gguf_writer_set_i32_arr(lt_gguf_writer *w, const char *key, const int32_t *v, size_t n);
void lt_gguf_writer_set_f32_arr(lt_gguf_writer *w, const char *key, const float *v, size_t n);
/* Add a tensor of lathe dtype t (F32, F16, BF16, Q8_0, Q4_0, Q4_1) with GGUF-order dims ne[n_dims]
 * (ne[0] = row length); data holds lt_dtype_nbytes(t, numel) bytes. */
void lt_gguf_writer_add_tensor(lt_gguf_writer *w, const char *name, lt_dtype t, int n_dims,
                               const int64_t *ne, const void *data);
/* Add a tensor with any ggml type id and nbytes raw bytes, unchecked: for crafting test files. */
void lt_gguf_writer_add_raw(lt_gguf_writer *w, const char *name, uint32_t ggml_type, int n_dims,
                            const int64_t *ne, const void *data, size_t nbytes);
/* Write the file atomically (core lt_atomic_open/commit). LT_ERR_IO naming the path on failure. */
lt_status lt_gguf_writer_write(lt_gguf_writer *w, const char *path);

/* llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute` reorders the rows of q_proj (n_head) and
 * k_proj (n_kv_head) from HF's rotate_half layout into interleaved pairs. This undoes it in place:
 * w is [rows, cols] with rows = n_head · head_dim. lt_qk_permute is the forward direction (HF ->
 * GGUF) for exporters. rows must be a positive multiple of 2·n_head (head_dim even): a caller
 * invariant (LT_ASSERT) — model loaders check n_head against the tensor shape first. Uses a
 * head-sized scratch buffer (head_dim·cols floats). */
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
/* __metadata__ value for key (owned by st), NULL when absent. */
const char *lt_safetensors_meta(const lt_safetensors *st, const char *key);
/* Convert a tensor (F32/F16/BF16; I32 and U8 are converted by value) to F32 into dst
 * (numel floats). Reads through memcpy, so unaligned data is fine. */
void lt_st_tensor_to_f32(const lt_st_tensor *t, float *dst);

/* Writer: collect tensors (data borrowed until lt_st_writer_write returns), then write the file
 * atomically. Tensors are written in insertion order, packed back to back; the JSON header is
 * padded with spaces to a multiple of 8 bytes; "__metadata__" comes first when any was set
 * (setting a key twice keeps the last value). dtype must be F32, F16, BF16, I32 or U8, ndim
 * 0..4 and shape >= 0 (LT_ASSERT). write: LT_ERR_RUNTIME naming the tensor for a duplicate or
 * reserved ("__metadata__") name, LT_ERR_IO naming the path when the file cannot be written. */
typedef struct lt_st_writer lt_st_writer;
/* new: an empty writer (owned). free: releases it (NULL is fine); borrowed data is untouched. */
lt_st_writer *lt_st_writer_new(void);
void lt_st_writer_free(lt_st_writer *w);
void lt_st_writer_add(lt_st_writer *w, const char *name, lt_dtype dtype, int ndim,
                      const int64_t *shape, const void *data);
void lt_st_writer_meta(lt_st_writer *w, const char *key, const char *value);
lt_status lt_st_writer_write(lt_st_writer *w, const char *path);

/* ---- bitsandbytes 4-bit (NF4) checkpoints -------------------------------------------------- */
/* A "bnb-4bit" Hugging Face checkpoint (what transformers' save_pretrained writes for a model
 * loaded with BitsAndBytesConfig(load_in_4bit=True); transformers quantizers/quantizer_bnb_4bit.py
 * `serialized_names`, integrations/bitsandbytes.py Bnb4bitDeserialize ->
 * bitsandbytes Params4bit.from_prequantized -> functional.py QuantState.from_dict). For a weight
 * `P` = "model.layers.N.self_attn.q_proj.weight" of shape [rows, cols] (n = rows·cols):
 *   P                                   U8  [n/2, 1]  packed NF4 codes, first element in the high
 *                                                     nibble (quant_storage uint8)
 *   P.absmax                            F32 [n/B]     per-block absmax, or, with double quant,
 *                                       U8  [n/B]     dynamic-map codes of absmax - offset
 *   P.quant_map                         F32 [16]      the NF4 code book (LT_NF4_CODE)
 *   P.nested_absmax                     F32 [ceil(n/B/256)]   (double quant only)
 *   P.nested_quant_map                  F32 [256]     lt_quant_dynamic_map() (double quant only)
 *   P.quant_state.bitsandbytes__nf4     U8  [len]     UTF-8 JSON (bitsandbytes utils.py
 *                                       pack_dict_to_tensor of QuantState.as_dict(packed=True)'s
 *                                       non-tensor items): {"quant_type": "nf4", "blocksize": B,
 *                                       "dtype": "float32", "shape": [rows, cols]} plus, with
 *                                       double quant, "nested_blocksize": 256, "nested_dtype":
 *                                       "float32", "nested_offset": offset.
 * Every companion tensor lives in the same safetensors file as P (lathe writes them together;
 * a checkpoint that splits them across shards is rejected with both names). */

/* Add the six (double quant) or four tensors above for the LT_NF4 tensor W (2-D [rows, cols],
 * W->quant an lt_nf4_state) to w under `name` (the weight's own tensor name, e.g.
 * "model.layers.0.mlp.up_proj.weight"; W->name is ignored). W's codes and state stay borrowed
 * until lt_st_writer_write returns, like every tensor added to a writer; the packed JSON bytes are
 * allocated here and kept in a side list owned on w's behalf: call lt_bnb_writer_release(w) after
 * lt_st_writer_write (or instead of it, on an error path) and before lt_st_writer_free. The
 * state's dtype field records "float32" (lathe quantizes F32 values and dequantizes to F32, so
 * bitsandbytes' dequantize_4bit returns the same F32 numbers). Errors: LT_ERR_RUNTIME when W is
 * not a 2-D LT_NF4 tensor with a state whose block count matches its size, or name + suffix does
 * not fit 512 bytes. */
lt_status lt_bnb_write_nf4(lt_st_writer *w, const char *name, const lt_tensor *W);
/* Free the JSON buffers lt_bnb_write_nf4 made for w (NULL-safe, idempotent; thread-safe). */
void lt_bnb_writer_release(lt_st_writer *w);

/* Whether `name` in st is a bitsandbytes 4-bit weight: its companion
 * "<name>.quant_state.bitsandbytes__nf4" or "...__fp4" tensor exists. */
bool lt_bnb_is_quantized(const lt_safetensors *st, const char *name);

/* Read the bnb NF4 weight `name` of expected shape [rows, cols] from st into the caller's header
 * `out` (overwritten): dtype LT_NF4, device CPU, shape [rows, cols], name NULL, data = packed codes
 * (malloc'ed copy, n/2 bytes), quant = a malloc'ed lt_nf4_state (absmax, or absmax_q + absmax2 +
 * offset), requires_grad false. Release with lt_nf4_free (quant.h). The result is bit for bit the
 * lt_nf4_quantize output that was written. Validation, each an LT_ERR_MODEL naming st's file and
 * the offending tensor with a hint: a missing companion tensor; the packed JSON not UTF-8 JSON,
 * a missing/mistyped key, quant_type other than "nf4" (fp4 is not supported), a blocksize that is
 * not a power of two in [32, 4096] or does not divide cols, nested_blocksize other than 256, a
 * non-finite nested_offset, a dtype other than float32/float16/bfloat16, or a shape other than
 * [rows, cols]; codes not U8 with n/2 elements; absmax of the wrong dtype or count; quant_map not
 * the NF4 code book bit for bit; nested_quant_map not the dynamic map bit for bit; nested_absmax
 * of the wrong dtype or count; non-finite absmax values. LT_ERR_OOM for the copies. */
lt_status lt_bnb_read_nf4(const lt_safetensors *st, const char *name, int64_t rows, int64_t cols,
                          lt_tensor *out);

/* The `quantization_config` of a bnb-4bit config.json (transformers BitsAndBytesConfig.to_dict:
 * quant_method "bitsandbytes", load_in_4bit / _load_in_4bit true, load_in_8bit false,
 * bnb_4bit_quant_type "nf4", bnb_4bit_use_double_quant, bnb_4bit_compute_dtype,
 * bnb_4bit_quant_storage "uint8", llm_int8_* at their defaults). The block size is not part of
 * it: transformers reads each weight's from its packed quant state. */
typedef struct {
    bool double_quant;      /* bnb_4bit_use_double_quant */
    lt_dtype compute_dtype; /* bnb_4bit_compute_dtype: LT_F32, LT_F16 or LT_BF16 */
} lt_bnb_config;

/* Add (or replace) "quantization_config" in the existing config.json at `path` and rewrite it
 * atomically (other keys keep their order). compute_dtype must be F32, F16 or BF16 (LT_ASSERT).
 * LT_ERR_MODEL when the file is not a JSON object, LT_ERR_IO when it cannot be read/written. */
lt_status lt_bnb_config_add(const char *path, const lt_bnb_config *c);

/* Detect a bitsandbytes quantization_config in the config.json at `path`: *found false (and
 * LT_OK) when the key is absent or null. When present it must be quant_method "bitsandbytes"
 * with load_in_4bit true and bnb_4bit_quant_type "nf4": LT_ERR_MODEL naming the file and key
 * otherwise (8-bit, fp4, another quant_method, bnb_4bit_quant_storage other than "uint8", an
 * unknown compute dtype). Missing optional keys take BitsAndBytesConfig's defaults
 * (double quant false, compute dtype float32). LT_ERR_MODEL for unreadable JSON. */
lt_status lt_bnb_config_read(const char *path, bool *found, lt_bnb_config *out);

#endif
