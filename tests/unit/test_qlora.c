/* QLoRA (Dettmers et al., arXiv 2305.14314): a frozen NF4 (+ double quantization) or Q8_0 base
 * quantized on load from stories260K, LoRA trained on top of it, merged exports of such a run,
 * and the recipe / load-time errors of the quantization section.
 *
 * stories260K's down_proj rows are 172 long (FFN 172): no power-of-two block divides them, so the
 * quantized runs here use the other six projections (and the default list is the error case). */
#include <math.h>

#include "../support.h"
#include "export/export.h"
#include "io/io.h"
#include "model/model.h"
#include "optim/optim.h"
#include "quant/quant.h"
#include "recipe/recipe.h"

/* Logit error of a quantized-base forward against the F32 base, as ||Δ||₂ / ||logits||₂ over a
 * 64-token prompt of in-distribution text, six projections quantized. Measured here (x86-64,
 * OpenBLAS): NF4+DQ 0.0933, NF4 0.0934, Q8_0 0.0048 — the order of the weights' own relative
 * quantization error: NF4's 16 levels per 64-block leave a per-weight RMS error of ~8-10% of the
 * weights' RMS, Q8_0's 255 levels per 32-block about 1/20 of that, and stories260K (dim 64, 5
 * layers) passes it to the logits nearly undamped. Each tolerance leaves ~1.6x headroom; a wrong
 * code book, nibble order, un-permutation or block/row mismatch gives errors of order 1. */
#define QLORA_NF4_REL_TOL 0.15
#define QLORA_Q8_0_REL_TOL 0.008
/* Double quantization moves each block's absmax by at most half a step of its 8-bit dynamic code
 * (a few 1e-3 relative): NF4+DQ and NF4 logits differ far less than NF4 differs from F32.
 * Measured 0.0061; bound 0.02. */
#define QLORA_DQ_VS_NF4_REL_TOL 0.02
/* A merged F32 export of a QLoRA run holds deq(W) + s·B·A, exactly what the trained model's
 * linear kernel multiplies by, computed in a different order (one sgemm on the merged weight vs
 * x·deq(W)ᵀ + s·(x·Aᵀ)·Bᵀ): only float summation order differs. Measured 8.6e-7; bound 1e-5
 * (a merge that forgot to dequantize or to add the adapter is off by > 1e-2). */
#define QLORA_MERGED_F32_REL_TOL 1e-5
/* The default merged-safetensors export is BF16: rounding each merged weight to 8 mantissa bits
 * (relative error <= 2^-9 = 0.002) moves the logits by about that. Measured 0.0028; bound 0.01. */
#define QLORA_MERGED_BF16_REL_TOL 0.01

#define SIX_PROJ (LT_QUANT_ALL_PROJ & ~(1u << LT_MOD_DOWN))

static char model_path[1024];

/* The golden greedy text tokenized (BOS first), at most cap tokens; returns the count. */
static int prompt_tokens(int32_t *ids, int cap) {
    char golden[1024];
    ts_fixture(golden, sizeof golden, "stories260K/golden_greedy.txt");
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(golden, &text, &n), LT_OK);
    lt_model *m;
    lt_tokenizer *tok;
    cr_assert_eq(lt_model_load(&m, &tok, model_path), LT_OK, "%s", lt_error_message());
    lt_tokens t = {0};
    lt_tokens_push(&t, 1, 1);
    lt_tokenizer_encode(tok, text, n, false, 1, &t);
    int k = (int)(t.n < (size_t)cap ? t.n : (size_t)cap);
    memcpy(ids, t.ids, (size_t)k * sizeof *ids);
    lt_tokens_free(&t);
    lt_tokenizer_free(tok);
    lt_model_free(m);
    free(text);
    return k;
}

/* Logits of one sequence [T, V], malloc'ed. */
static float *logits(lt_model *m, const int32_t *ids, int T) {
    int32_t pos[512], doc[512] = {0};
    for (int i = 0; i < T; i++) pos[i] = i;
    lt_arena a;
    lt_arena_init(&a, 0);
    lt_graph g;
    lt_graph_init(&g, &a);
    g.record = false;
    lt_tensor *l = lt_model_forward(&g, m, 1, T, ids, pos, doc, 0);
    size_t n = (size_t)lt_tensor_numel(l);
    float *out = malloc(n * sizeof *out);
    memcpy(out, l->data, n * sizeof *out);
    lt_graph_free(&g);
    lt_arena_free(&a);
    return out;
}

static double rel_err(const float *x, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(isfinite(x[i]));
        num += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / den);
}

static lt_model *load_q(lt_quant_type t, bool dq, unsigned modules) {
    lt_model_opts o = {.type = t, .double_quant = dq, .block_size = 64, .modules = modules};
    lt_model *m;
    lt_status st = lt_model_load_opts(&m, NULL, model_path, &o);
    cr_assert_eq(st, LT_OK, "%s", lt_error_message());
    return m;
}

Test(qlora, quantize_on_load_logits_close_to_f32) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    int32_t ids[64];
    int T = prompt_tokens(ids, 64);
    cr_assert_eq(T, 64);
    lt_model *f = load_q(LT_QUANT_NONE, false, 0);
    float *ref = logits(f, ids, T);
    size_t n = (size_t)T * f->cfg.vocab_size;
    int64_t n_params = f->n_params;
    lt_model_free(f);

    struct {
        lt_quant_type t;
        bool dq;
        double tol, bits;
        const char *label;
    } cases[] = {
        {LT_QUANT_NF4, true, QLORA_NF4_REL_TOL, lt_nf4_bits_per_param(64, true), "NF4+DQ"},
        {LT_QUANT_NF4, false, QLORA_NF4_REL_TOL, lt_nf4_bits_per_param(64, false), "NF4"},
        {LT_QUANT_Q8_0, false, QLORA_Q8_0_REL_TOL, 8.5, "Q8_0"},
    };
    float *nf4[2] = {NULL, NULL};
    for (int c = 0; c < 3; c++) {
        lt_model *m = load_q(cases[c].t, cases[c].dq, SIX_PROJ);
        /* every layer's six projections quantized, down_proj and the rest F32 */
        for (int l = 0; l < m->cfg.n_layer; l++)
            for (int k = 0; k < LT_MOD_COUNT; k++)
                cr_assert_eq(m->layers[l].w[k].dtype,
                             k == LT_MOD_DOWN ? LT_F32
                                              : cases[c].t == LT_QUANT_NF4 ? LT_NF4 : LT_Q8_0);
        cr_assert_eq(m->n_params, n_params);
        double bits = 8.0 * (double)m->quant_bytes / (double)m->n_quant_params;
        /* measured bits/param: the formula plus the per-tensor offset and the last partial
         * 256-block of double-quant scales (stories260K's tensors are tiny: <= 11008 values) */
        cr_assert(bits >= cases[c].bits && bits < cases[c].bits + 0.05, "%s: %.4f bits/param",
                  cases[c].label, bits);
        float *q = logits(m, ids, T);
        double e = rel_err(q, ref, n);
        char mem[256];
        cr_log_info("stories260K %s (6 projections): logits rel. L2 error %.5f vs F32 (tol %g); "
                    "base %s", cases[c].label, e, cases[c].tol,
                    lt_model_memory_str(m, mem, sizeof mem));
        cr_expect(e < cases[c].tol, "%s: logits rel. error %.5f >= %g", cases[c].label, e,
                  cases[c].tol);
        cr_expect(e > 0, "%s: logits identical to F32: nothing was quantized", cases[c].label);
        if (c < 2) nf4[c] = q;
        else free(q);
        lt_model_free(m);
    }
    double dqe = rel_err(nf4[0], nf4[1], n);
    cr_log_info("stories260K NF4+DQ vs NF4 logits: rel. L2 %.5f (tol %g)", dqe,
                QLORA_DQ_VS_NF4_REL_TOL);
    cr_expect(dqe < QLORA_DQ_VS_NF4_REL_TOL);
    free(nf4[0]);
    free(nf4[1]);
    free(ref);
}

/* A few AdamW steps of LoRA on an NF4+DQ base over one fixed batch; returns first and last
 * loss. The model keeps its trained adapter. */
static void train_steps(lt_model *m, const int32_t *ids, int T, int steps, double *first,
                        double *last) {
    lt_lora_config lc = {.r = 8, .alpha = 16, .dropout = 0, .targets = LT_QUANT_ALL_PROJ};
    lt_model_add_lora(m, &lc, 7);
    int32_t pos[512], doc[512] = {0}, tgt[512];
    for (int i = 0; i < T; i++) {
        pos[i] = i;
        tgt[i] = i + 1 < T ? ids[i + 1] : -1;
    }
    float *om = calloc((size_t)m->n_lora, 4), *ov = calloc((size_t)m->n_lora, 4);
    lt_adamw_hparams hp = lt_adamw_defaults();
    lt_arena a;
    lt_arena_init(&a, 0);
    lt_graph g;
    lt_graph_init(&g, &a);
    int64_t N = T;
    for (int s = 0; s < steps; s++) {
        memset(m->lora_grads, 0, (size_t)m->n_lora * 4);
        lt_tensor *l = lt_model_forward(&g, m, 1, T, ids, pos, doc, (uint64_t)s);
        lt_tensor *tg = lt_graph_tensor(&g, LT_I32, 1, &N);
        memcpy(tg->data, tgt, (size_t)T * sizeof(int32_t));
        lt_tensor *loss = lt_cross_entropy(&g, l, tg, NULL, 0.0f);
        double v = lt_f32(loss)[0];
        cr_assert(isfinite(v));
        if (s == 0) *first = v;
        *last = v;
        lt_backward(&g, loss, 1.0f);
        lt_adamw_step(m->lora_params, m->lora_grads, om, ov, m->n_lora, &hp, s + 1, 5e-3f);
        lt_graph_clear(&g);
        lt_arena_reset(&a);
    }
    lt_graph_free(&g);
    lt_arena_free(&a);
    free(om);
    free(ov);
}

Test(qlora, lora_on_nf4_base_learns_and_merges_exactly, .timeout = 120) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    int32_t ids[128];
    int T = prompt_tokens(ids, 128);
    lt_model *m = load_q(LT_QUANT_NF4, true, SIX_PROJ);
    double first, last;
    train_steps(m, ids, T, 30, &first, &last);
    cr_log_info("stories260K LoRA r=8 on NF4+DQ base, 30 steps: loss %.4f -> %.4f", first, last);
    cr_expect(last < 0.8 * first, "loss %.4f -> %.4f did not fall by 20%%", first, last);

    /* the merged F32 export is deq(W) + s·B·A: its logits match the trained model's */
    char tmp[256], dir[512];
    ts_tmpdir(tmp, sizeof tmp, "qlora_merge");
    snprintf(dir, sizeof dir, "%s/merged", tmp);
    cr_assert_eq(lt_mkdir_p(dir), LT_OK);
    lt_export_src src;
    cr_assert_eq(lt_export_src_open(&src, m, model_path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_export_merged_hf_dir(&src, dir, LT_F32, LT_EXPORT_DEFAULT_SHARD_BYTES), LT_OK,
                 "%s", lt_error_message());
    lt_export_src_close(&src);
    lt_model *mm;
    cr_assert_eq(lt_model_load(&mm, NULL, dir), LT_OK, "%s", lt_error_message());
    float *a = logits(m, ids, 64), *b = logits(mm, ids, 64);
    double e = rel_err(b, a, (size_t)64 * m->cfg.vocab_size);
    cr_log_info("merged F32 export vs NF4+DQ base + adapter: logits rel. L2 %.3g (tol %g)", e,
                QLORA_MERGED_F32_REL_TOL);
    cr_expect(e < QLORA_MERGED_F32_REL_TOL);
    free(a);
    free(b);
    lt_model_free(mm);
    lt_model_free(m);
    ts_rmtree(tmp);
}

Test(qlora, cli_run_merged_export, .timeout = 300) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    char data[1024], tmp[256], args[4096], run[512], *out;
    ts_fixture(data, sizeof data, "data/identity.json");
    ts_tmpdir(tmp, sizeof tmp, "qlora_cli");
    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/data "
             "--eval-fraction 0.1", model_path, data, tmp);
    int rc = ts_run(tmp, args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(args, sizeof args,
             "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s --set train.max_steps=10 --set train.save_every=0 "
             "--set train.eval_every=0 --set quantization.type=nf4 "
             "--set 'quantization.modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj]' "
             "--set 'output.exports=[merged-safetensors]'",
             model_path, tmp, tmp, run);
    rc = ts_run(tmp, args, &out);
    cr_assert_eq(rc, 0, "train failed (exit %d):\n%s", rc, out);
    cr_expect(strstr(out, "quantizing 30/30 tensors to NF4+DQ... done"), "%s", out);
    cr_expect(strstr(out, "base: 0.1 MiB NF4+DQ ("), "%s", out);
    free(out);

    /* the trained model (quantized base + adapter) against the BF16 merged export */
    int32_t ids[64];
    int T = prompt_tokens(ids, 64);
    lt_model *m = load_q(LT_QUANT_NF4, true, SIX_PROJ), *mm;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/adapter", run);
    cr_assert_eq(lt_peft_load(m, dir), LT_OK, "%s", lt_error_message());
    snprintf(dir, sizeof dir, "%s/exports/merged-safetensors", run);
    cr_assert_eq(lt_model_load(&mm, NULL, dir), LT_OK, "%s", lt_error_message());
    float *a = logits(m, ids, T), *b = logits(mm, ids, T);
    double e = rel_err(b, a, (size_t)T * m->cfg.vocab_size);
    cr_log_info("merged-safetensors (BF16) of a QLoRA run vs NF4+DQ base + adapter: logits rel. "
                "L2 %.4f (tol %g)", e, QLORA_MERGED_BF16_REL_TOL);
    cr_expect(e < QLORA_MERGED_BF16_REL_TOL);
    free(b);
    lt_model_free(mm);

    /* `lathe export RUN` later loads the base as the run's recipe says (quantized), so its F32
     * merge is deq(NF4 base) + adapter: as close to the trained model as the in-process merge */
    snprintf(args, sizeof args, "export %s --format merged-safetensors --dtype f32 --out %s/m32",
             run, tmp);
    rc = ts_run(tmp, args, &out);
    cr_assert_eq(rc, 0, "export failed (exit %d):\n%s", rc, out);
    free(out);
    snprintf(dir, sizeof dir, "%s/m32", tmp);
    cr_assert_eq(lt_model_load(&mm, NULL, dir), LT_OK, "%s", lt_error_message());
    b = logits(mm, ids, T);
    e = rel_err(b, a, (size_t)T * m->cfg.vocab_size);
    cr_log_info("lathe export RUN (F32 merge) vs NF4+DQ base + adapter: logits rel. L2 %.3g "
                "(tol %g)", e, QLORA_MERGED_F32_REL_TOL);
    cr_expect(e < QLORA_MERGED_F32_REL_TOL);
    free(a);
    free(b);
    lt_model_free(mm);
    lt_model_free(m);

    /* the default module list includes down_proj: exit 2 naming the tensor */
    snprintf(args, sizeof args,
             "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set output.dir=%s/run2 "
             "--set data.eval= --set train.eval_every=0 --set quantization.type=q8_0",
             model_path, tmp, tmp);
    rc = ts_run(tmp, args, &out);
    cr_expect_eq(rc, 2, "exit %d:\n%s", rc, out);
    cr_expect(strstr(out, "blk.0.ffn_down.weight") && strstr(out, "172"), "%s", out);
    free(out);
    ts_rmtree(tmp);
}

static void expect_load_error(const lt_model_opts *o, const char *a, const char *b) {
    lt_model *m = NULL;
    lt_status st = lt_model_load_opts(&m, NULL, model_path, o);
    cr_expect_eq(st, LT_ERR_RECIPE, "status %d: %s", st, lt_error_message());
    cr_expect_null(m);
    cr_expect(strstr(lt_error_message(), a) && strstr(lt_error_message(), b), "message: %s",
              lt_error_message());
}

Test(qlora, block_size_not_dividing_a_row_names_the_tensor) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    lt_model_opts o = {.type = LT_QUANT_NF4, .double_quant = true, .block_size = 64};
    expect_load_error(&o, "blk.0.ffn_down.weight", "rows of 172 values");
    o.modules = 1u << LT_MOD_Q;
    o.block_size = 128; /* q_proj rows are dim = 64 long */
    expect_load_error(&o, "blk.0.attn_q.weight", "quantization.block_size = 128");
    o.block_size = 48;
    expect_load_error(&o, "blk.0.attn_q.weight", "not a power of two");
    /* stories260K stores output.weight (equal to, but not tied to, token_embd.weight): an
     * untied lm_head can be quantized, since the linear kernel reads NF4 */
    o.block_size = 64;
    o.modules = LT_QUANT_LM_HEAD;
    lt_model *m;
    cr_assert_eq(lt_model_load_opts(&m, NULL, model_path, &o), LT_OK, "%s", lt_error_message());
    cr_expect(!m->cfg.tied);
    cr_expect_eq(m->lm_head.dtype, LT_NF4);
    cr_expect_eq(m->tok_embd.dtype, LT_F32);
    cr_expect_eq(m->n_quant_params, (int64_t)m->cfg.vocab_size * m->cfg.dim);
    lt_model_free(m);
}

static void expect_recipe_error(const char *set, const char *needle) {
    lt_recipe r;
    lt_recipe_defaults(&r);
    lt_status st = lt_recipe_set(&r, "model.path=/x.gguf");
    if (!st) st = lt_recipe_set(&r, "data.train=/x-*.h5");
    if (!st) st = lt_recipe_set(&r, "output.dir=/tmp/x");
    cr_assert_eq(st, LT_OK, "%s", lt_error_message());
    st = lt_recipe_set(&r, set);
    if (!st) st = lt_recipe_validate(&r);
    cr_expect_eq(st, LT_ERR_RECIPE, "--set %s: status %d", set, st);
    cr_expect(strstr(lt_error_message(), needle), "--set %s: message: %s", set,
              lt_error_message());
    lt_recipe_free(&r);
}

Test(qlora, recipe_errors) {
    expect_recipe_error("quantization.type=nf5", "nf4");
    expect_recipe_error("quantization.type=q4_1", "q8_0");
    expect_recipe_error("quantization.block_size=48", "not a power of two");
    expect_recipe_error("quantization.block_size=16", "quantization.block_size");
    expect_recipe_error("quantization.block_size=8192", "quantization.block_size");
    expect_recipe_error("quantization.modules=[q_proj, embed_token]", "embed_tokens");
    expect_recipe_error("quantization.modules=[qproj]", "q_proj");
    /* embed_tokens is a known name, refused only when quantizing */
    lt_recipe r;
    lt_recipe_defaults(&r);
    cr_assert_eq(lt_recipe_set(&r, "model.path=/x.gguf"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "data.train=/x-*.h5"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "output.dir=/tmp/x"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "quantization.modules=[q_proj, embed_tokens]"), LT_OK);
    cr_expect_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_recipe_set(&r, "quantization.type=nf4"), LT_OK);
    cr_expect_eq(lt_recipe_validate(&r), LT_ERR_RECIPE);
    cr_expect(strstr(lt_error_message(), "embedding lookup"), "%s", lt_error_message());
    cr_assert_eq(lt_recipe_set(&r, "quantization.modules=[]"), LT_OK);
    cr_expect_eq(lt_recipe_validate(&r), LT_ERR_RECIPE);
    cr_expect(strstr(lt_error_message(), "quantization.modules is empty"), "%s",
              lt_error_message());
    lt_recipe_free(&r);
}

Test(qlora, hf_directory_quantizes_like_the_gguf) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    char tmp[256], dir[512];
    ts_tmpdir(tmp, sizeof tmp, "qlora_hf");
    snprintf(dir, sizeof dir, "%s/hf", tmp);
    cr_assert_eq(lt_convert(model_path, LT_CONVERT_TO_HF, dir, LT_F32,
                            LT_EXPORT_DEFAULT_SHARD_BYTES, false), LT_OK, "%s",
                 lt_error_message());
    lt_model *g = load_q(LT_QUANT_NF4, true, SIX_PROJ), *h;
    lt_model_opts o = {.type = LT_QUANT_NF4, .double_quant = true, .block_size = 64,
                       .modules = SIX_PROJ};
    cr_assert_eq(lt_model_load_opts(&h, NULL, dir, &o), LT_OK, "%s", lt_error_message());
    /* the same F32 values (GGUF Q/K rows un-permuted, HF rows as they are) quantize to the same
     * codes and states */
    cr_expect_eq(h->quant_bytes, g->quant_bytes);
    for (int l = 0; l < g->cfg.n_layer; l++)
        for (int k = 0; k < LT_MOD_DOWN; k++) {
            const lt_tensor *a = &g->layers[l].w[k], *b = &h->layers[l].w[k];
            cr_assert_eq(b->dtype, LT_NF4);
            cr_expect(!memcmp(a->data, b->data, lt_tensor_numel(a) / 2), "layer %d %s codes", l,
                      lt_module_name((lt_module)k));
            const lt_nf4_state *sa = a->quant, *sb = b->quant;
            cr_expect(!memcmp(sa->absmax_q, sb->absmax_q, (size_t)sa->n_blocks) &&
                      sa->offset == sb->offset, "layer %d %s state", l,
                      lt_module_name((lt_module)k));
        }
    /* the block-size error names the HF tensor */
    o.modules = 0;
    lt_model *x = NULL;
    cr_expect_eq(lt_model_load_opts(&x, NULL, dir, &o), LT_ERR_RECIPE);
    cr_expect(strstr(lt_error_message(), "model.layers.0.mlp.down_proj.weight"), "%s",
              lt_error_message());
    lt_model_free(g);
    lt_model_free(h);
    ts_rmtree(tmp);
}

/* A bitsandbytes 4-bit checkpoint (src/io/bnb.c layout) loads with its NF4 codes kept as stored:
 * the same codes and states as quantizing the F32 weights on load. */
Test(qlora, bnb_checkpoint_is_adopted_without_requantizing) {
    ts_fixture(model_path, sizeof model_path, "stories260K/stories260K.gguf");
    char tmp[256], f32dir[512], path[700], qpath[700];
    ts_tmpdir(tmp, sizeof tmp, "qlora_bnb");
    snprintf(f32dir, sizeof f32dir, "%s/hf", tmp);
    cr_assert_eq(lt_convert(model_path, LT_CONVERT_TO_HF, f32dir, LT_F32,
                            LT_EXPORT_DEFAULT_SHARD_BYTES, false), LT_OK, "%s",
                 lt_error_message());
    snprintf(path, sizeof path, "%s/model.safetensors", f32dir);
    snprintf(qpath, sizeof qpath, "%s/model.q.safetensors", f32dir);
    lt_safetensors *sf;
    cr_assert_eq(lt_safetensors_open(&sf, path), LT_OK, "%s", lt_error_message());
    lt_st_writer *w = lt_st_writer_new();
    lt_tensor *q = calloc((size_t)sf->n_tensors, sizeof *q);
    for (int i = 0; i < sf->n_tensors; i++) {
        const lt_st_tensor *t = &sf->tensors[i];
        bool proj = strstr(t->name, "_proj.weight") && !strstr(t->name, "down_proj");
        if (!proj) {
            lt_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
            continue;
        }
        lt_tensor src = {.dtype = LT_F32, .name = t->name, .data = (void *)t->data};
        lt_tensor_set_shape(&src, 2, t->shape);
        cr_assert_eq(lt_nf4_quantize(&q[i], &src, 64, true), LT_OK);
        cr_assert_eq(lt_bnb_write_nf4(w, t->name, &q[i]), LT_OK, "%s", lt_error_message());
    }
    cr_assert_eq(lt_st_writer_write(w, qpath), LT_OK, "%s", lt_error_message());
    lt_bnb_writer_release(w);
    lt_st_writer_free(w);
    for (int i = 0; i < sf->n_tensors; i++) lt_nf4_free(&q[i]);
    free(q);
    lt_safetensors_close(sf);
    cr_assert_eq(rename(qpath, path), 0);

    lt_model *g = load_q(LT_QUANT_NF4, true, SIX_PROJ), *h;
    lt_model_opts o = {.type = LT_QUANT_NF4, .double_quant = true, .block_size = 64,
                       .modules = SIX_PROJ};
    cr_assert_eq(lt_model_load_opts(&h, NULL, f32dir, &o), LT_OK, "%s", lt_error_message());
    cr_expect_eq(h->quant_bytes, g->quant_bytes);
    for (int l = 0; l < g->cfg.n_layer; l++)
        for (int k = 0; k < LT_MOD_DOWN; k++) {
            const lt_tensor *a = &g->layers[l].w[k], *b = &h->layers[l].w[k];
            cr_assert_eq(b->dtype, LT_NF4);
            cr_expect(!memcmp(a->data, b->data, lt_tensor_numel(a) / 2));
        }
    /* without quantization options the same directory loads as deq(W) in F32 */
    lt_model *d;
    cr_assert_eq(lt_model_load(&d, NULL, f32dir), LT_OK, "%s", lt_error_message());
    float *row = malloc((size_t)d->cfg.dim * sizeof *row);
    lt_dequant_rows(&g->layers[2].w[LT_MOD_V], 3, 1, row);
    cr_expect(!memcmp(row, (float *)d->layers[2].w[LT_MOD_V].data + 3 * d->cfg.dim,
                      (size_t)d->cfg.dim * sizeof *row));
    free(row);
    lt_model_free(d);
    lt_model_free(g);
    lt_model_free(h);
    ts_rmtree(tmp);
}
