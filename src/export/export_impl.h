/* export internals shared by export.c, merged.c, convert.c and inspect.c. Not for other modules:
 * they include export.h only. */
#ifndef LATHE_EXPORT_IMPL_H
#define LATHE_EXPORT_IMPL_H

#include "export.h"

/* llama.cpp's per-block tensor names of the seven projections (llama-arch.cpp LLM_TENSOR_*),
 * indexed by lt_module. */

/* n floats as dtype t (F32, F16, BF16 with round-to-nearest-even, or Q8_0 with ggml's reference
 * rounding; n a multiple of 32 for Q8_0) in a malloc'ed buffer the caller frees. */
void *lt_export__convert(const float *x, int64_t n, lt_dtype t);
/* The dtype a GGUF tensor with rows of row_len elements gets when `want` is asked: Q8_0 falls
 * back to F16 when row_len is not a multiple of 32 (convert_hf_to_gguf.py on QuantError). */
lt_dtype lt_export__gguf_dtype(lt_dtype want, int64_t row_len);
/* general.file_type for a whole-file dtype (llama.cpp enum llama_ftype). */
uint32_t lt_export__ftype(lt_dtype t);

/* The GGUF architecture of a config: "llama" (Llama, Mistral), "qwen2", "qwen3", "phi3",
 * "gemma2" or "gemma3". */
const char *lt_export__gguf_arch(const lt_model_config *c);
/* HF -> GGUF row order of a q/k weight [rows, cols] or bias (cols 0) of module `mod` (others and
 * qwen2 untouched). */
void lt_export__qk_to_gguf(const lt_model_config *c, int mod, float *x, int64_t rows,
                           int64_t cols);

#endif
