/*
 * The decoder families against transformers itself: tiny random-weight models that transformers
 * built and saved (tests/data/models/<case>/, written by tools/gen_model_refs.py, which names the
 * transformers and torch versions in each refs.json), with the float32 logits transformers
 * computed for a fixed token sequence. Each case is loaded from its HF directory, then converted
 * to GGUF and loaded again, then converted back to an HF directory and loaded again; all three
 * must give transformers' logits, and the round trip must keep every field of the config.
 *
 * Cases: Phi-3's fused projections and their adapters, Gemma 2 and 3 (Gemma 2's with a query
 * scale llama.cpp cannot take, so HF only), Qwen3's q/k norms, both RoPE spellings (rope_parameters; rope_theta +
 * rope_scaling), llama3 and linear scaling, attention biases, explicit head_dim, untied lm_head,
 * sliding windows shorter than the sequence (Mistral: every layer; Qwen2: layers >=
 * max_window_layers).
 */
#include "../support.h"

#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

#include "export/export.h"
#include "model/model.h"

#define MODELS_DIR "tests/data/models/"

/* Both sides compute in float32 from the same BF16-rounded weights; they differ only by
 * summation order and libm (measured: ~1e-6 of the logit range). A wrong RoPE frequency, a
 * missing bias or a missed window moves logits by > 1e-2 of the range. The bound for the
 * proof is 1e-3; this test holds lathe to a tighter 1e-4. */
#define TOL_LOGITS 1e-4

static char dir[512];
static void setup(void) { ts_tmpdir(dir, sizeof dir, "archs"); }
static void teardown(void) { ts_rmtree(dir); }

typedef struct {
    int32_t ids[64];
    int T, V;
    float *logits; /* [T, V] */
    char weights_from[64];
} ref_case;

static void read_case(const char *name, ref_case *rc) {
    char path[512];
    snprintf(path, sizeof path, MODELS_DIR "%s/refs.json", name);
    json_error_t je;
    json_t *r = json_load_file(path, 0, &je);
    cr_assert_not_null(r, "%s: %s", path, je.text);
    json_t *ids = json_object_get(r, "ids"), *shape = json_object_get(r, "logits_shape");
    rc->T = (int)json_array_size(ids);
    cr_assert(rc->T > 0 && rc->T <= 64);
    for (int i = 0; i < rc->T; i++) rc->ids[i] = (int32_t)json_integer_value(json_array_get(ids, i));
    rc->V = (int)json_integer_value(json_array_get(shape, 1));
    const char *wf = json_string_value(json_object_get(r, "weights_from"));
    snprintf(rc->weights_from, sizeof rc->weights_from, "%s", wf ? wf : name);
    json_decref(r);
    snprintf(path, sizeof path, MODELS_DIR "%s/logits.f32", name);
    char *data;
    size_t n;
    cr_assert_eq(lt_read_file(path, &data, &n), LT_OK, "%s", lt_error_message());
    cr_assert_eq(n, (size_t)rc->T * rc->V * sizeof(float), "%s: size", path);
    rc->logits = (float *)data;
}

static void copy_file(const char *from, const char *to) {
    char *data;
    size_t n;
    cr_assert_eq(lt_read_file(from, &data, &n), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_write_file_atomic(to, data, n), LT_OK, "%s", lt_error_message());
    free(data);
}

/* dir/<name>.hf: the case's config and weights plus stories260K's tokenizer files (its 512-token
 * vocabulary matches the models'), which `lathe convert` needs to write a GGUF. */
static void assemble(const char *name, const ref_case *rc, char *out, size_t cap) {
    char tok_dir[600], from[700], to[700];
    snprintf(tok_dir, sizeof tok_dir, "%s/tok", dir);
    if (!ts_exists(tok_dir)) {
        char gguf[512];
        ts_fixture(gguf, sizeof gguf, "stories260K/stories260K.gguf");
        cr_assert_eq(lt_convert(gguf, LT_CONVERT_TO_HF, tok_dir, LT_F32, 0, false), LT_OK, "%s",
                     lt_error_message());
    }
    snprintf(out, cap, "%s/%s.hf", dir, name);
    cr_assert_eq(mkdir(out, 0755), 0);
    static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json",
                                            "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/%s", tok_dir, tok_files[i]);
        snprintf(to, sizeof to, "%s/%s", out, tok_files[i]);
        if (ts_exists(from)) copy_file(from, to);
    }
    snprintf(from, sizeof from, MODELS_DIR "%s/config.json", name);
    snprintf(to, sizeof to, "%s/config.json", out);
    copy_file(from, to);
    snprintf(from, sizeof from, MODELS_DIR "%s/model.safetensors", rc->weights_from);
    snprintf(to, sizeof to, "%s/model.safetensors", out);
    copy_file(from, to);
}

/* Logits [T, V] of one sequence (positions 0..T-1, one document), malloc'ed. */
static float *forward(lt_model *m, const ref_case *rc) {
    int32_t pos[64], doc[64] = {0};
    for (int i = 0; i < rc->T; i++) pos[i] = i;
    lt_arena a;
    lt_arena_init(&a, 1 << 22);
    lt_graph g;
    lt_graph_init(&g, &a);
    g.record = false;
    lt_tensor *y = lt_model_forward(&g, m, 1, rc->T, rc->ids, pos, doc, 0);
    cr_assert_eq(lt_tensor_numel(y), (int64_t)rc->T * rc->V);
    float *out = malloc((size_t)rc->T * rc->V * sizeof(float));
    memcpy(out, y->data, (size_t)rc->T * rc->V * sizeof(float));
    lt_graph_free(&g);
    lt_arena_free(&a);
    return out;
}

/* max |lathe − transformers| / (range of transformers' logits) */
static double range_err(const float *got, const ref_case *rc) {
    double lo = INFINITY, hi = -INFINITY, d = 0;
    for (int64_t i = 0; i < (int64_t)rc->T * rc->V; i++) {
        lo = fmin(lo, rc->logits[i]);
        hi = fmax(hi, rc->logits[i]);
        d = fmax(d, fabs((double)got[i] - rc->logits[i]));
    }
    return d / (hi - lo);
}

static double load_and_compare(const char *path, const ref_case *rc, const char *what,
                               lt_model_config *cfg) {
    lt_model *m = NULL;
    cr_assert_eq(lt_model_load(&m, NULL, path), LT_OK, "%s: %s", what, lt_error_message());
    float *got = forward(m, rc);
    double e = range_err(got, rc);
    cr_expect(e < TOL_LOGITS, "%s: logits differ from transformers' by %.3g of their range",
              what, e);
    if (cfg) *cfg = m->cfg;
    free(got);
    lt_model_free(m);
    return e;
}

static void expect_same_config(const lt_model_config *a, const lt_model_config *b,
                               const char *what) {
#define F(f) cr_expect(a->f == b->f, "%s: " #f " changed", what)
    F(arch); F(n_layer); F(dim); F(n_head); F(n_kv_head); F(head_dim); F(ffn_dim);
    F(vocab_size); F(rope_base); F(rms_eps); F(tied); F(qkv_bias); F(o_bias); F(qk_norm);
    F(act); F(norm_offset); F(embed_scale); F(sandwich_norm); F(attn_scale); F(attn_softcap);
    F(final_softcap); F(rope_local_base);
    F(rope_scaling.type); F(rope_scaling.factor); F(rope_scaling.low_freq_factor);
    F(rope_scaling.high_freq_factor); F(rope_scaling.original_context);
#undef F
    for (int l = 0; l < a->n_layer; l++)
        cr_expect(lt_model_layer_window(a, l) == lt_model_layer_window(b, l),
                  "%s: layer %d window %d became %d", what, l, lt_model_layer_window(a, l),
                  lt_model_layer_window(b, l));
}

/* HF -> logits; HF -> GGUF -> logits; GGUF -> HF -> logits, configs equal throughout. */
static void arch_case(const char *name) {
    ref_case rc;
    read_case(name, &rc);
    char hf[600], gguf[700], back[700];
    assemble(name, &rc, hf, sizeof hf);
    lt_model_config c_hf, c_gguf, c_back;
    double e0 = load_and_compare(hf, &rc, name, &c_hf);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, name);
    cr_assert_eq(lt_convert(hf, LT_CONVERT_TO_GGUF, gguf, LT_F32, 0, false), LT_OK, "%s: %s",
                 name, lt_error_message());
    double e1 = load_and_compare(gguf, &rc, "HF -> GGUF", &c_gguf);
    expect_same_config(&c_hf, &c_gguf, "HF -> GGUF");
    snprintf(back, sizeof back, "%s/%s.back", dir, name);
    cr_assert_eq(lt_convert(gguf, LT_CONVERT_TO_HF, back, LT_F32, 0, false), LT_OK, "%s: %s",
                 name, lt_error_message());
    double e2 = load_and_compare(back, &rc, "GGUF -> HF", &c_back);
    expect_same_config(&c_hf, &c_back, "HF -> GGUF -> HF");
    if (getenv("TL_VERBOSE"))
        fprintf(stderr, "%s: logit error / range: HF %.3g, GGUF %.3g, back to HF %.3g\n", name,
                e0, e1, e2);
    free(rc.logits);
}

Test(archs, llama3_rope_parameters, .init = setup, .fini = teardown) { arch_case("llama3"); }
Test(archs, llama3_legacy_rope_scaling, .init = setup, .fini = teardown) {
    arch_case("llama3_legacy");
}
Test(archs, llama_bias_linear_untied, .init = setup, .fini = teardown) {
    arch_case("llama_bias_linear");
}
Test(archs, qwen2, .init = setup, .fini = teardown) { arch_case("qwen2"); }
Test(archs, qwen3_qk_norm, .init = setup, .fini = teardown) { arch_case("qwen3"); }
Test(archs, mistral_sliding_window_head_dim, .init = setup, .fini = teardown) {
    arch_case("mistral_swa");
}

/* Qwen2 with sliding layers above max_window_layers: exact from HF in both spellings; a GGUF
 * cannot say which layers slide, so the conversion is refused with the reason. */
static void qwen2_swa_case(const char *name) {
    ref_case rc;
    read_case(name, &rc);
    char hf[600], gguf[700];
    assemble(name, &rc, hf, sizeof hf);
    lt_model_config c;
    load_and_compare(hf, &rc, name, &c);
    cr_expect_eq(lt_model_layer_window(&c, 0), 0);
    cr_expect_eq(lt_model_layer_window(&c, 1), 5);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, name);
    cr_expect_eq(lt_convert(hf, LT_CONVERT_TO_GGUF, gguf, LT_F32, 0, false), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), "sliding window"), "%s", lt_error_message());
    cr_expect(!ts_exists(gguf), "a refused conversion leaves no file");
    free(rc.logits);
}
Test(archs, qwen2_sliding_window_layers, .init = setup, .fini = teardown) {
    qwen2_swa_case("qwen2_swa");
}
Test(archs, qwen2_sliding_window_legacy, .init = setup, .fini = teardown) {
    qwen2_swa_case("qwen2_swa_legacy");
}

/* A model from HF, then written back as a merged HF directory by lathe and loaded again (config
 * and logits kept), for a model a GGUF cannot hold: its conversion is refused with the reason
 * (`refusal` in the message). */
static void hf_only_case(const char *name, const char *refusal) {
    ref_case rc;
    read_case(name, &rc);
    char hf[600], gguf[700], back[700];
    assemble(name, &rc, hf, sizeof hf);
    lt_model_config c_hf, c_back;
    double e0 = load_and_compare(hf, &rc, name, &c_hf);
    lt_export_src src;
    lt_model *m = NULL;
    cr_assert_eq(lt_export_src_load(&src, &m, hf, NULL), LT_OK, "%s", lt_error_message());
    snprintf(back, sizeof back, "%s/%s.back", dir, name);
    cr_assert_eq(mkdir(back, 0755), 0);
    cr_assert_eq(lt_export_merged_hf_dir(&src, back, LT_F32, 0), LT_OK, "%s", lt_error_message());
    lt_export_src_close(&src);
    lt_model_free(m);
    double e1 = load_and_compare(back, &rc, "HF -> lathe's HF export", &c_back);
    expect_same_config(&c_hf, &c_back, "HF -> HF");
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", dir, name);
    cr_expect_eq(lt_convert(hf, LT_CONVERT_TO_GGUF, gguf, LT_F32, 0, false), LT_ERR_MODEL);
    cr_expect(strstr(lt_error_message(), refusal), "%s", lt_error_message());
    cr_expect(!ts_exists(gguf), "a refused conversion leaves no file");
    if (getenv("TL_VERBOSE"))
        fprintf(stderr, "%s: logit error / range: HF %.3g, lathe's HF export %.3g\n", name, e0,
                e1);
    free(rc.logits);
}
/* Gemma 2 with query_pre_attn_scalar 24 != head_dim 32: exact from HF; llama.cpp derives the
 * query scale from the model's size, so a GGUF cannot carry this one and is refused */
Test(archs, gemma2, .init = setup, .fini = teardown) {
    hf_only_case("gemma2", "query_pre_attn_scalar");
}
Test(archs, gemma3, .init = setup, .fini = teardown) { arch_case("gemma3"); }
Test(archs, gemma3_legacy_rope_keys, .init = setup, .fini = teardown) {
    arch_case("gemma3_legacy");
}
Test(archs, phi3_fused, .init = setup, .fini = teardown) { arch_case("phi3"); }

/* Phi-3's fused modules carry one adapter each, as PEFT's: qkv_proj's A [r, D] is shared by q,
 * k and v and its B [Dq + 2·Dkv, r] stacks theirs. A PEFT save holds exactly those tensors, a
 * load gives the same logits, and the merged HF export (fused weights + B·A) equals the adapted
 * model. */
Test(archs, phi3_fused_adapter, .init = setup, .fini = teardown) {
    ref_case rc;
    read_case("phi3", &rc);
    char hf[600], peft[700], merged[700];
    assemble("phi3", &rc, hf, sizeof hf);
    lt_model *m = NULL;
    cr_assert_eq(lt_model_load(&m, NULL, hf), LT_OK, "%s", lt_error_message());
    const lt_model_config *c = &m->cfg;
    cr_assert(c->fused);
    /* the seven names cover the fused modules whole; q_proj alone cannot be adapted */
    unsigned bits = 0;
    static const char *const all[] = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
    for (int i = 0; i < 4; i++) bits |= lt_model_adapter_bits(c, all[i]);
    cr_expect_eq(bits, (1u << LT_MOD_COUNT) - 1u);
    cr_expect_eq(lt_model_check_targets(c, 1u << LT_MOD_Q, "t"), LT_ERR_RECIPE);
    cr_expect(strstr(lt_error_message(), "qkv_proj"), "%s", lt_error_message());
    lt_lora_config lc = {.r = 4, .alpha = 8, .targets = bits};
    lt_model_add_lora(m, &lc, 7);
    for (int64_t i = 0; i < m->n_lora; i++) /* B too: an adapter that changes the model */
        m->lora_params[i] += 0.05f * (float)((i * 2654435761u % 1000) / 500.0 - 1.0);
    cr_expect(m->layers[0].lora_A[LT_MOD_K].data == m->layers[0].lora_A[LT_MOD_Q].data,
              "q, k and v share qkv_proj's A");
    cr_expect((float *)m->layers[0].lora_B[LT_MOD_K].data ==
                  (float *)m->layers[0].lora_B[LT_MOD_Q].data + 64 * 4,
              "k's B rows follow q's");
    float *adapted = forward(m, &rc);
    snprintf(peft, sizeof peft, "%s/peft", dir);
    cr_assert_eq(lt_peft_save(m, peft, "phi3", false), LT_OK, "%s", lt_error_message());
    char st_path[800];
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", peft);
    lt_safetensors *sf = NULL;
    cr_assert_eq(lt_safetensors_open(&sf, st_path), LT_OK, "%s", lt_error_message());
    cr_expect_eq(sf->n_tensors, 2 * 4 * c->n_layer, "A and B of 4 modules per layer");
    const lt_st_tensor *qb = lt_safetensors_find(
        sf, "base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight");
    cr_assert_not_null(qb);
    cr_expect(qb->shape[0] == 64 + 2 * 32 && qb->shape[1] == 4, "qkv B [%lld, %lld]",
              (long long)qb->shape[0], (long long)qb->shape[1]);
    cr_expect_not_null(lt_safetensors_find(
        sf, "base_model.model.model.layers.0.mlp.gate_up_proj.lora_A.weight"));
    lt_safetensors_close(sf);

    lt_model *m2 = NULL;
    cr_assert_eq(lt_model_load(&m2, NULL, hf), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_peft_load(m2, peft), LT_OK, "%s", lt_error_message());
    float *reloaded = forward(m2, &rc);
    for (int64_t i = 0; i < (int64_t)rc.T * rc.V; i++)
        cr_assert_eq(reloaded[i], adapted[i], "logit %lld after a PEFT round trip", (long long)i);

    lt_export_src src;
    lt_model *mb = NULL;
    cr_assert_eq(lt_export_src_load(&src, &mb, hf, NULL), LT_OK, "%s", lt_error_message());
    src.m = m2;
    snprintf(merged, sizeof merged, "%s/merged", dir);
    cr_assert_eq(mkdir(merged, 0755), 0);
    cr_assert_eq(lt_export_merged_hf_dir(&src, merged, LT_F32, 0), LT_OK, "%s",
                 lt_error_message());
    lt_export_src_close(&src);
    lt_model *mm = NULL;
    cr_assert_eq(lt_model_load(&mm, NULL, merged), LT_OK, "%s", lt_error_message());
    float *mlog = forward(mm, &rc);
    double d = 0, lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < (int64_t)rc.T * rc.V; i++) {
        d = fmax(d, fabs((double)mlog[i] - adapted[i]));
        lo = fmin(lo, adapted[i]);
        hi = fmax(hi, adapted[i]);
    }
    double dev = 0;
    for (int64_t i = 0; i < (int64_t)rc.T * rc.V; i++)
        dev = fmax(dev, fabs((double)adapted[i] - rc.logits[i]));
    cr_expect(dev > 100 * TOL_LOGITS * (hi - lo), "the adapter should change the model");
    cr_expect(d < TOL_LOGITS * (hi - lo), "merged export differs from the adapted model by %.3g "
              "of the range", d / (hi - lo));
    free(adapted), free(reloaded), free(mlog);
    lt_model_free(m), lt_model_free(m2), lt_model_free(mb), lt_model_free(mm);
    free(rc.logits);
}

/* Dropping the window from the Mistral case must break the match: the reference depends on it,
 * so the test above cannot pass by accident. */
Test(archs, mistral_window_matters, .init = setup, .fini = teardown) {
    ref_case rc;
    read_case("mistral_swa", &rc);
    char hf[600];
    assemble("mistral_swa", &rc, hf, sizeof hf);
    lt_model *m = NULL;
    cr_assert_eq(lt_model_load(&m, NULL, hf), LT_OK, "%s", lt_error_message());
    lt_model_set_swa(&m->cfg, 0, 0);
    float *got = forward(m, &rc);
    cr_expect(range_err(got, &rc) > 100 * TOL_LOGITS,
              "without its window the model should differ from transformers'");
    free(got);
    lt_model_free(m);
    free(rc.logits);
}
