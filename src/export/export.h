/*
 * export — what inference servers load, written from a base model with a LoRA adapter attached
 * (DESIGN.md §5), plus the format conversions (`lathe convert`) and file summaries
 * (`lathe inspect`) built from the same writers.
 *
 * Formats:
 *   peft                PEFT LoRA adapter (vLLM, TGI, PEFT): adapter_config.json +
 *                       adapter_model.safetensors, F32, HF layout (model.h lt_peft_save).
 *   gguf-adapter        llama.cpp LoRA adapter: one GGUF, general.type = "adapter",
 *                       adapter.type = "lora", adapter.lora.alpha, tensors
 *                       blk.N.<attn_q|...|ffn_down>.weight.lora_a / .lora_b.
 *   merged-safetensors  W' = W + scale·B·A in the HF layout, sharded safetensors with
 *                       model.safetensors.index.json, config.json and tokenizer files beside.
 *   merged-gguf         llama-architecture GGUF of W', Q/K rows permuted back, llama.* keys,
 *                       tokenizer and chat template carried over.
 *
 * Every export is built in "<out>.tmp.<pid>" and renamed onto <out> only when complete
 * (core lt_dir_publish), so a failed or interrupted export never leaves a directory that looks
 * finished. An existing <out> is replaced only with `force`.
 */
#ifndef LATHE_EXPORT_H
#define LATHE_EXPORT_H

#include <stdio.h>

#include "../core/core.h"
#include "../io/io.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

typedef enum {
    LT_EXPORT_PEFT = 0,
    LT_EXPORT_GGUF_ADAPTER,
    LT_EXPORT_MERGED_SAFETENSORS,
    LT_EXPORT_MERGED_GGUF,
    LT_EXPORT_FORMAT_COUNT
} lt_export_format;

/* "peft", "gguf-adapter", "merged-safetensors", "merged-gguf", then NULL: the recipe's
 * output.exports choices and the CLI's --format values. */
extern const char *const lt_export_format_names[LT_EXPORT_FORMAT_COUNT + 1];
/* The name of one format, as in lt_export_format_names. */
const char *lt_export_format_name(lt_export_format f);
/* By name; LT_ERR_USAGE listing the names otherwise. */
lt_status lt_export_format_from_name(lt_export_format *out, const char *name);

/* vLLM's default --max-lora-rank: vllm/config/lora.py `LoRAConfig.max_lora_rank: int = 16`
 * (v0.11). An adapter of higher rank fails to load there unless the server raises the limit. */
#define LT_EXPORT_DEFAULT_MAX_RANK 16
/* Default shard size of merged safetensors: 2 GB (decimal, as transformers'
 * convert_file_size_to_int reads "2GB"). */
#define LT_EXPORT_DEFAULT_SHARD_BYTES 2000000000LL

typedef struct {
    lt_export_format format;
    lt_dtype dtype;          /* LT_DTYPE_COUNT = the format's default (lt_export_default_dtype) */
    int64_t max_shard_bytes; /* merged-safetensors: upper bound per shard (a single larger tensor
                              * gets a shard of its own) */
    int max_rank;            /* peft: refuse r above this (0 = no limit) */
    bool force;              /* replace an existing output */
    const char *name;        /* file stem inside the output directory (gguf-adapter: NAME.gguf,
                              * merged-gguf: NAME.gguf); NULL = "adapter" / "model" */
} lt_export_opts;

/* Defaults for a format: dtype LT_DTYPE_COUNT, 2 GB shards, max rank 16, no force. */
lt_export_opts lt_export_defaults(lt_export_format f);
/* peft F32 (PEFT's own files are F32 here), gguf-adapter F16 and merged-gguf F16 (the defaults of
 * llama.cpp's convert_lora_to_gguf.py / convert_hf_to_gguf.py --outtype), merged-safetensors
 * BF16 (the torch_dtype of most published Llama checkpoints). */
lt_dtype lt_export_default_dtype(lt_export_format f);
/* LT_ERR_USAGE naming the format and the dtypes it takes: peft F32; gguf-adapter and merged-gguf
 * F32, F16, BF16, Q8_0; merged-safetensors F32, F16, BF16. */
lt_status lt_export_check_dtype(lt_export_format f, lt_dtype t);
/* "f32", "f16", "bf16", "q8_0" (case-insensitive) -> dtype; LT_ERR_USAGE otherwise. */
lt_status lt_export_dtype_from_name(lt_dtype *out, const char *name);

/* "2GB", "500MB", "64KiB", "1000" (bytes) -> bytes. Units follow transformers'
 * convert_file_size_to_int: KB/MB/GB are powers of 10, KiB/MiB/GiB powers of 2. LT_ERR_USAGE for
 * anything else or a size < 1. */
lt_status lt_export_parse_size(const char *text, int64_t *bytes);

/* A file name written inside an output directory: non-empty, at most 200 bytes, no '/', not
 * starting with '.' (so neither "." nor ".." nor a hidden file). LT_ERR_USAGE naming `what` and
 * the name otherwise: nothing an export writes can land outside its directory. */
lt_status lt_export_check_name(const char *name, const char *what);

/* Whether a target server can load this adapter: r <= max_rank (max_rank > 0), with the reason
 * and the server flag to change in the message (LT_ERR_USAGE). `where` names the adapter. */
lt_status lt_export_check_servable(const lt_lora_config *lc, int max_rank, const char *where);

/* What an export reads besides the adapter. */
typedef struct {
    const lt_model *m;       /* base with (for adapter and merged formats) LoRA attached */
    const lt_tokenizer *tok; /* the base's tokenizer: merged formats need it (NULL otherwise ok) */
    const lt_gguf *gguf;     /* the base's GGUF when it came from one, else NULL: its general.* and
                              * llama.* keys are carried into GGUF outputs */
    const char *base_name;   /* base_model_name_or_path of a PEFT export; may be NULL */
} lt_export_src;

/* Open the tokenizer (and, for a GGUF file, the GGUF) of the base at `base_path` for an export of
 * model `m`. Errors as lt_gguf_open / lt_tokenizer_from_gguf / lt_tokenizer_from_hf_dir. Release
 * with lt_export_src_close (which does not free m). */
lt_status lt_export_src_open(lt_export_src *src, const lt_model *m, const char *base_path);
void lt_export_src_close(lt_export_src *src);

/* Load the base at `base_path` — a GGUF file or an HF directory — into *m, quantized as `opts`
 * says (NULL = F32; a QLoRA run's merge must dequantize the same NF4 base it trained on), and
 * open src for it as lt_export_src_open does. On failure nothing is left open. Release with
 * lt_export_src_close and lt_model_free. */
lt_status lt_export_src_load(lt_export_src *src, lt_model **m, const char *base_path,
                             const lt_model_opts *opts);

/* Write one export into the directory `out_dir`:
 *   peft                out_dir/adapter_config.json, out_dir/adapter_model.safetensors
 *   gguf-adapter        out_dir/<name|adapter>.gguf
 *   merged-safetensors  out_dir/config.json, model.safetensors or model-0000i-of-0000n.safetensors
 *                       + model.safetensors.index.json, tokenizer.json, tokenizer_config.json,
 *                       special_tokens_map.json
 *   merged-gguf         out_dir/<name|model>.gguf
 * Errors: LT_ERR_USAGE when out_dir exists without o->force, for a dtype the format does not
 * take, a bad name, an adapter above o->max_rank (peft) or no adapter attached (adapter formats);
 * LT_ERR_IO when writing fails (nothing is left at out_dir then). */
lt_status lt_export_write(const lt_export_src *src, const char *out_dir, const lt_export_opts *o);

/* Single-file writers used above and by `lathe convert` (m may have no adapter):
 * the merged GGUF of m into `path` (atomic), dtype F32/F16/BF16/Q8_0; tensors whose row length is
 * not a multiple of 32 fall back from Q8_0 to F16 (as convert_hf_to_gguf.py does on QuantError);
 * 1-D norms stay F32. */
lt_status lt_export_merged_gguf_file(const lt_export_src *src, const char *path, lt_dtype dtype);
/* The merged HF directory contents into the existing directory `dir` (no publishing). */
lt_status lt_export_merged_hf_dir(const lt_export_src *src, const char *dir, lt_dtype dtype,
                                  int64_t max_shard_bytes);

/* ---- convert ------------------------------------------------------------------------------ */

typedef enum { LT_CONVERT_TO_HF = 0, LT_CONVERT_TO_GGUF } lt_convert_to;

/* `lathe convert`: a GGUF file -> an HF directory (weights dequantized to dtype F32/F16/BF16,
 * Q/K un-permuted, config.json, tokenizer files rebuilt from the GGUF vocabulary), or an HF
 * directory -> a GGUF file (F32/F16/BF16/Q8_0). `out` must not exist unless force. Errors: as
 * lt_model_load for the source; LT_ERR_USAGE for an existing out, a source of the wrong kind or
 * a dtype the target cannot hold. */
lt_status lt_convert(const char *src_path, lt_convert_to to, const char *out, lt_dtype dtype,
                     int64_t max_shard_bytes, bool force);

/* ---- inspect ------------------------------------------------------------------------------ */

/* `lathe inspect`: a readable summary of a GGUF file, a safetensors file, an HDF5 token shard, an
 * HF model directory, a PEFT adapter directory or a run directory, with the SHA-256 of each file
 * it describes, printed to `out`. LT_ERR_USAGE when the path is none of these; the readers'
 * errors (LT_ERR_MODEL / LT_ERR_DATA naming the file) otherwise. */
lt_status lt_inspect(const char *path, FILE *out);

#endif
