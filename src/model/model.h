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


/* The most decoder layers a config may have (HF num_hidden_layers, GGUF <arch>.block_count). */
#define LT_MAX_LAYERS 1024

/* Decoder families lathe builds; they differ in config keys, which projections carry a bias,
 * sliding windows, Qwen3's per-head q/k RMSNorm, and Gemma's (1 + w) norms, scaled embeddings,
 * GeGLU, norms after attention and MLP, soft-capping and query scale (transformers
 * modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_qwen3.py,
 * modeling_gemma2.py, modeling_gemma3.py), and Phi-3's fused qkv_proj / gate_up_proj
 * (modeling_phi3.py). */
typedef enum {
    LT_ARCH_LLAMA = 0, LT_ARCH_MISTRAL, LT_ARCH_QWEN2, LT_ARCH_QWEN3, LT_ARCH_GEMMA2, LT_ARCH_GEMMA3,
    LT_ARCH_PHI3
} lt_arch;

/* RoPE frequency scaling (transformers modeling_rope_utils.py ROPE_INIT_FUNCTIONS): "default"
 * (none), "linear" (inv_freq / factor) and "llama3" (_compute_llama3_parameters). */
typedef enum { LT_ROPE_DEFAULT = 0, LT_ROPE_LINEAR, LT_ROPE_LLAMA3 } lt_rope_type;

typedef struct {
    lt_rope_type type;
    float factor;           /* linear, llama3: > 0 */
    float low_freq_factor;  /* llama3 */
    float high_freq_factor; /* llama3: > low_freq_factor */
    int original_context;   /* llama3: original_max_position_embeddings */
} lt_rope_scaling;

typedef struct {
    lt_arch arch;
    int n_layer;
    int dim;            /* hidden size */
    int n_head;         /* query heads */
    int n_kv_head;      /* key/value heads (GQA), divides n_head */
    int head_dim;       /* per-head size, even; dim / n_head unless the model says otherwise
                         * (HF head_dim, GGUF llama.attention.key_length): q_proj is
                         * [n_head·head_dim, dim], o_proj [dim, n_head·head_dim] */
    int ffn_dim;        /* SwiGLU intermediate size */
    int vocab_size;
    int context_length; /* trained context (max_position_embeddings); 0 when the file does not say */
    float rope_base;    /* rope_theta / llama.rope.freq_base, 10000 when absent */
    lt_rope_scaling rope_scaling;
    float rms_eps;      /* rms_norm_eps / llama.attention.layer_norm_rms_epsilon */
    bool tied;          /* lm_head shares the token embedding (no lm_head / output.weight) */
    bool qkv_bias;      /* q/k/v projections carry a bias (Qwen2; Llama attention_bias) */
    bool o_bias;        /* o_proj carries a bias (Llama / Qwen3 attention_bias) */
    bool qk_norm;       /* Qwen3, Gemma 3: RMSNorm over each query and key head (weights
                         * [head_dim], eps rms_eps) after q_proj / k_proj, before RoPE */
    /* Gemma (0 / false / SiLU everywhere else): */
    lt_act act;         /* MLP activation: SiLU (SwiGLU) or tanh-GELU (GeGLU) */
    float norm_offset;  /* every RMSNorm weight applies as (norm_offset + w): Gemma 1 */
    float embed_scale;  /* embeddings times this (Gemma: sqrt(hidden_size)); 0 = 1 */
    bool sandwich_norm; /* Gemma 2/3: RMSNorm on the attention and MLP outputs too
                         * (post_attention_layernorm, post_feedforward_layernorm) */
    float attn_scale;   /* attention score scale; 0 = 1/sqrt(head_dim) (Gemma:
                         * query_pre_attn_scalar^-0.5) */
    float attn_softcap; /* attention logit soft-capping, 0 = none (Gemma 2) */
    float final_softcap;/* final logit soft-capping, 0 = none (Gemma 2) */
    float rope_local_base; /* Gemma 3: RoPE base of the sliding layers (default scaling), 0 =
                            * the sliding layers use rope_base and rope_scaling too */
    bool fused;         /* Phi-3/Phi-4: the checkpoint stores q/k/v as one qkv_proj and gate/up
                         * as one gate_up_proj (lt_model_adapter_group) */
    int sliding_window; /* sliding-window attention width in tokens, 0 = none: a query sees
                         * itself and the sliding_window - 1 tokens before it (lt_attention) on
                         * the layers marked in swa_layers */
    uint64_t swa_layers[LT_MAX_LAYERS / 64]; /* bit l: layer l uses sliding_window (Mistral:
                                              * every layer; Qwen2: layer >= max_window_layers
                                              * when use_sliding_window; or HF layer_types) */
    int bos_id, eos_id; /* bos_token_id / eos_token_id, -1 when unknown */
    int pad_id;         /* pad_token_id, -1 when unknown (kept for config.json round trips: some
                         * classes default it, Phi3Config to 32000, and build embeddings with it) */
    lt_dtype dtype;     /* storage dtype of the source weights (torch_dtype): F32, F16 or BF16 */
} lt_model_config;

/* The sliding window of layer l: c->sliding_window when l is a sliding layer, else 0 (attend
 * over the whole causal prefix). */
int lt_model_layer_window(const lt_model_config *c, int l);
/* Mark layers [from, n_layer) as sliding layers of width `window` (window 0 clears them all). */
void lt_model_set_swa(lt_model_config *c, int window, int from);
/* The number of sliding layers, and in *from the first layer of the suffix they form when they
 * are exactly layers [*from, n_layer) (else *from = -1). */
int lt_model_swa_layers(const lt_model_config *c, int *from);

/* Fused projections (Phi-3, transformers modeling_phi3.py): "qkv_proj" holds the q, k, v rows
 * and "gate_up_proj" the gate then up rows of one weight. lathe keeps the seven projections
 * apart for the base (split on load, concatenated on export) and gives each fused module ONE
 * adapter, as PEFT does: A [r, in] shared by the members and B [rows of all members, r] whose
 * consecutive row blocks are the members' B. So the adapter modules of a model are its groups:
 * one projection each, or qkv_proj (3) and gate_up_proj (2) when c->fused. */

/* The adapter module containing projection k under c: returns the member count (1..3), sets
 * *first to its first projection and *name (when not NULL) to its Hugging Face name. */
int lt_model_adapter_group(const lt_model_config *c, int k, int *first, const char **name);
/* The projection bits (1 << lt_module) of the module named `name` under c — an adapter module
 * name or one of the seven projection names — or 0 when c has no such module. */
unsigned lt_model_adapter_bits(const lt_model_config *c, const char *name);
/* llama.cpp's per-block stem of the GGUF tensor that holds projection k under c: "attn_q", ...,
 * "ffn_down"; for a fused model "attn_qkv" (q, k, v) and "ffn_up" (gate then up rows, llama.cpp's
 * Phi-3 layout). */
const char *lt_model_gguf_stem(const lt_model_config *c, int k);
/* llama.cpp's Gemma GGUF conventions, shared by the reader (gguf_config.c) and the writer
 * (export/merged.c): the query_pre_attn_scalar llama.cpp implies (src/models/gemma2.cpp,
 * gemma3.cpp: hidden / heads for the 27B layouts, 46 layers for Gemma 2 and 62 for Gemma 3,
 * else head_dim), and the sliding pattern n of c's layers (layer l slides iff (l + 1) % n != 0;
 * n > n_layer: none slides), 0 when they follow no such pattern. */
float lt_model_gguf_gemma_qpas(const lt_model_config *c);
int lt_model_swa_pattern(const lt_model_config *c);
/* Validate target bits for c: a fused module is adapted whole. LT_ERR_RECIPE naming `what`
 * (e.g. "lora.target_modules") and the fused module when bits cover part of one. */
lt_status lt_model_check_targets(const lt_model_config *c, unsigned bits, const char *what);

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
    lt_tensor q_norm, k_norm;    /* [head_dim], frozen; data NULL unless cfg.qk_norm */
    lt_tensor post_attn_norm, post_ffn_norm; /* [dim]; data NULL unless cfg.sandwich_norm */
    lt_tensor w[LT_MOD_COUNT];   /* q [Hq·Dh, dim], k/v [Hkv·Dh, dim], o [dim, Hq·Dh],
                                  * gate/up [ffn, dim], down [dim, ffn] */
    lt_tensor bias[LT_MOD_COUNT];   /* [out], frozen; data NULL when the module has none (only
                                     * q/k/v with qkv_bias, o with o_bias) */
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

/* ---- quantized frozen base (QLoRA, Dettmers et al., arXiv 2305.14314) ---------------------- */

/* Storage of the frozen projection weights. NF4 (+ double quantization) is QLoRA's format as
 * bitsandbytes lays it out (src/quant/quant.h); Q8_0 is ggml's 8-bit block format. */
typedef enum { LT_QUANT_NONE = 0, LT_QUANT_NF4, LT_QUANT_Q8_0 } lt_quant_type;

/* lt_model_opts.modules: bit (1 << lt_module) per projection, plus this bit for an untied
 * lm_head (the linear kernel reads quantized W; the embedding lookup reads F32 only, so
 * embed_tokens, and an lm_head tied to it, stay F32). Norms, biases and RoPE tables are always
 * F32. */
#define LT_QUANT_LM_HEAD (1u << LT_MOD_COUNT)
#define LT_QUANT_ALL_PROJ ((1u << LT_MOD_COUNT) - 1u)

/* Options of lt_model_load_opts (quantization of the frozen base). A NULL pointer, or type LT_QUANT_NONE, loads every weight as
 * F32 (the plain LoRA base). */
typedef struct {
    lt_quant_type type;
    bool double_quant;  /* NF4: quantize the per-block absmax again (QLoRA §3 "Double
                         * Quantization": 8-bit dynamic codes in blocks of 256) */
    int64_t block_size; /* NF4 elements per absmax block (power of two in [32, 4096]; 0 = 64);
                         * Q8_0 blocks are always 32 */
    unsigned modules;   /* which weights to quantize (see LT_QUANT_LM_HEAD); 0 = all seven
                         * projections */
    bool progress;      /* "quantizing 150/150 tensors to NF4..." on stderr */
} lt_model_opts;

/* "none", "nf4", "q8_0" (the recipe's quantization.type values, in enum order). */
const char *lt_quant_type_name(lt_quant_type t);

typedef struct lt_model {
    lt_model_config cfg;
    char *path;           /* the file or HF directory the base came from */
    lt_tensor tok_embd;   /* [V, dim] */
    lt_tensor out_norm;   /* [dim] */
    lt_tensor lm_head;    /* [V, dim]; shares tok_embd's data when tied */
    lt_layer *layers;     /* [n_layer] */
    lt_tensor rope_inv_freq; /* [head_dim/2]: RoPE inverse frequencies (lt_rope_inv_freq) */
    lt_tensor rope_inv_freq_local; /* [head_dim/2] of the sliding layers when
                                    * cfg.rope_local_base > 0, else data NULL */
    float *base;          /* owned: every frozen F32 weight (all of them unless quantized) */
    size_t base_bytes;    /* bytes of `base` */
    /* Quantized projections (lt_model_opts): each such lt_tensor (layers[l].w[k], and
     * lm_head when LT_QUANT_LM_HEAD) has dtype NF4 or Q8_0 and owns its data (and, for NF4, its
     * lt_nf4_state in .quant), released by lt_model_free. */
    lt_model_opts quant;   /* what was applied (type LT_QUANT_NONE: nothing) */
    size_t quant_bytes;       /* storage of the quantized weights: codes + scales/states */
    int64_t n_quant_params;   /* elements stored quantized */
    int64_t n_params;         /* every frozen base parameter (F32 and quantized) */

    /* LoRA (absent when lora.r == 0) */
    lt_lora_config lora;
    float *lora_params;   /* owned flat buffer [n_lora] holding every A then B, layer by layer */
    float *lora_grads;    /* owned, same layout */
    lt_tensor *lora_grad_hdrs; /* owned [n_layer][LT_MOD_COUNT][2]: A's and B's grad headers */
    int64_t n_lora;
    /* Where the forward runs and the live adapter lives (lt_model_to_device). On the CPU the
     * live buffers are lora_params / lora_grads; on CUDA they are device copies in the same flat
     * layout, lora_params is the host mirror (lt_model_adapter_to_host / _to_device), and every
     * frozen tensor points into the device's base arena. */
    lt_device device;
    float *train_params;      /* [n_lora] live adapter on `device` */
    float *train_grads;       /* [n_lora] its grads on `device` */
    struct lt_model_dev *dev; /* CUDA: the device arenas and NF4 states; NULL on the CPU */
} lt_model;

/* Move a loaded model (adapter added or not) to `dev` for training, evaluation or generation
 * (device_model.c): on CUDA, one device arena for the frozen base, tensor by tensor — matrices
 * bf16 (F32 converted; a ggml Q4 format dequantized), Q8_0 and NF4 kept quantized with NF4's
 * state arrays on the device, vectors (norms, biases, RoPE frequencies) F32 — then the host base
 * is released; the adapter and its grads in two more arenas (core/device.h lifetime classes).
 * The CPU is a no-op. Call once, after lt_model_add_lora and any adapter load (init_from);
 * lt_device_init(dev) first. LT_ERR_MODEL naming the tensor when a weight dtype cannot run on
 * the device (lt_op_supports), LT_ERR_OOM naming the arena when the device memory is short. */
lt_status lt_model_to_device(lt_model *m, lt_device dev);
/* The adapter's host mirror (lora_params) from the live device copy, before writing checkpoints
 * or PEFT files; and back, after loading one into lora_params. No-ops on the CPU. */
void lt_model_adapter_to_host(lt_model *m);
void lt_model_adapter_to_device(lt_model *m);
/* The host mirror's data of an adapter tensor (lora_A / lora_B, or its grad view) — the tensor's
 * own data on the CPU. Valid after lt_model_adapter_to_host. */
const float *lt_model_host_data(const lt_model *m, const lt_tensor *t);
/* A graph for forwards over m (lt_graph_init into `arena`, borrowed) on m's device: on CUDA its
 * tensors' data come from the model's step arena, made on the first call from 85% of the device
 * memory then free (LT_ERR_OOM naming it when even that fails). Every trainer and evaluator of m
 * shares that arena, one forward at a time. */
lt_status lt_model_graph_init(lt_graph *g, lt_arena *arena, lt_model *m);
/* A model of config `cfg` with random weights on the host, for tests and benchmarks of shapes
 * whose checkpoints are not at hand (the SmolLM2-135M and Llama-3-8B layouts): matrices uniform
 * in ±1/sqrt(dim), norm weights 1 ± 0.1, RoPE tables from the config; the projections `o`
 * names quantized as a load would quantize them (o NULL: all F32). Deterministic by seed for any
 * thread count. No tokenizer. LT_ERR_OOM when the host memory is short; lt_qload_init's errors
 * for options that do not fit the shapes. */
lt_status lt_model_random(lt_model **out, const lt_model_config *cfg, const lt_model_opts *o,
                          uint64_t seed);
/* Device bytes the model holds (base, adapter, grads) plus its step arena's peak and the
 * kernels' temporaries: the peak device memory of a run, less the trainer's moments. 0 on the
 * CPU. */
size_t lt_model_device_bytes(const lt_model *m);
/* alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski, arXiv 2312.03732). */
float lt_lora_scale(const lt_lora_config *lc);
/* Release the device arenas (lt_model_free calls it). */
void lt_model_dev_free(lt_model *m);

/* Read the config of a "llama" or "qwen2" GGUF (gguf_config.c): <arch>.* keys, attention biases
 * from the blk.N.attn_*.bias tensors, llama3 RoPE scaling recovered from rope_freqs.weight, a
 * sliding window on every layer from <arch>.attention.sliding_window (a "llama" file with one is
 * a Mistral). LT_ERR_MODEL naming the file and key or tensor when the architecture is another,
 * a required key is missing or inconsistent, or a key or tensor would change the function
 * without being applied (experts, soft-capping, q/k norms, rope_freqs no llama3 scaling
 * reproduces, ...); unknown <arch>.* keys are named in one warning. */
lt_status lt_model_config_from_gguf(lt_model_config *cfg, const lt_gguf *g);

/* ---- Hugging Face config.json ------------------------------------------------------------ */

/* Parse a transformers config.json (`path`) for LlamaForCausalLM (SmolLM too),
 * MistralForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM (architectures[0], else model_type).
 * Keys, defaults and meaning follow transformers 5's LlamaConfig / MistralConfig / Qwen2Config /
 * Qwen3Config (head_dim defaults to 128, q/k norms always, attention_bias on all four, sliding
 * windows as Qwen2's):
 *   required: hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, vocab_size;
 *   optional: num_key_value_heads (= heads), head_dim (= hidden / heads), max_position_embeddings
 *   (Llama 2048, Mistral 131072, Qwen2 32768), rms_norm_eps (1e-6), tie_word_embeddings (false),
 *   hidden_act ("silu", the only one accepted), attention_bias (Llama: bias on q/k/v/o),
 *   mlp_bias (must be false), bos_token_id, eos_token_id (an int, or a list: the first is kept),
 *   torch_dtype or dtype. Qwen2 always has q/k/v biases and no o_proj bias (modeling_qwen2.py).
 *   RoPE in either spelling: "rope_parameters" {rope_type, rope_theta, ...} (transformers >= 5)
 *   or top-level "rope_theta" (10000) with "rope_scaling" {rope_type|type, ...}; types "default",
 *   "linear" {factor} and "llama3" {factor, low_freq_factor, high_freq_factor,
 *   original_max_position_embeddings (= max_position_embeddings)}; both spellings present must
 *   agree. Sliding windows, applied per layer (lt_model_layer_window): Mistral's sliding_window
 *   (absent: 4096, null: none) on every layer; Qwen2's only with use_sliding_window, on layers >=
 *   max_window_layers (28), or as layer_types marks them.
 * Never silently wrong: keys of other architectures that change the function
 * (partial_rotary_factor, soft-capping, query_pre_attn_scalar, experts, q/k norms, Granite's
 * multipliers, ...) are refused unless neutral; keys lathe neither reads nor knows to be inert
 * are named in one warning.
 * Errors: LT_ERR_MODEL "<path>: <key>: problem; hint" for unreadable JSON, an unknown
 * architecture, hidden_act or rope type, a refused key, and a missing, mistyped, out-of-range or
 * contradictory value (heads not dividing hidden_size, kv heads not dividing heads, odd
 * head_dim, two RoPE spellings that disagree). */
lt_status lt_hf_config_parse(lt_model_config *c, const char *path);

/* Write a config.json for `c` that transformers' AutoConfig / AutoModelForCausalLM load as the
 * same model: architectures, model_type, the sizes above, head_dim, rope_theta, rope_scaling,
 * tie_word_embeddings, attention_bias (Llama), sliding_window (Mistral), bos/eos ids when known,
 * torch_dtype from c->dtype. Atomic write. LT_ERR_MODEL when `c` cannot be expressed for its
 * architecture (a Qwen2 without q/k/v bias or with an o_proj bias, a Mistral with biases, a
 * Llama with q/k/v and o biases differing), LT_ERR_IO naming the path when it cannot be
 * written. */
lt_status lt_hf_config_write(const lt_model_config *c, const char *path);

/* RoPE inverse frequencies for `c` into out[head_dim/2], computed in float32 as transformers
 * does: inv_freq[i] = 1 / rope_base^(2i / head_dim) (_compute_default_rope_parameters), then
 * divided by factor for "linear", or for "llama3" (_compute_llama3_parameters): with
 * wavelen = 2π / inv_freq, wavelengths above original_context / low_freq_factor are divided by
 * factor, those below original_context / high_freq_factor kept, and those between blended with
 * s = (original_context / wavelen − low) / (high − low): (1 − s)·inv/factor + s·inv. */
void lt_rope_inv_freq(float *out, const lt_model_config *c);

/* Load a base model and its tokenizer from `path`: a GGUF file, or a Hugging Face directory
 * (config.json + model.safetensors or sharded model-*.safetensors with an index + tokenizer.json).
 * Errors name the file and key/tensor (LT_ERR_MODEL). `tok` may be NULL when not needed. */
lt_status lt_model_load(lt_model **out, lt_tokenizer **tok, const char *path);

/* lt_model_load with a quantized frozen base (o NULL: as lt_model_load). Streaming: tensor by
 * tensor, a weight to be quantized is read (and dequantized when the file stores it quantized,
 * e.g. a Q4_1 GGUF: requantization only ever goes through F32, logged once) into one reusable
 * F32 scratch the size of the largest such weight, Q/K rows un-permuted, then quantized into
 * its own storage; the source pages are released after each tensor. Peak host memory is
 * therefore the quantized weights + the F32 remainder (embeddings, norms) + one tensor, never
 * the full-precision model. Errors, before any weight is read: LT_ERR_RECIPE naming the tensor
 * (layer 0's name; every layer has the same shape), its row length and quantization.block_size
 * when a block does not divide a quantized weight's row (NF4: block_size; Q8_0: 32), or when
 * o->modules asks for a tied lm_head; plus lt_model_load's errors. */
lt_status lt_model_load_opts(lt_model **out, lt_tokenizer **tok, const char *path,
                             const lt_model_opts *o);

/* One line describing the frozen base's memory by storage format into buf, e.g.
 * "92.1 MiB NF4+DQ (4.127 bits/param, 106.0M params), 108.9 MiB F32 (embeddings, norms)" or
 * "513.1 MiB F32 (134.5M params)". bits/param is measured: quantized bytes · 8 / quantized
 * params (codes, absmax / double-quant state and per-tensor offset included). Returns buf. */
const char *lt_model_memory_str(const lt_model *m, char *buf, size_t n);

/* Load a base from a Hugging Face directory: config.json (lt_hf_config_parse) and weights in
 * model.safetensors, or shards named by model.safetensors.index.json's weight_map (the
 * huggingface/transformers sharded-checkpoint index). Tensors (F32/F16/BF16, converted to F32):
 * model.embed_tokens.weight, model.layers.N.self_attn.{q,k,v,o}_proj.weight (+ .bias where the
 * config says), model.layers.N.mlp.{gate,up,down}_proj.weight,
 * model.layers.N.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight
 * (ignored when tied). HF layout is lathe's layout: nothing is permuted. LT_ERR_MODEL naming the
 * file and tensor for a missing tensor, a shape differing from the config (both shapes named), an
 * unsupported dtype, or an index naming a shard that is missing (index and shard named). */
lt_status lt_model_load_hf(lt_model **out, const char *dir);
/* The same with quantization options (lt_model_opts; NULL = none). */
lt_status lt_model_load_hf_opts(lt_model **out, const char *dir, const lt_model_opts *o);

/* Load a Llama-family base from an open GGUF: dequantize every weight to F32 and un-permute
 * q/k rows to HF layout. Errors name the file and tensor (missing tensor, wrong shape). */
lt_status lt_model_load_gguf(lt_model **out, const lt_gguf *g);
/* The same with quantization options (lt_model_opts; NULL = none). */
lt_status lt_model_load_gguf_opts(lt_model **out, const lt_gguf *g, const lt_model_opts *o);
/* Frees the base, every quantized weight and its NF4 state, the adapter and the model. NULL ok. */
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

/* The training / evaluation loss of a packed micro-batch without its [B·T, V] logits: the same
 * forward as lt_model_forward, then the LM head fused with cross-entropy in row blocks
 * (lt_lm_head_cross_entropy) when the head is F32, else logits + lt_cross_entropy. targets I32
 * [B, T] (-1 = no loss); `denominator` as lt_cross_entropy's (> 0: divide the summed NLL by it,
 * e.g. the target count of a whole accumulated batch; 0: mean over this batch's targets).
 * Returns [1]. */
lt_tensor *lt_model_loss(lt_graph *g, lt_model *m, int B, int T, const int32_t *tokens,
                         const int32_t *pos, const int32_t *doc, const int32_t *targets,
                         float denominator, uint64_t dropout_seed);

/* ---- KV-cached incremental forward (generation, batch 1) ---------------------------------- */

typedef struct {
    int max_len;     /* positions the cache can hold */
    int len;         /* positions filled */
    lt_device device;
    lt_dtype dtype;  /* the device's activation dtype: F32 on the CPU, BF16 on CUDA */
    void *k, *v;     /* owned, on `device`: [n_layer, max_len, n_kv_head, head_dim] */
} lt_kv_cache;

/* init: zeroed k and v for max_len positions of every layer of m, on m's device (len = 0);
 * LT_ERR_OOM naming the cache when they do not fit. free: releases them (a zeroed cache is
 * fine). */
lt_status lt_kv_cache_init(lt_kv_cache *c, const lt_model *m, int max_len);
void lt_kv_cache_free(lt_kv_cache *c);

/* Run n new tokens at positions cache->len .. +n-1, append their keys/values, and return the
 * logits of the last one: [1, V] in the graph's arena (the activation dtype of the graph's
 * device: read with lt_tensor_download_f32). Caller keeps len + n <= max_len. */
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
 * `base_name` goes into base_model_name_or_path. The tensors come from the adapter's host mirror:
 * on a device, call lt_model_adapter_to_host first. */
lt_status lt_peft_save(const lt_model *m, const char *dir, const char *base_name, bool replace);

/* Read a PEFT LoRA adapter from `dir` and attach it (replacing any adapter). Errors name the file
 * and key/tensor: LT_ERR_MODEL when the config is not a LoRA adapter lathe can apply (bias
 * training, DoRA, modules other than the seven projections, shapes that do not fit the base).
 * A model on the CPU only (lt_model_to_device comes after). */
lt_status lt_peft_load(lt_model *m, const char *dir);

#endif
