/* Export and convert round trips on stories260K (real llama-architecture GGUF with GQA and tied
 * embeddings): an adapter with random non-zero B is exported in each format and read back —
 * the GGUF adapter tensor by tensor (Q/K rows of B un-permuted), merged models by their logits —
 * and GGUF -> HF -> GGUF must reproduce the base bit for bit. */
#include <jansson.h>
#include <math.h>

#include "../support.h"
#include "export/export.h"

/* F32 merged model vs base + adapter: W' = W + s·B·A rounds once per element (|W'| ~ 0.1, so
 * ~1e-8), while the adapted forward adds s·B·(A·x) after rounding x·W; both differ from exact
 * arithmetic by a few ulps per dot product of length <= 172 and through 5 layers of RMSNorm.
 * Observed max |Δlogit| ~1e-5 on logits of magnitude ~10; 1e-3 leaves room across BLAS builds
 * while a wrong permutation or scale moves logits by > 0.1. */
#define MERGED_F32_TOL 1e-3f
/* Pure reordering (permute / un-permute, F32 -> F32): the same floats, the same forward. */
#define CONVERT_F32_TOL 0.0f

static char tmp[256], model_path[1024];
static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "export"); }
static void teardown(void) { ts_rmtree(tmp); }

static lt_model *load_base(lt_export_src *src) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    lt_model *m;
    cr_assert_eq(lt_export_src_load(src, &m, model_path, NULL), LT_OK, "%s", lt_error_message());
    return m;
}

/* LoRA on every projection with B filled with random non-zero values (PEFT's init has B = 0,
 * which would make every export trivially equal to the base). */
static void attach(lt_model *m, int r, float alpha, bool rslora) {
    lt_lora_config lc = {.r = r, .alpha = alpha, .rslora = rslora, .targets = 0x7f};
    lt_model_add_lora(m, &lc, 7);
    lt_rng rng = {99};
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            lt_tensor *B = &m->layers[l].lora_B[k];
            for (int64_t i = 0; i < lt_tensor_numel(B); i++)
                lt_f32(B)[i] = (2 * lt_rng_uniform(&rng) - 1) * 0.2f;
        }
}

static const int32_t TOK[8] = {1, 403, 407, 261, 378, 365, 300, 20};

/* Logits [8, V] of the fixed prompt, malloc'ed. */
static float *logits(lt_model *m) {
    int32_t pos[8], doc[8] = {0};
    for (int i = 0; i < 8; i++) pos[i] = i;
    lt_arena a;
    lt_arena_init(&a, 0);
    lt_graph g;
    lt_graph_init(&g, &a);
    g.record = false;
    lt_tensor *y = lt_model_forward(&g, m, 1, 8, TOK, pos, doc, 0);
    size_t n = (size_t)lt_tensor_numel(y);
    float *out = lt_xmalloc(n * sizeof(float));
    memcpy(out, y->data, n * sizeof(float));
    lt_graph_free(&g);
    lt_arena_free(&a);
    return out;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(a[i]) && isfinite(b[i]));
        if (fabsf(a[i] - b[i]) > d) d = fabsf(a[i] - b[i]);
    }
    return d;
}

static void export_to(const lt_export_src *src, lt_export_format f, lt_dtype t, char *dir,
                      size_t cap) {
    snprintf(dir, cap, "%s/%s", tmp, lt_export_format_name(f));
    lt_export_opts o = lt_export_defaults(f);
    o.dtype = t;
    cr_assert_eq(lt_export_write(src, dir, &o), LT_OK, "%s", lt_error_message());
}

/* ---- GGUF adapter ------------------------------------------------------------------------- */

static void check_gguf_adapter(bool rslora, lt_dtype dtype, float tol) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, rslora);
    char dir[512], path[600];
    export_to(&src, LT_EXPORT_GGUF_ADAPTER, dtype, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/adapter.gguf", dir);
    lt_gguf *g;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    lt_gguf_str s;
    cr_assert(lt_gguf_get_str(g, "general.type", &s) && lt_gguf_str_eq(s, "adapter"));
    cr_assert(lt_gguf_get_str(g, "adapter.type", &s) && lt_gguf_str_eq(s, "lora"));
    cr_assert(lt_gguf_get_str(g, "general.architecture", &s) && lt_gguf_str_eq(s, "llama"));
    double alpha;
    cr_assert(lt_gguf_get_float(g, "adapter.lora.alpha", &alpha));
    /* llama.cpp scales by alpha / r: that must be the model's own scale (rsLoRA folded in) */
    cr_assert_float_eq((float)(alpha / 8), m->lora.scale, 1e-6f, "alpha %g, scale %g", alpha,
                       m->lora.scale);
    cr_assert_eq(g->n_tensors, m->cfg.n_layer * LT_MOD_COUNT * 2);
    const char *names[LT_MOD_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_gate", "ffn_up", "ffn_down"};
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            const lt_tensor *A = &m->layers[l].lora_A[k], *B = &m->layers[l].lora_B[k];
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", l, names[k]);
            const lt_gguf_tensor *ta = lt_gguf_find_tensor(g, name);
            snprintf(name, sizeof name, "blk.%d.%s.weight.lora_b", l, names[k]);
            const lt_gguf_tensor *tb = lt_gguf_find_tensor(g, name);
            cr_assert(ta && tb, "%s missing", name);
            /* llama-adapter.cpp: a.ne = [in, r], b.ne = [r, out] */
            cr_assert(ta->ne[0] == A->shape[1] && ta->ne[1] == 8);
            cr_assert(tb->ne[0] == 8 && tb->ne[1] == B->shape[0]);
            float *a = lt_xmalloc((size_t)lt_tensor_numel(A) * sizeof(float));
            float *b = lt_xmalloc((size_t)lt_tensor_numel(B) * sizeof(float));
            lt_gguf_tensor_to_f32(ta, a);
            lt_gguf_tensor_to_f32(tb, b);
            if (k == LT_MOD_Q) lt_qk_unpermute(b, B->shape[0], 8, m->cfg.n_head);
            if (k == LT_MOD_K) lt_qk_unpermute(b, B->shape[0], 8, m->cfg.n_kv_head);
            float da = max_diff(a, A->data, (size_t)lt_tensor_numel(A));
            float db = max_diff(b, B->data, (size_t)lt_tensor_numel(B));
            cr_assert(da <= tol && db <= tol, "%s: |ΔA| %g |ΔB| %g > %g", name, da, db, tol);
            free(a);
            free(b);
        }
    lt_gguf_close(g);
    lt_export_src_close(&src);
    lt_model_free(m);
}

Test(export, gguf_adapter_f32_exact, .init = setup, .fini = teardown) {
    check_gguf_adapter(false, LT_F32, 0);
}
Test(export, gguf_adapter_rslora_alpha_folded, .init = setup, .fini = teardown) {
    check_gguf_adapter(true, LT_F32, 0);
}
/* F16 keeps 11 significant bits: |x| <= 0.25 rounds by at most 2^-13 ~ 1.2e-4. */
Test(export, gguf_adapter_f16, .init = setup, .fini = teardown) {
    check_gguf_adapter(false, LT_F16, 1.3e-4f);
}
/* Q8_0: error <= d/2 with d = max|x|/127 per block (<= 0.25/127), plus F16 rounding of d;
 * ffn_down's A rows (172) are no multiple of 32 and fall back to F16. */
Test(export, gguf_adapter_q8_0, .init = setup, .fini = teardown) {
    check_gguf_adapter(false, LT_Q8_0, 1.1e-3f);
}

/* ---- merged GGUF -------------------------------------------------------------------------- */

Test(export, merged_gguf_logits_match_adapted_model, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    float *base = logits(m);
    attach(m, 8, 16, false);
    float *want = logits(m);
    size_t n = 8 * (size_t)m->cfg.vocab_size;
    cr_assert(max_diff(base, want, n) > 0.1f, "the test adapter barely changes the logits");
    char dir[512], path[600];
    export_to(&src, LT_EXPORT_MERGED_GGUF, LT_F32, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    lt_export_src src2;
    lt_model *merged;
    cr_assert_eq(lt_export_src_load(&src2, &merged, path, NULL), LT_OK, "%s", lt_error_message());
    lt_gguf_str s;
    cr_assert(lt_gguf_get_str(src2.gguf, "tokenizer.ggml.model", &s) && lt_gguf_str_eq(s, "llama"));
    cr_assert_eq(lt_tokenizer_vocab_size(src2.tok), lt_tokenizer_vocab_size(src.tok));
    float *got = logits(merged);
    float d = max_diff(got, want, n);
    cr_assert(d <= MERGED_F32_TOL, "merged logits differ by %g", d);
    free(base);
    free(want);
    free(got);
    lt_export_src_close(&src2);
    lt_model_free(merged);
    lt_export_src_close(&src);
    lt_model_free(m);
}

/* Q8_0 merged GGUF: types as llama.cpp's converter writes them (norms F32, rows of 172 -> F16). */
Test(export, merged_gguf_q8_0_types, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, false);
    char dir[512], path[600];
    export_to(&src, LT_EXPORT_MERGED_GGUF, LT_Q8_0, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    lt_gguf *g;
    cr_assert_eq(lt_gguf_open(&g, path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_gguf_find_tensor(g, "blk.0.attn_q.weight")->ggml_type, LT_GGML_Q8_0);
    cr_assert_eq(lt_gguf_find_tensor(g, "blk.0.ffn_down.weight")->ggml_type, LT_GGML_F16);
    cr_assert_eq(lt_gguf_find_tensor(g, "blk.0.attn_norm.weight")->ggml_type, LT_GGML_F32);
    /* stories260K stores output.weight (equal to token_embd) itself: it is carried, not tied */
    cr_assert_eq(lt_gguf_find_tensor(g, "output.weight") != NULL, !m->cfg.tied);
    int64_t ft;
    cr_assert(lt_gguf_get_int(g, "general.file_type", &ft) && ft == 7);
    lt_gguf_close(g);
    lt_export_src_close(&src);
    lt_model_free(m);
}

/* ---- PEFT --------------------------------------------------------------------------------- */

Test(export, peft_roundtrip_and_rank_limit, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, true);
    char dir[512];
    export_to(&src, LT_EXPORT_PEFT, LT_F32, dir, sizeof dir);
    lt_export_src src2;
    lt_model *m2;
    cr_assert_eq(lt_export_src_load(&src2, &m2, model_path, NULL), LT_OK);
    cr_assert_eq(lt_peft_load(m2, dir), LT_OK, "%s", lt_error_message());
    cr_assert(m2->lora.rslora && m2->lora.r == 8);
    cr_assert_eq(m2->n_lora, m->n_lora);
    cr_assert(!memcmp(m2->lora_params, m->lora_params, (size_t)m->n_lora * sizeof(float)));
    /* r = 32 is above vLLM's default limit of 16 */
    attach(m, 32, 16, false);
    lt_export_opts o = lt_export_defaults(LT_EXPORT_PEFT);
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/peft32", tmp);
    cr_assert_eq(lt_export_write(&src, dir2, &o), LT_ERR_USAGE);
    cr_assert(strstr(lt_error_message(), "max-lora-rank"), "%s", lt_error_message());
    cr_assert(!ts_exists(dir2));
    o.max_rank = 32;
    cr_assert_eq(lt_export_write(&src, dir2, &o), LT_OK, "%s", lt_error_message());
    lt_export_src_close(&src2);
    lt_model_free(m2);
    lt_export_src_close(&src);
    lt_model_free(m);
}

Test(export, existing_output_refused_without_force, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, false);
    char dir[512], keep[600];
    snprintf(dir, sizeof dir, "%s/out", tmp);
    snprintf(keep, sizeof keep, "%s/keep.txt", dir);
    cr_assert_eq(lt_mkdir_p(dir), LT_OK);
    cr_assert_eq(lt_write_file_atomic(keep, "x", 1), LT_OK);
    lt_export_opts o = lt_export_defaults(LT_EXPORT_GGUF_ADAPTER);
    cr_assert_eq(lt_export_write(&src, dir, &o), LT_ERR_USAGE);
    cr_assert(ts_exists(keep));
    o.force = true;
    cr_assert_eq(lt_export_write(&src, dir, &o), LT_OK, "%s", lt_error_message());
    cr_assert(!ts_exists(keep));
    snprintf(keep, sizeof keep, "%s/adapter.gguf", dir);
    cr_assert(ts_exists(keep));
    lt_export_src_close(&src);
    lt_model_free(m);
}

/* ---- merged safetensors and convert (HF directories) -------------------------------------- */

Test(export, merged_safetensors_sharded_logits, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, false);
    float *want = logits(m);
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/merged", tmp);
    lt_export_opts o = lt_export_defaults(LT_EXPORT_MERGED_SAFETENSORS);
    o.dtype = LT_F32;
    o.max_shard_bytes = 300000; /* ~1 MB of F32 weights -> several shards */
    cr_assert_eq(lt_export_write(&src, dir, &o), LT_OK, "%s", lt_error_message());
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_error_t je;
    json_t *idx = json_load_file(path, 0, &je);
    cr_assert_not_null(idx, "%s", je.text);
    json_t *wm = json_object_get(idx, "weight_map");
    cr_assert_eq(json_object_size(wm), 2 + 5 * 9 + (m->cfg.tied ? 0 : 1));
    const char *first = json_string_value(json_object_get(wm, "model.embed_tokens.weight"));
    const char *last = json_string_value(json_object_get(wm, "model.norm.weight"));
    cr_assert(first && !strncmp(first, "model-00001-of-0000", 19), "%s", first);
    cr_assert(last && strcmp(first, last) && !strcmp(first + 14, last + 14), "%s %s", first, last);
    int64_t total = 0; /* metadata.total_size = the tensor bytes of all shards */
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(v));
        lt_safetensors *sf;
        cr_assert_eq(lt_safetensors_open(&sf, path), LT_OK);
        const lt_st_tensor *t = lt_safetensors_find(sf, key);
        cr_assert_not_null(t, "%s not in %s", key, path);
        total += (int64_t)t->nbytes;
        lt_safetensors_close(sf);
    }
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(idx, "metadata"),
                                                    "total_size")), total);
    json_decref(idx);
    lt_model *merged;
    lt_tokenizer *tok;
    cr_assert_eq(lt_model_load(&merged, &tok, dir), LT_OK, "%s", lt_error_message());
    float *got = logits(merged);
    float d = max_diff(got, want, 8 * (size_t)m->cfg.vocab_size);
    cr_assert(d <= MERGED_F32_TOL, "merged logits differ by %g", d);
    cr_assert_eq(lt_tokenizer_vocab_size(tok), 512);
    free(want);
    free(got);
    lt_tokenizer_free(tok);
    lt_model_free(merged);
    lt_export_src_close(&src);
    lt_model_free(m);
}

Test(convert, gguf_to_hf_to_gguf_roundtrip, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    float *want = logits(m);
    size_t n = 8 * (size_t)m->cfg.vocab_size;
    char hf[512], gg[512];
    snprintf(hf, sizeof hf, "%s/hf", tmp);
    snprintf(gg, sizeof gg, "%s/back.gguf", tmp);
    cr_assert_eq(lt_convert(model_path, LT_CONVERT_TO_HF, hf, LT_F32, LT_EXPORT_DEFAULT_SHARD_BYTES,
                            false), LT_OK, "%s", lt_error_message());
    lt_model *mh;
    lt_tokenizer *tok;
    cr_assert_eq(lt_model_load(&mh, &tok, hf), LT_OK, "%s", lt_error_message());
    float *got = logits(mh);
    cr_assert(max_diff(got, want, n) <= CONVERT_F32_TOL);
    free(got);
    /* the rebuilt tokenizer encodes as the GGUF's does */
    lt_tokens a = {0}, b = {0};
    const char *text = "Once upon a time, there was a little cat.";
    lt_tokenizer_encode(src.tok, text, strlen(text), false, 1, &a);
    lt_tokenizer_encode(tok, text, strlen(text), false, 1, &b);
    cr_assert(a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof(int32_t)));
    lt_tokens_free(&a);
    lt_tokens_free(&b);
    lt_tokenizer_free(tok);
    lt_model_free(mh);

    cr_assert_eq(lt_convert(hf, LT_CONVERT_TO_GGUF, gg, LT_F32, 0, false), LT_OK, "%s",
                 lt_error_message());
    lt_gguf *g;
    cr_assert_eq(lt_gguf_open(&g, gg), LT_OK);
    /* F32 all the way: every tensor of the original comes back with the same bytes */
    for (int64_t i = 0; i < src.gguf->n_tensors; i++) {
        const lt_gguf_tensor *t0 = &src.gguf->tensors[i];
        const lt_gguf_tensor *t1 = lt_gguf_find_tensor(g, t0->name);
        if (!t1 && !strcmp(t0->name, "output.weight")) continue; /* tied copy */
        cr_assert_not_null(t1, "%s missing", t0->name);
        cr_assert(t1->nbytes == t0->nbytes && !memcmp(t1->data, t0->data, t0->nbytes),
                  "%s differs", t0->name);
    }
    lt_export_src s2;
    lt_model *mg;
    cr_assert_eq(lt_export_src_load(&s2, &mg, gg, NULL), LT_OK, "%s", lt_error_message());
    got = logits(mg);
    cr_assert(max_diff(got, want, n) <= CONVERT_F32_TOL);
    free(got);
    lt_export_src_close(&s2);
    lt_model_free(mg);
    lt_gguf_close(g);
    free(want);
    lt_export_src_close(&src);
    lt_model_free(m);
}

/* ---- small pieces ------------------------------------------------------------------------- */

Test(export, names_sizes_formats) {
    int64_t b;
    cr_assert_eq(lt_export_parse_size("2GB", &b), LT_OK);
    cr_assert_eq(b, 2000000000LL);
    cr_assert_eq(lt_export_parse_size("64KiB", &b), LT_OK);
    cr_assert_eq(b, 65536);
    cr_assert_eq(lt_export_parse_size("1.5MB", &b), LT_OK);
    cr_assert_eq(b, 1500000);
    cr_assert_eq(lt_export_parse_size("12", &b), LT_OK);
    cr_assert_eq(b, 12);
    cr_assert_eq(lt_export_parse_size("2 parsecs", &b), LT_ERR_USAGE);
    cr_assert_eq(lt_export_parse_size("-5GB", &b), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_name("model", "n"), LT_OK);
    cr_assert_eq(lt_export_check_name("../evil", "n"), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_name("a/b", "n"), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_name("..", "n"), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_name("", "n"), LT_ERR_USAGE);
    lt_export_format f;
    for (int i = 0; i < LT_EXPORT_FORMAT_COUNT; i++) {
        cr_assert_eq(lt_export_format_from_name(&f, lt_export_format_names[i]), LT_OK);
        cr_assert_eq((int)f, i);
    }
    cr_assert_eq(lt_export_format_from_name(&f, "onnx"), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_dtype(LT_EXPORT_MERGED_SAFETENSORS, LT_Q8_0), LT_ERR_USAGE);
    cr_assert_eq(lt_export_check_dtype(LT_EXPORT_MERGED_GGUF, LT_Q8_0), LT_OK);
    cr_assert_eq(lt_export_check_dtype(LT_EXPORT_PEFT, LT_F16), LT_ERR_USAGE);
}

/* PEFT settings that would make lathe apply a different adapter than the file describes are
 * refused at load, with the key named. */
Test(export, peft_load_refuses_unsupported_settings, .init = setup, .fini = teardown) {
    lt_export_src src;
    lt_model *m = load_base(&src);
    attach(m, 8, 16, false);
    char dir[512], cfgp[600];
    export_to(&src, LT_EXPORT_PEFT, LT_F32, dir, sizeof dir);
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", dir);
    const char *keys[] = {"modules_to_save", "rank_pattern", "layers_to_transform",
                          "fan_in_fan_out"};
    const char *vals[] = {"[\"lm_head\"]", "{\"q_proj\": 4}", "[0, 1]", "true"};
    for (int i = 0; i < 4; i++) {
        json_error_t je;
        json_t *cfg = json_load_file(cfgp, 0, &je);
        cr_assert_not_null(cfg);
        json_t *orig = json_deep_copy(cfg);
        json_object_set_new(cfg, keys[i], json_loads(vals[i], JSON_DECODE_ANY, &je));
        cr_assert_eq(json_dump_file(cfg, cfgp, 0), 0);
        cr_assert_eq(lt_peft_load(m, dir), LT_ERR_MODEL, "%s accepted", keys[i]);
        cr_assert(strstr(lt_error_message(), keys[i]), "%s", lt_error_message());
        cr_assert_eq(json_dump_file(orig, cfgp, 0), 0);
        json_decref(cfg);
        json_decref(orig);
    }
    cr_assert_eq(lt_peft_load(m, dir), LT_OK, "%s", lt_error_message());
    lt_export_src_close(&src);
    lt_model_free(m);
}
