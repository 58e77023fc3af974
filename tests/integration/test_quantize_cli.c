/* `lathe quantize` through the binary: a small Llama-architecture HF directory (stories260K's
 * config and tokenizer via `convert`, intermediate size 128 so every projection row is a whole
 * number of NF4 blocks, random F32 weights, an untied lm_head) is quantized; every projection in
 * the output must read back (lt_bnb_read_nf4) exactly as lt_nf4_quantize makes it from the source
 * weight, everything else must be the source values in --dtype, and config.json must carry the
 * quantization_config. Bad requests exit 2, a corrupt source exits 3, and neither leaves an output
 * behind. */
#include "../support.h"
#include "export/export.h"
#include "quant/quant.h"

#include <dirent.h>
#include <jansson.h>

static char tmp[256], src[512], out[512];

/* Random F32 tensor of the given shape into w (data kept in *keep). */
static void add_random(lt_st_writer *w, const char *name, int ndim, const int64_t *shape,
                       lt_rng *r, float ***keep, int *n_keep) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (lt_rng_uniform(r) - 0.5f) * 0.2f;
    *keep = realloc(*keep, (size_t)(*n_keep + 1) * sizeof **keep);
    (*keep)[(*n_keep)++] = x;
    lt_st_writer_add(w, name, LT_F32, ndim, shape, x);
}

static void make_src(void) {
    char model[1024], path[700];
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    snprintf(src, sizeof src, "%s/src", tmp);
    cr_assert_eq(lt_convert(model, LT_CONVERT_TO_HF, src, LT_F32, LT_EXPORT_DEFAULT_SHARD_BYTES,
                            false), LT_OK, "%s", lt_error_message());
    lt_model_config c;
    snprintf(path, sizeof path, "%s/config.json", src);
    cr_assert_eq(lt_hf_config_parse(&c, path), LT_OK);
    c.ffn_dim = 128; /* stories260K's 172 is no multiple of 32: no NF4 block divides it */
    c.tied = false;
    cr_assert_eq(lt_hf_config_write(&c, path), LT_OK);
    lt_st_writer *w = lt_st_writer_new();
    lt_rng r = {42};
    float **keep = NULL;
    int n_keep = 0;
    const int64_t emb[2] = {c.vocab_size, c.dim}, norm[1] = {c.dim};
    add_random(w, "model.embed_tokens.weight", 2, emb, &r, &keep, &n_keep);
    add_random(w, "lm_head.weight", 2, emb, &r, &keep, &n_keep);
    add_random(w, "model.norm.weight", 1, norm, &r, &keep, &n_keep);
    const int64_t q = (int64_t)c.n_head * c.head_dim, kv = (int64_t)c.n_kv_head * c.head_dim;
    const int64_t shapes[LT_MOD_COUNT][2] = {{q, c.dim}, {kv, c.dim}, {kv, c.dim}, {c.dim, q},
                                             {c.ffn_dim, c.dim}, {c.ffn_dim, c.dim},
                                             {c.dim, c.ffn_dim}};
    char name[160];
    for (int l = 0; l < c.n_layer; l++) {
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        add_random(w, name, 1, norm, &r, &keep, &n_keep);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        add_random(w, name, 1, norm, &r, &keep, &n_keep);
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l,
                     lt_module_parent((lt_module)k), lt_module_name((lt_module)k));
            add_random(w, name, 2, shapes[k], &r, &keep, &n_keep);
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    cr_assert_eq(lt_st_writer_write(w, path), LT_OK);
    lt_st_writer_free(w);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
}

static void setup(void) {
    ts_tmpdir(tmp, sizeof tmp, "quantize_cli");
    make_src();
    snprintf(out, sizeof out, "%s/out", tmp);
}
static void teardown(void) { ts_rmtree(tmp); }

static int run(const char *args, char **text) { return ts_run(tmp, args, text); }

/* Only src/ and out/ (when expected) in tmp besides the captured output: no temporary left. */
static void expect_no_leftovers(bool with_out) {
    DIR *d = opendir(tmp);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "out.txt")) continue;
        cr_assert(!strcmp(e->d_name, "src") || (with_out && !strcmp(e->d_name, "out")),
                  "leftover %s", e->d_name);
        n++;
    }
    closedir(d);
    cr_assert_eq(n, with_out ? 2 : 1);
}

/* Check OUT against the source model quantized in memory with the same settings. */
static void expect_output(int64_t block, bool dq, lt_dtype dtype) {
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", out);
    bool found;
    lt_bnb_config q;
    cr_assert_eq(lt_bnb_config_read(path, &found, &q), LT_OK, "%s", lt_error_message());
    cr_assert(found);
    cr_assert_eq(q.double_quant, dq);
    cr_assert_eq(q.compute_dtype, dtype);
    lt_model_config c;
    cr_assert_eq(lt_hf_config_parse(&c, path), LT_OK);
    cr_assert_eq(c.dtype, dtype);
    cr_assert_eq(c.ffn_dim, 128);
    cr_assert(!c.tied);
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    cr_assert(ts_exists(path));

    lt_model *m;
    cr_assert_eq(lt_model_load_hf(&m, src), LT_OK, "%s", lt_error_message());
    lt_safetensors *st;
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    cr_assert_eq(lt_safetensors_open(&st, path), LT_OK, "%s", lt_error_message());
    cr_assert_str_eq(lt_safetensors_meta(st, "format"), "pt");
    char name[160];
    int n_plain = 0;
    for (int l = 0; l < c.n_layer; l++) {
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l,
                     lt_module_parent((lt_module)k), lt_module_name((lt_module)k));
            lt_tensor *W = &m->layers[l].w[k], want, got;
            cr_assert(lt_bnb_is_quantized(st, name), "%s", name);
            cr_assert_eq(lt_nf4_quantize(&want, W, block, dq), LT_OK);
            cr_assert_eq(lt_bnb_read_nf4(st, name, W->shape[0], W->shape[1], &got), LT_OK, "%s",
                         lt_error_message());
            const lt_nf4_state *a = want.quant, *b = got.quant;
            const int64_t n = lt_tensor_numel(W);
            cr_assert(memcmp(want.data, got.data, (size_t)n / 2) == 0, "%s codes", name);
            cr_assert_eq(b->blocksize, block);
            cr_assert_eq(b->double_quant, dq);
            if (dq) {
                cr_assert(memcmp(a->absmax_q, b->absmax_q, (size_t)a->n_blocks) == 0);
                cr_assert(memcmp(a->absmax2, b->absmax2,
                                 (size_t)((a->n_blocks + 255) / 256) * 4) == 0);
                cr_assert(memcmp(&a->offset, &b->offset, 4) == 0);
            } else {
                cr_assert(memcmp(a->absmax, b->absmax, (size_t)a->n_blocks * 4) == 0);
            }
            lt_nf4_free(&want);
            lt_nf4_free(&got);
        }
        const lt_tensor *norms[2] = {&m->layers[l].attn_norm, &m->layers[l].ffn_norm};
        const char *nn[2] = {"input_layernorm", "post_attention_layernorm"};
        for (int i = 0; i < 2; i++) {
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, nn[i]);
            const lt_st_tensor *t = lt_safetensors_find(st, name);
            cr_assert(t && t->dtype == dtype, "%s", name);
            float v[4096];
            lt_st_tensor_to_f32(t, v);
            for (int64_t j = 0; j < norms[i]->shape[0]; j++) {
                float x = lt_f32(norms[i])[j];
                float want = dtype == LT_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16(x)) : x;
                cr_assert(v[j] == want, "%s[%lld]", name, (long long)j);
            }
            n_plain++;
        }
    }
    const char *big[2] = {"model.embed_tokens.weight", "lm_head.weight"};
    const lt_tensor *bt[2] = {&m->tok_embd, &m->lm_head};
    for (int i = 0; i < 2; i++) {
        const lt_st_tensor *t = lt_safetensors_find(st, big[i]);
        cr_assert(t && t->dtype == dtype && t->ndim == 2, "%s stays %s", big[i],
                  lt_dtype_name(dtype));
        int64_t n = lt_tensor_numel(bt[i]);
        float *v = malloc((size_t)n * 4);
        lt_st_tensor_to_f32(t, v);
        for (int64_t j = 0; j < n; j++) {
            float x = lt_f32(bt[i])[j];
            cr_assert(v[j] == (dtype == LT_BF16 ? lt_bf16_to_f32(lt_f32_to_bf16(x)) : x));
        }
        free(v);
    }
    cr_assert(lt_safetensors_find(st, "model.norm.weight"));
    /* weights + their companions, norms, embeddings, lm_head, final norm: nothing else */
    cr_assert_eq(st->n_tensors, c.n_layer * LT_MOD_COUNT * (dq ? 6 : 4) + n_plain + 3);
    lt_safetensors_close(st);
    lt_model_free(m);
}

Test(quantize_cli, nf4_double_quant_default, .init = setup, .fini = teardown) {
    char args[1200], *text;
    snprintf(args, sizeof args, "quantize %s --type nf4 --out %s", src, out);
    int rc = run(args, &text);
    cr_assert_eq(rc, 0, "%s", text);
    cr_assert(strstr(text, "NF4+DQ"), "%s", text);
    free(text);
    expect_output(64, true, LT_F32);
    expect_no_leftovers(true);
}

Test(quantize_cli, nf4_plain_block32_bf16, .init = setup, .fini = teardown) {
    char args[1200], *text;
    snprintf(args, sizeof args, "quantize %s --type nf4 --no-double-quant --block-size 32 "
             "--dtype bf16 --out %s", src, out);
    int rc = run(args, &text);
    cr_assert_eq(rc, 0, "%s", text);
    free(text);
    expect_output(32, false, LT_BF16);
}

Test(quantize_cli, existing_output_needs_force, .init = setup, .fini = teardown) {
    char args[1200], *text, marker[700];
    cr_assert_eq(lt_mkdir_p(out), LT_OK);
    snprintf(marker, sizeof marker, "%s/keep.txt", out);
    cr_assert_eq(lt_write_file_atomic(marker, "x", 1), LT_OK);
    snprintf(args, sizeof args, "quantize %s --type nf4 --out %s", src, out);
    int rc = run(args, &text);
    cr_assert_eq(rc, 2, "%s", text);
    cr_assert(strstr(text, "--force"), "%s", text);
    free(text);
    cr_assert(ts_exists(marker));
    snprintf(args, sizeof args, "quantize %s --type nf4 --force --out %s", src, out);
    rc = run(args, &text);
    cr_assert_eq(rc, 0, "%s", text);
    free(text);
    cr_assert(!ts_exists(marker));
    expect_output(64, true, LT_F32);
    expect_no_leftovers(true);
}

Test(quantize_cli, bad_usage_exits_2, .init = setup, .fini = teardown) {
    char args[1200], *text;
    const char *cases[][2] = {
        {"--type q8_0", "only nf4"},
        {"--type nf4 --block-size 48", "power of two"},
        {"--type nf4 --block-size 16", "power of two"},
        {"--type nf4 --dtype q8_0", "f32, bf16 or f16"},
        /* q_proj's rows are 64 long: a 128-element block cannot divide them */
        {"--type nf4 --block-size 128", "q_proj"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(args, sizeof args, "quantize %s %s --out %s", src, cases[i][0], out);
        int rc = run(args, &text);
        cr_assert_eq(rc, 2, "%s: %s", args, text);
        cr_assert(strstr(text, cases[i][1]), "%s: %s", args, text);
        free(text);
        cr_assert(!ts_exists(out));
    }
    snprintf(args, sizeof args, "quantize %s --type nf4", src);
    cr_assert_eq(run(args, &text), 2);
    free(text);
    cr_assert_eq(run("quantize --help", &text), 0);
    cr_assert(strstr(text, "bitsandbytes"));
    free(text);
    expect_no_leftovers(false);
}

Test(quantize_cli, corrupt_source_exits_3, .init = setup, .fini = teardown) {
    char args[1200], *text, path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    cr_assert_eq(truncate(path, 4096), 0);
    snprintf(args, sizeof args, "quantize %s --type nf4 --out %s", src, out);
    int rc = run(args, &text);
    cr_assert_eq(rc, 3, "%s", text);
    cr_assert(strstr(text, "model.safetensors"), "%s", text);
    free(text);
    expect_no_leftovers(false);
}
