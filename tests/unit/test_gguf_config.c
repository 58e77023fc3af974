/*
 * The model config of GGUF files (src/model/gguf_config.c): llama and qwen2 keys, llama3 RoPE
 * scaling stored as rope_freqs.weight the way llama.cpp's convert_hf_to_gguf.py writes it,
 * attention biases, sliding windows, and the refusal of every key and tensor that would change
 * the function without being applied. Files are built here with lathe's GGUF writer; only the
 * tensors the config reads are real (token_embd for the vocabulary, rope_freqs), the others are
 * 1-element placeholders whose names the audit sees.
 */
#include "../support.h"

#include <fcntl.h>
#include <math.h>

#include "model/model.h"

static char dir[256];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "ggufcfg"); }
static void teardown(void) { ts_rmtree(dir); }

enum { HEAD_DIM = 128, HEADS = 2, DIM = HEAD_DIM * HEADS, VOCAB = 8 };
static float embd[VOCAB * DIM];
static float one[1] = {1.0f};

/* A header-level GGUF of architecture `arch` with 2 blocks; `extra` adds keys / tensors. */
static lt_gguf_writer *base_writer(const char *arch) {
    lt_gguf_writer *w = lt_gguf_writer_new();
    char k[96];
    lt_gguf_writer_set_str(w, "general.architecture", arch);
#define K(x) (snprintf(k, sizeof k, "%s." x, arch), k)
    lt_gguf_writer_set_u32(w, K("block_count"), 2);
    lt_gguf_writer_set_u32(w, K("embedding_length"), DIM);
    lt_gguf_writer_set_u32(w, K("attention.head_count"), HEADS);
    lt_gguf_writer_set_u32(w, K("attention.head_count_kv"), HEADS);
    lt_gguf_writer_set_u32(w, K("feed_forward_length"), 32);
    lt_gguf_writer_set_f32(w, K("rope.freq_base"), 500000.0f);
    lt_gguf_writer_set_u32(w, K("context_length"), 131072);
#undef K
    lt_gguf_writer_add_tensor(w, "token_embd.weight", LT_F32, 2, (int64_t[]){DIM, VOCAB}, embd);
    return w;
}

static void add_placeholder(lt_gguf_writer *w, const char *name) {
    lt_gguf_writer_add_tensor(w, name, LT_F32, 1, (int64_t[]){1}, one);
}

static lt_status config_of(lt_gguf_writer *w, lt_model_config *c) {
    char path[300];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_gguf_writer_free(w);
    lt_gguf *g = NULL;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_status st = lt_model_config_from_gguf(c, g);
    lt_gguf_close(g);
    return st;
}

/* convert_hf_to_gguf.py LlamaModel.generate_extra_tensors, in double precision over float32
 * base frequencies: 1 for wavelengths below original/high, factor above original/low, else
 * 1 / ((1 − s)/factor + s) with s = (original/wavelen − low)/(high − low). */
static void llama_cpp_rope_factors(float *ff, double base, double factor, double lo, double hi,
                                   double orig) {
    for (int i = 0; i < HEAD_DIM / 2; i++) {
        double freq = 1.0f / powf((float)base, (float)(2 * i) / (float)HEAD_DIM);
        double wl = 2 * M_PI / freq;
        if (wl < orig / hi) ff[i] = 1.0f;
        else if (wl > orig / lo) ff[i] = (float)factor;
        else {
            double s = (orig / wl - lo) / (hi - lo);
            ff[i] = (float)(1.0 / ((1 - s) / factor + s));
        }
    }
}

Test(gguf_config, llama31_and_32_rope_freqs_recovered, .init = setup, .fini = teardown) {
    static const double factors[2] = {8.0, 32.0}; /* Llama 3.1, Llama 3.2 */
    for (int v = 0; v < 2; v++) {
        float ff[HEAD_DIM / 2];
        llama_cpp_rope_factors(ff, 500000.0, factors[v], 1.0, 4.0, 8192.0);
        int blended = 0;
        for (int i = 0; i < HEAD_DIM / 2; i++) blended += ff[i] != 1.0f && ff[i] != factors[v];
        cr_assert(blended > 0, "the case must exercise the blended band");
        lt_gguf_writer *w = base_writer("llama");
        lt_gguf_writer_add_tensor(w, "rope_freqs.weight", LT_F32, 1,
                                  (int64_t[]){HEAD_DIM / 2}, ff);
        lt_model_config c;
        cr_assert_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
        cr_expect_eq(c.rope_scaling.type, LT_ROPE_LLAMA3, "rope_freqs.weight was ignored");
        cr_expect_eq(c.rope_scaling.factor, (float)factors[v]);
        cr_expect_eq(c.rope_scaling.low_freq_factor, 1.0f);
        cr_expect_eq(c.rope_scaling.high_freq_factor, 4.0f);
        cr_expect_eq(c.rope_scaling.original_context, 8192);
        /* and lathe's frequencies are llama.cpp's: default / ff */
        float inv[HEAD_DIM / 2], def[HEAD_DIM / 2];
        lt_rope_inv_freq(inv, &c);
        c.rope_scaling.type = LT_ROPE_DEFAULT;
        lt_rope_inv_freq(def, &c);
        for (int i = 0; i < HEAD_DIM / 2; i++)
            cr_expect(fabs(inv[i] - def[i] / ff[i]) <= 1e-6 * def[i] / ff[i],
                      "freq %d: %g vs llama.cpp's %g", i, inv[i], def[i] / ff[i]);
    }
}

Test(gguf_config, rope_freqs_that_are_not_llama3_refused, .init = setup, .fini = teardown) {
    float ff[HEAD_DIM / 2];
    for (int i = 0; i < HEAD_DIM / 2; i++) ff[i] = 1.0f + 0.37f * (float)(i % 5);
    lt_gguf_writer *w = base_writer("llama");
    lt_gguf_writer_add_tensor(w, "rope_freqs.weight", LT_F32, 1, (int64_t[]){HEAD_DIM / 2}, ff);
    lt_model_config c;
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "rope_freqs.weight"), "%s", lt_error_message());
    /* all ones: no scaling at all */
    for (int i = 0; i < HEAD_DIM / 2; i++) ff[i] = 1.0f;
    w = base_writer("llama");
    lt_gguf_writer_add_tensor(w, "rope_freqs.weight", LT_F32, 1, (int64_t[]){HEAD_DIM / 2}, ff);
    cr_expect_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.rope_scaling.type, LT_ROPE_DEFAULT);
}

Test(gguf_config, qwen2_keys_and_biases, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("qwen2");
    static const char *const b[] = {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias",
                                    "blk.1.attn_q.bias", "blk.1.attn_k.bias", "blk.1.attn_v.bias"};
    for (int i = 0; i < 6; i++) add_placeholder(w, b[i]);
    lt_model_config c;
    cr_assert_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_QWEN2);
    cr_expect_eq(c.rope_base, 500000.0f, "qwen2.rope.freq_base");
    cr_expect_eq(c.head_dim, HEAD_DIM);
    cr_expect(c.qkv_bias && !c.o_bias);
}

Test(gguf_config, llama_attention_biases_loaded, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("llama");
    add_placeholder(w, "blk.0.attn_q.bias");
    add_placeholder(w, "blk.0.attn_k.bias");
    add_placeholder(w, "blk.0.attn_v.bias");
    add_placeholder(w, "blk.0.attn_output.bias");
    lt_model_config c;
    cr_assert_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
    cr_expect(c.qkv_bias && c.o_bias, "GGUF attention biases must not be dropped");
    /* q bias alone: lathe cannot build that, so it says so */
    w = base_writer("llama");
    add_placeholder(w, "blk.0.attn_q.bias");
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "attn_k"), "%s", lt_error_message());
}

Test(gguf_config, sliding_window_makes_mistral, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("llama");
    lt_gguf_writer_set_u32(w, "llama.attention.sliding_window", 4096);
    lt_model_config c;
    cr_assert_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_MISTRAL);
    cr_expect_eq(lt_model_layer_window(&c, 0), 4096);
    cr_expect_eq(lt_model_layer_window(&c, 1), 4096);
}

Test(gguf_config, tensors_outside_the_decoder_refused, .init = setup, .fini = teardown) {
    static const char *const extra[] = {"blk.0.attn_q_norm.weight", "blk.1.ffn_gate_inp.weight",
                                        "blk.0.ffn_up.bias", "blk.5.attn_q.weight",
                                        "blk.0.attn_output.bias.extra"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        lt_gguf_writer *w = base_writer("llama");
        add_placeholder(w, extra[i]);
        lt_model_config c;
        cr_expect_eq(config_of(w, &c), LT_ERR_MODEL, "%s accepted", extra[i]);
        cr_expect(strstr(lt_error_message(), extra[i]), "%s", lt_error_message());
    }
}

Test(gguf_config, keys_that_change_the_function, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("llama");
    lt_gguf_writer_set_u32(w, "llama.expert_count", 8);
    lt_model_config c;
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "llama.expert_count"), "%s", lt_error_message());
    w = base_writer("llama");
    lt_gguf_writer_set_f32(w, "llama.final_logit_softcapping", 30.0f);
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "final_logit_softcapping"), "%s", lt_error_message());
    w = base_writer("llama");
    lt_gguf_writer_set_str(w, "llama.rope.scaling.type", "yarn");
    lt_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 4.0f);
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "yarn"), "%s", lt_error_message());
    /* neutral values are fine */
    w = base_writer("llama");
    lt_gguf_writer_set_u32(w, "llama.expert_count", 0);
    cr_expect_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
}

Test(gguf_config, unknown_key_warns_by_name, .init = setup, .fini = teardown) {
    char log[300];
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    lt_gguf_writer *w = base_writer("llama");
    lt_gguf_writer_set_f32(w, "llama.mystery.scale", 2.0f);
    lt_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 8192); /* inert */
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    lt_model_config c;
    lt_status st = config_of(w, &c);
    fflush(stderr);
    dup2(saved, 2);
    close(fd);
    close(saved);
    cr_expect_eq(st, LT_OK, "%s", lt_error_message());
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(log, &text, &n), LT_OK);
    cr_expect(strstr(text, "llama.mystery.scale"), "no warning naming the key: '%s'", text);
    cr_expect(!strstr(text, "original_context_length"), "inert key warned about: '%s'", text);
    free(text);
}

Test(gguf_config, other_architectures_refused_by_name, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("mixtral");
    lt_model_config c;
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "mixtral"), "%s", lt_error_message());
}

/* llama.cpp's Gemma conventions (src/models/gemma2.cpp): soft-capping and window defaults, the
 * query scale from the model size (27B: 46 layers, hidden / heads), the layer pattern. */
Test(gguf_config, gemma2_conventions, .init = setup, .fini = teardown) {
    lt_gguf_writer *w = base_writer("gemma2");
    lt_model_config c;
    cr_assert_eq(config_of(w, &c), LT_OK, "%s", lt_error_message());
    cr_expect_eq(c.arch, LT_ARCH_GEMMA2);
    cr_expect_eq(c.attn_softcap, 50.0f);
    cr_expect_eq(c.final_softcap, 30.0f);
    cr_expect_eq(c.attn_scale, (float)pow(HEAD_DIM, -0.5), "head_dim below 27B");
    cr_expect(c.tied && c.sandwich_norm && c.norm_offset == 1.0f && c.act == LT_ACT_GELU_TANH);
    cr_expect_eq(lt_model_layer_window(&c, 0), 4096);
    cr_expect_eq(lt_model_layer_window(&c, 1), 0);
    /* an untied head cannot be llama.cpp's Gemma */
    w = base_writer("gemma2");
    add_placeholder(w, "output.weight");
    cr_expect_eq(config_of(w, &c), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "output.weight"), "%s", lt_error_message());
}
