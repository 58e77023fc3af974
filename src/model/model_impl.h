/* model-private helpers shared by the GGUF loader (llama.c) and the Hugging Face loader (hf.c).
 * Not part of the module's interface: only the model module's .c files include this. */
#ifndef LATHE_MODEL_IMPL_H
#define LATHE_MODEL_IMPL_H

#include "model.h"

/* Allocate m->base for m->cfg (every frozen weight, the biases the config names and the RoPE
 * inverse frequencies, which it fills) and point every tensor header into it: tok_embd [V, D],
 * out_norm [D], lm_head [V, D] (tok_embd's data when tied), per layer attn_norm/ffn_norm [D],
 * w[k] [out_k, in_k], bias[k] [out_k] for biased modules. Weight data is left zeroed for the
 * caller to fill. LT_ERR_OOM when the buffer cannot be had (m->base NULL then). */
lt_status lt_model_alloc_base(lt_model *m);

/* Rows (out) and columns (in) of module k's weight under cfg. */
int64_t lt_model_module_rows(const lt_model_config *c, lt_module k);
int64_t lt_model_module_cols(const lt_model_config *c, lt_module k);
/* Does module k carry a bias under cfg? */
bool lt_model_module_has_bias(const lt_model_config *c, lt_module k);

#endif
