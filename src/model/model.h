/*
 * model — the Llama-family decoder (Llama, SmolLM, Mistral-style GQA) built from autograd ops,
 * its frozen base weights, and the LoRA adapters attached to it by Hugging Face module name.
 *
 * Weights are held in Hugging Face's canonical layout (DESIGN.md §3): linear weights [out, in],
 * q/k rows in the rotate_half RoPE order (GGUF's permuted rows are un-permuted on load).
 * Memory: one allocation for the frozen base, one flat buffer each for adapter params and grads
 * (the optimizer's m and v mirror that flat layout, so AdamW is one loop).
 */
#ifndef LATHE_MODEL_H
#define LATHE_MODEL_H

#include "../autograd/autograd.h"
#include "../core/core.h"
#include "../io/io.h"
#include "../tokenizer/tokenizer.h"


typedef struct {
    int n_layer;
    int dim;            /* hidden size */
    int n_head;         /* query heads */
    int n_kv_head;      /* key/value heads (GQA), divides n_head */
    int head_dim;       /* dim / n_head */
    int ffn_dim;        /* SwiGLU intermediate size */
    int vocab_size;
    int context_length; /* trained context; 0 when the file does not say */
    float rope_base;    /* llama.rope.freq_base, 10000 when absent */
    float rms_eps;      /* llama.attention.layer_norm_rms_epsilon */
    bool tied;          /* lm_head shares token_embd (no output.weight in the file) */
} lt_model_config;

/* The seven adapter-able projections, in Hugging Face naming order. */
typedef enum {
    LT_MOD_Q = 0, LT_MOD_K, LT_MOD_V, LT_MOD_O, LT_MOD_GATE, LT_MOD_UP, LT_MOD_DOWN,
    LT_MOD_COUNT
} lt_module;

/* "q_proj", ..., "down_proj". */
const char *lt_module_name(lt_module m);
/* "self_attn" or "mlp": the HF parent of a module. */
const char *lt_module_parent(lt_module m);
/* Index of an HF module name, -1 if not one of the seven. */
int lt_module_from_name(const char *name);

typedef struct {
    lt_tensor attn_norm;         /* [dim] */
    lt_tensor ffn_norm;          /* [dim] */
    lt_tensor w[LT_MOD_COUNT];   /* q [Hq·Dh, dim], k/v [Hkv·Dh, dim], o [dim, Hq·Dh],
                                  * gate/up [ffn, dim], down [dim, ffn] */
    lt_tensor lora_A[LT_MOD_COUNT]; /* [r, in]; data NULL when the module is not adapted */
    lt_tensor lora_B[LT_MOD_COUNT]; /* [out, r] */
} lt_layer;

typedef struct {
    int r;
    float alpha;
    float dropout;
    bool rslora;
    unsigned targets;  /* bit (1 << lt_module) per adapted module */
    float scale;       /* alpha / r, or alpha / sqrt(r) with rsLoRA */
} lt_lora_config;

typedef struct lt_model {
    lt_model_config cfg;
    char *path;           /* the file the base came from */
    lt_tensor tok_embd;   /* [V, dim] */
    lt_tensor out_norm;   /* [dim] */
    lt_tensor lm_head;    /* [V, dim]; shares tok_embd's data when tied */
    lt_layer *layers;     /* [n_layer] */
    float *base;          /* owned: every frozen weight */
    size_t base_bytes;

    /* LoRA (absent when lora.r == 0) */
    lt_lora_config lora;
    float *lora_params;   /* owned flat buffer [n_lora] holding every A then B, layer by layer */
    float *lora_grads;    /* owned, same layout */
    lt_tensor *lora_grad_hdrs; /* owned [n_layer][LT_MOD_COUNT][2]: A's and B's grad headers */
    int64_t n_lora;
} lt_model;

/* Read the config from `llama.*` GGUF keys. LT_ERR_MODEL naming the file and key when the
 * architecture is not llama or a required key is missing or inconsistent. */
lt_status lt_model_config_from_gguf(lt_model_config *cfg, const lt_gguf *g);

/* Load a base model and its tokenizer from `path`: a GGUF file, or a Hugging Face directory
 * (config.json + model.safetensors or sharded model-*.safetensors with an index + tokenizer.json).
 * Errors name the file and key/tensor (LT_ERR_MODEL). `tok` may be NULL when not needed. */
lt_status lt_model_load(lt_model **out, lt_tokenizer **tok, const char *path);

/* Load a Llama-family base from an open GGUF: dequantize every weight to F32 and un-permute
 * q/k rows to HF layout. Errors name the file and tensor (missing tensor, wrong shape). */
lt_status lt_model_load_gguf(lt_model **out, const lt_gguf *g);
void lt_model_free(lt_model *m);

/* Attach zero-initialized-B adapters (PEFT's init: A ~ kaiming-uniform(a=√5), i.e.
 * U(-1/√in, 1/√in); B = 0, so the adapted model starts equal to the base). `seed` fixes A. */
void lt_model_add_lora(lt_model *m, const lt_lora_config *lc, uint64_t seed);

/* Training / evaluation forward over a packed micro-batch, returning logits [B·T, V].
 * tokens, pos, doc: I32 [B, T] (positions restart per document; attention never crosses doc ids).
 * `dropout_seed` varies the LoRA dropout masks per micro-batch; dropout applies only while the
 * graph records (training), never in evaluation. */
lt_tensor *lt_model_forward(lt_graph *g, lt_model *m, int B, int T, const int32_t *tokens,
                            const int32_t *pos, const int32_t *doc, uint64_t dropout_seed);

/* ---- KV-cached incremental forward (generation, batch 1) ---------------------------------- */

typedef struct {
    int max_len;  /* positions the cache can hold */
    int len;      /* positions filled */
    float *k, *v; /* owned: [n_layer, max_len, n_kv_head, head_dim] */
} lt_kv_cache;

lt_status lt_kv_cache_init(lt_kv_cache *c, const lt_model_config *cfg, int max_len);
void lt_kv_cache_free(lt_kv_cache *c);

/* Run n new tokens at positions cache->len .. +n-1, append their keys/values, and return the
 * logits of the last one: F32 [1, V] in the graph's arena. Caller keeps len + n <= max_len. */
lt_tensor *lt_model_forward_cached(lt_graph *g, lt_model *m, lt_kv_cache *cache,
                                   const int32_t *tokens, int n);

/* ---- PEFT adapters ------------------------------------------------------------------------ */
/* Layout: huggingface/peft LoraConfig + safetensors. adapter_config.json (peft_type "LORA",
 * task_type "CAUSAL_LM", r, lora_alpha, lora_dropout, target_modules, use_rslora, bias "none",
 * base_model_name_or_path) and adapter_model.safetensors with F32 tensors named
 * base_model.model.model.layers.N.{self_attn|mlp}.<module>.lora_{A,B}.weight, A [r, in],
 * B [out, r], in HF layout (no q/k permutation). */

/* Write the model's adapter to `dir` atomically: files go into a temporary sibling directory that
 * is renamed onto `dir` only when complete; an existing `dir` is replaced only if `replace`.
 * `base_name` goes into base_model_name_or_path. */
lt_status lt_peft_save(const lt_model *m, const char *dir, const char *base_name, bool replace);

/* Read a PEFT LoRA adapter from `dir` and attach it (replacing any adapter). Errors name the file
 * and key/tensor: LT_ERR_MODEL when the config is not a LoRA adapter lathe can apply (bias
 * training, DoRA, modules other than the seven projections, shapes that do not fit the base). */
lt_status lt_peft_load(lt_model *m, const char *dir);

#endif
