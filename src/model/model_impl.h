/* model-private helpers shared by the GGUF loader (llama.c) and the Hugging Face loader (hf.c).
 * Not part of the module's interface: only the model module's .c files include this. */
#ifndef LATHE_MODEL_IMPL_H
#define LATHE_MODEL_IMPL_H

#include "model.h"

/* Allocate m->base for m->cfg (every frozen weight, the biases the config names and the RoPE
 * inverse frequencies, which it fills) and point every tensor header into it: tok_embd [V, D],
 * out_norm [D], lm_head [V, D] (tok_embd's data when tied), per layer attn_norm/ffn_norm [D],
 * w[k] [out_k, in_k], bias[k] [out_k] for biased modules. Weights named by `quant_mask`
 * (lt_model_opts.modules bits) get their header (F32, shape, name) but no space: data stays
 * NULL for lt_qload_weight to fill with quantized storage. Weight data is left zeroed for the
 * caller to fill. LT_ERR_OOM when the buffer cannot be had (m->base NULL then). */
lt_status lt_model_alloc_base(lt_model *m, unsigned quant_mask);

/* Streaming quantize-on-load state shared by the GGUF and HF loaders (quantize.c). */
typedef struct {
    lt_model_opts o;      /* resolved: block_size and modules filled in */
    unsigned mask;        /* weights to quantize (0: none) */
    float *scratch;       /* F32, the largest quantized weight */
    int done, total;      /* progress */
    bool requant_logged;  /* the "dequantized, then requantized" note was printed */
    bool tty;
} lt_qload;

/* Resolve o (NULL = no quantization) for m->cfg into q and check it before any weight is read:
 * LT_ERR_RECIPE naming `names(layer 0, module)` (the file's own tensor name) when a block does
 * not divide a row, or a tied lm_head is asked for. `file` names the model in messages. */
lt_status lt_qload_init(lt_qload *q, lt_model *m, const lt_model_opts *o, const char *file,
                        void (*names)(char *buf, size_t n, int layer, int mod));
/* After m->base is allocated: allocate the scratch. LT_ERR_OOM. */
lt_status lt_qload_begin(lt_qload *q, lt_model *m);
/* Is this tensor a quantization target (its data NULL after lt_model_alloc_base)? */
static inline bool lt_qload_target(const lt_tensor *t) { return t->data == NULL; }
/* Quantize the F32 values in q->scratch (dst's shape) into dst's own storage and account for it
 * in m. `src_dtype` is the file's storage type (a quantized one is noted once in the log). */
lt_status lt_qload_weight(lt_qload *q, lt_model *m, lt_tensor *dst, lt_dtype src_dtype);
/* Take an NF4 tensor already in the file's storage (a bitsandbytes checkpoint) as dst's quantized
 * weight without requantizing it: codes and state move into dst (nf4 is consumed). Its block
 * size is the file's, whatever quantization.block_size says (noted once in the log). */
lt_status lt_qload_adopt(lt_qload *q, lt_model *m, lt_tensor *dst, lt_tensor *nf4);
/* Split a fused weight (Phi-3's qkv_proj / gate_up_proj: the members' rows one after another,
 * F32 in `all`, dst[0]->shape[1] columns) into the n member projections dst[0..n), each F32 or
 * a quantization target (through q's scratch). `src_dtype` as lt_qload_weight's. */
lt_status lt_qload_split(lt_qload *q, lt_model *m, const float *all, lt_tensor **dst, int n,
                         lt_dtype src_dtype);
/* Finish: progress line, m->n_params, free the scratch. Also called on failure (st != LT_OK). */
void lt_qload_end(lt_qload *q, lt_model *m, lt_status st);
/* Give a read-only mapping's pages of [p, p + n) back to the kernel (they are re-read from the
 * file if touched again), so a streamed load does not keep the source resident. */
void lt_release_pages(const void *p, size_t n);

/* Rows (out) and columns (in) of module k's weight under cfg. */
int64_t lt_model_module_rows(const lt_model_config *c, lt_module k);
int64_t lt_model_module_cols(const lt_model_config *c, lt_module k);
/* Does module k carry a bias under cfg? */
bool lt_model_module_has_bias(const lt_model_config *c, lt_module k);

#endif
