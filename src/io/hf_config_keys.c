/*
 * The config.json keys lathe does not read (hf_config.c parses the rest): which are inert, which
 * would change the function and are refused unless neutral, and the one warning that names any
 * other. Sources: transformers' PretrainedConfig / GenerationConfig attributes and the config
 * classes of the architectures whose keys are listed (configuration_*.py).
 */
#include "../model/model.h"
#include "hf_config_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Keys hf_config.c reads (quantization_config: io/bnb.c). */
static const char *const read_keys[] = {
    "architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "vocab_size", "num_key_value_heads", "max_position_embeddings",
    "head_dim", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters",
    "tie_word_embeddings", "hidden_act", "mlp_bias", "attention_bias", "bos_token_id",
    "eos_token_id", "torch_dtype", "dtype", "quantization_config", NULL};
/* ... and only for these architectures (the others' transformers classes ignore them). */
static const char *const sliding_keys[] = {"sliding_window", "layer_types", NULL};
static const char *const qwen2_keys[] = {"use_sliding_window", "max_window_layers", NULL};
/* Phi3Config: dropouts (training only) and the pre-extension context, read by LongRoPE only,
 * which is refused */
static const char *const phi3_keys[] = {"resid_pdrop", "embd_pdrop",
                                        "original_max_position_embeddings", NULL};
static const char *const gemma_keys[] = {
    "hidden_activation", "query_pre_attn_scalar", "attn_logit_softcapping",
    "final_logit_softcapping", "use_bidirectional_attention", "sliding_window_pattern",
    "rope_local_base_freq", "cache_implementation", "_sliding_window_pattern", NULL};

/* Keys that never change the forward pass: bookkeeping, training-time dropout (lathe's dropout
 * is LoRA's own), tokenizer ids and generation defaults of transformers' PretrainedConfig and
 * GenerationConfig, which older config.json files carry. */
static const char *const inert_keys[] = {
    "transformers_version", "_name_or_path", "name_or_path", "auto_map", "use_cache",
    "initializer_range", "attention_dropout", "pretraining_tp", "pad_token_id", "sep_token_id",
    "decoder_start_token_id", "tokenizer_class", "return_dict", "output_hidden_states",
    "output_attentions", "torchscript", "use_bfloat16", "tf_legacy_loss", "pruned_heads",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "add_cross_attention",
    "tie_encoder_decoder", "finetuning_task", "id2label", "label2id", "task_specific_params",
    "problem_type", "prefix", "num_labels", "max_length", "min_length", "do_sample",
    "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k",
    "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
    "output_scores", "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id",
    "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "cross_attention_hidden_size", "_attn_implementation",
    "attn_implementation", "_attn_implementation_autoset", "use_return_dict", "model_name",
    "embd_pdrop", "resid_pdrop", "hidden_dropout", "hidden_dropout_prob", "attn_pdrop", NULL};

/* Keys of other architectures that change the function: refused unless they hold the neutral
 * value (null always is; otherwise `neutral`, NAN meaning "false" or nothing). */
static const struct {
    const char *key;
    double neutral;
    const char *what;
} refused_keys[] = {
    {"partial_rotary_factor", 1.0, "RoPE on part of each head"},
    {"attn_logit_softcapping", NAN, "attention logit soft-capping (Gemma 2)"},
    {"final_logit_softcapping", NAN, "final logit soft-capping (Gemma 2/3)"},
    {"query_pre_attn_scalar", NAN, "a query scale other than 1/sqrt(head_dim) (Gemma 2/3)"},
    {"num_experts", 0, "a mixture of experts"},
    {"num_local_experts", 0, "a mixture of experts (Mixtral)"},
    {"n_routed_experts", 0, "a mixture of experts (DeepSeek)"},
    {"use_qk_norm", NAN, "RMSNorm on queries and keys"},
    {"qk_layernorm", NAN, "LayerNorm on queries and keys"},
    {"embedding_multiplier", 1.0, "scaled embeddings (Granite)"},
    {"logits_scaling", 1.0, "scaled logits (Granite)"},
    {"residual_multiplier", 1.0, "scaled residuals (Granite)"},
    {"attention_multiplier", NAN, "a custom attention scale (Granite)"},
    {"no_rope_layers", NAN, "layers without RoPE (SmolLM3)"},
    {"attention_chunk_size", NAN, "chunked attention (Llama 4)"},
    {"mrope_section", NAN, "multimodal RoPE (Qwen2-VL)"},
};

static bool in_list(const char *const *list, const char *k) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], k)) return true;
    return false;
}

/* Refuse keys that would change the function and were not applied; warn, in one line, about
 * the keys lathe neither reads nor knows to be inert (one of them could matter). */
lt_status lt_hf__audit_keys(const char *path, json_t *root, const lt_model_config *c) {
    char unknown[512] = "";
    size_t n_unknown = 0, len = 0;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (in_list(read_keys, k) || in_list(inert_keys, k)) continue;
        if (c->arch != LT_ARCH_LLAMA && in_list(sliding_keys, k)) continue;
        if ((c->arch == LT_ARCH_QWEN2 || c->arch == LT_ARCH_QWEN3) && in_list(qwen2_keys, k))
            continue;
        if ((c->arch == LT_ARCH_GEMMA2 || c->arch == LT_ARCH_GEMMA3) && in_list(gemma_keys, k))
            continue;
        if (c->arch == LT_ARCH_PHI3 && in_list(phi3_keys, k)) continue;
        bool handled = false;
        for (size_t i = 0; i < sizeof refused_keys / sizeof refused_keys[0] && !handled; i++) {
            if (strcmp(k, refused_keys[i].key)) continue;
            handled = true;
            double neutral = refused_keys[i].neutral;
            bool is_neutral = json_is_null(v) || json_is_false(v) ||
                              (json_is_number(v) && !isnan(neutral) &&
                               json_number_value(v) == neutral) ||
                              (json_is_array(v) && json_array_size(v) == 0);
            if (!is_neutral)
                return lt_error_set(LT_ERR_MODEL, "%s: %s: set, meaning %s, which lathe does not "
                                    "apply; the model would compute a different function, so it "
                                    "is refused", path, k, refused_keys[i].what);
        }
        if (handled || json_is_null(v)) continue;
        n_unknown++;
        if (len < sizeof unknown - 64)
            len += (size_t)snprintf(unknown + len, sizeof unknown - len, "%s%s",
                                    n_unknown > 1 ? ", " : "", k);
    }
    if (n_unknown)
        lt_warn("%s: lathe does not read %zu key%s (%s); if one of them changes the model, lathe's "
                "results differ from transformers'", path, n_unknown, n_unknown > 1 ? "s" : "",
                unknown);
    return LT_OK;
}

