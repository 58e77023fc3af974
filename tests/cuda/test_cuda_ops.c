/*
 * test_cuda_ops — every CUDA op against the CPU op (the reference) on random inputs with odd
 * sizes, forward and backward, by normalized error ‖gpu − cpu‖ / ‖cpu‖ under named per-dtype
 * tolerances; NaN never passes. The device step arena is poisoned with 0xFF bytes (bf16/f32 NaN)
 * before each case, so an output element the kernel never wrote fails as NaN, and the alignment
 * padding after each output must still hold the poison (out-of-bounds write guard).
 * Host tests (no GPU needed) check the device element functions against the C references:
 * dropout mask bits, Q8_0 and NF4 dequantization, device-arena bookkeeping.
 *
 * Output: one JSON object per line on stdout, read by tools/gpu_check.sh —
 *   {"check":"cuda_host","case":"dropout_mask","status":"pass"}
 *   {"check":"cuda_op","case":"rmsnorm","dir":"forward","err":1.2e-03,"tol":2e-02,
 *    "tol_name":"TOL_BF16_FWD","nonfinite":0,"guard_bytes":0,"status":"pass"}
 *   {"check":"cuda_op","case":"rmsnorm","dir":"backward","input":1,"err":...,"status":"pass"}
 *   {"check":"cuda_ops_summary","status":"pass","checks":57,"failed":0,"device":"..."}
 * and a FAIL line with details on stderr for every failure. "err" is the normalized error
 * ‖gpu − cpu‖₂ / ‖cpu‖₂ (-1 when it is not finite); a comparison passes when it is below "tol",
 * no value is non-finite and no guard byte was overwritten.
 * Without a GPU each device case prints a "skip" line naming the reason, the summary says
 * "skip", and the program exits 0 (1 only when a host check failed).
 * Built by `make` with CUDA (and `make gpu-bundle`), run by `make test-cuda` and gpu_check.sh.
 */
#include "autograd/autograd.h"
#include "core/device.h"
#include "kernels/kernels.h"
#include "quant/quant.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bf16 has 8 significant bits (rel. rounding 2^-9 ≈ 2e-3 per value); outputs that pass through
 * a few bf16 roundings (inputs are pre-rounded, so only intermediates/outputs round) measure
 * ~4e-3 normwise; 2e-2 leaves margin and still catches any wrong term (O(1e-1..1)). */
#define TOL_BF16_FWD 2e-2
/* grads are f32 but their GEMM operands (dy, saved activations) are rounded to bf16. */
#define TOL_BF16_BWD 3e-2
/* f32 outputs computed from bf16 inputs in f32 (losses): only summation order differs. */
#define TOL_F32_LOSS 1e-3
/* f32 results computed from the same f32 values on both sides (embedding-table grads scattered
 * with atomics, the AdamW update, the global grad norm): only the order of f32 sums differs, a
 * few ulps (1.2e-7 each) over the summed terms. */
#define TOL_F32_SAME_INPUTS 1e-5
/* the AdamW update and the global norm: elementwise f32 formulas, and one f32 reduction whose
 * relative rounding over 1e5 positive squares stays near 1e-7 */
#define TOL_F32_ADAMW 1e-6
#define TOL_F32_NORM 1e-6

/* A tolerance with its name, for the JSON lines. */
typedef struct {
    double v;
    const char *name;
} tol_t;
#define TOL(x) ((tol_t){(x), #x})

static int failures, checks;

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* One host check: a JSON line (pass/fail); counts it. */
static void host_result(const char *name, bool ok) {
    checks++;
    failures += !ok;
    printf("{\"check\":\"cuda_host\",\"case\":");
    json_str(stdout, name);
    printf(",\"status\":\"%s\"}\n", ok ? "pass" : "fail");
}

/* One device comparison (dir "forward" / "backward", input < 0 for the output itself): a JSON
 * line and, when it fails, a FAIL line on stderr. Passes iff err < tol, no non-finite value and
 * no guard byte overwritten. Returns whether it passed. */
static bool op_result(const char *name, const char *dir, int input, double err, tol_t tol,
                      int nonfinite, size_t guard_bad) {
    bool ok = err < tol.v && nonfinite == 0 && guard_bad == 0 && !isnan(err);
    checks++;
    failures += !ok;
    printf("{\"check\":\"cuda_op\",\"case\":");
    json_str(stdout, name);
    printf(",\"dir\":\"%s\"", dir);
    if (input >= 0) printf(",\"input\":%d", input);
    printf(",\"err\":%.3e,\"tol\":%.1e,\"tol_name\":\"%s\",\"nonfinite\":%d,\"guard_bytes\":%zu,"
           "\"status\":\"%s\"}\n", isfinite(err) ? err : -1.0, tol.v, tol.name, nonfinite, guard_bad,
           ok ? "pass" : "fail");
    if (!ok) {
        char which[32] = "";
        if (input >= 0) snprintf(which, sizeof which, " input %d", input);
        fprintf(stderr, "FAIL %s %s%s: err %.3g (tol %s = %.3g), %d non-finite, %zu guard bytes "
                "overwritten\n", name, dir, which, err, tol.name, tol.v, nonfinite, guard_bad);
    }
    return ok;
}

/* A device check that is a yes/no condition (a grad that must or must not exist). */
static void op_condition(const char *name, const char *what, bool ok) {
    checks++;
    failures += !ok;
    printf("{\"check\":\"cuda_op\",\"case\":");
    json_str(stdout, name);
    printf(",\"dir\":\"backward\",\"condition\":");
    json_str(stdout, what);
    printf(",\"status\":\"%s\"}\n", ok ? "pass" : "fail");
    if (!ok) fprintf(stderr, "FAIL %s: %s\n", name, what);
}


static uint64_t rng_s = 12345;
static double unif(double lo, double hi) {
    return lo + (hi - lo) * (double)(lt_splitmix64(&rng_s) >> 11) * (1.0 / 9007199254740992.0);
}
static float bf16_round(float x) { return lt_bf16_to_f32(lt_f32_to_bf16(x)); }

/* ---- host tests --------------------------------------------------------------------------- */

static void host_q8_0(void) {
    const int64_t n = 32 * 37;
    float *x = malloc(n * sizeof *x), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (int64_t i = 0; i < n; i++) x[i] = (float)unif(-3, 3) * (i % 64 < 32 ? 1.0f : 1e-3f);
    void *q = malloc(lt_dtype_nbytes(LT_Q8_0, n));
    lt_quantize_q8_0(x, q, n);
    lt_dequant(LT_Q8_0, q, a, n);
    lt_cuda_host_dequant_q8_0(b, q, n);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += a[i] != b[i];
    if (bad) fprintf(stderr, "FAIL Q8_0 device dequant differs from quant.c in %ld elements\n", (long)bad);
    host_result("dequant_q8_0", bad == 0);
    free(x), free(a), free(b), free(q);
}

/* The NF4 kernel's element function (quant.h lt_nf4_at, as the kernel calls it with its own
 * constant code book) against the CPU dequantizer on weights quantized by lathe, plain and with
 * double quantization: bit-identical. */
static void host_nf4(void) {
    enum { R = 48, C = 128, N = R * C };
    lt_tensor w = {0};
    w.dtype = LT_F32;
    w.name = "nf4 host check";
    lt_tensor_set_shape(&w, 2, (int64_t[]){R, C});
    float *x = malloc(N * sizeof *x), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++) x[i] = (float)unif(-2, 2) * (i % 640 < 64 ? 1e-3f : 1.0f);
    w.data = x;
    for (int dq = 0; dq < 2; dq++) {
        lt_tensor q;
        int bad = -1;
        if (lt_nf4_quantize(&q, &w, 64, dq) == LT_OK) {
            const lt_nf4_state *st = q.quant;
            lt_nf4_dequant_range(q.data, st, 0, N, a);
            lt_cuda_host_dequant_nf4(b, q.data, st, lt_quant_dynamic_map(), N);
            bad = 0;
            for (int i = 0; i < N; i++) bad += a[i] != b[i];
            lt_nf4_free(&q);
        }
        if (bad) fprintf(stderr, "FAIL NF4 device element function vs nf4.c (%s): %d\n",
                         dq ? "double quant" : "plain", bad);
        host_result(dq ? "dequant_nf4_double_quant" : "dequant_nf4", bad == 0);
    }
    free(x), free(a), free(b);
}

static void host_arena_plan(void) {
    lt_dev_arena a = {.base = NULL, .cap = 1000, .used = 0};
    host_result("arena_plan_fits_exactly", lt_dev_arena_plan(&a, 1000) == 0);
    host_result("arena_plan_overflow", lt_dev_arena_plan(&a, 1001) == SIZE_MAX);
    a.used = 1;
    host_result("arena_plan_aligns_256", lt_dev_arena_plan(&a, 10) == 256);
    host_result("arena_plan_aligned_overflow", lt_dev_arena_plan(&a, 745) == SIZE_MAX);
}

/* ---- device tests -------------------------------------------------------------------------- */

/* A leaf for both devices: CPU F32/I32/U8 data (bf16-rounded where the device copy is bf16) and
 * its device twin. */
typedef struct {
    lt_tensor cpu, dev;
    lt_dtype ddt; /* device dtype */
} leaf;

static void leaf_make(leaf *l, lt_dtype cpu_dt, lt_dtype dev_dt, int ndim, const int64_t *shape,
                      bool rg, double lo, double hi) {
    memset(l, 0, sizeof *l);
    l->cpu.dtype = cpu_dt;
    lt_tensor_set_shape(&l->cpu, ndim, shape);
    l->cpu.data = lt_xcalloc(1, lt_tensor_nbytes(&l->cpu) + 64);
    l->cpu.requires_grad = rg;
    int64_t n = lt_tensor_numel(&l->cpu);
    if (cpu_dt == LT_F32)
        for (int64_t i = 0; i < n; i++) {
            float v = (float)unif(lo, hi);
            lt_f32(&l->cpu)[i] = dev_dt == LT_BF16 ? bf16_round(v) : v;
        }
    l->ddt = dev_dt;
    l->dev = l->cpu;
    l->dev.dtype = dev_dt;
    l->dev.device = LT_CUDA;
    LT_CUDA_CHECK(cudaMalloc(&l->dev.data, lt_tensor_nbytes(&l->dev) + 64));
}
static void leaf_upload(leaf *l) {
    int64_t n = lt_tensor_numel(&l->cpu);
    if (l->ddt == LT_BF16)
        lt_cuda_h2d_f32_to_bf16(l->dev.data, lt_f32(&l->cpu), n);
    else
        lt_cuda_h2d(l->dev.data, l->cpu.data, lt_tensor_nbytes(&l->cpu));
}
static void leaf_free(leaf *l) {
    free(l->cpu.data);
    cudaFree(l->dev.data);
}

static double norm_err(const float *a, const float *ref, int64_t n, int *nan) {
    double num = 0, den = 0;
    *nan = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) (*nan)++;
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static float *to_host_f32(const lt_tensor *t) {
    int64_t n = lt_tensor_numel(t);
    float *h = lt_xmalloc((size_t)n * sizeof(float) + 4);
    if (t->dtype == LT_BF16)
        lt_cuda_d2h_bf16_to_f32(h, t->data, n);
    else
        lt_cuda_d2h(h, t->data, (size_t)n * sizeof(float));
    return h;
}

typedef lt_tensor *(*build_fn)(lt_graph *g, lt_tensor **in, void *ctx);

static lt_dev_arena step;
#define STEP_BYTES (256u << 20)

/* Backprop a fixed random R from `out` through the recorded nodes (CPU or CUDA columns). */
static void backprop(lt_graph *g, lt_tensor *out, const float *R) {
    lt_tensor *d = lt_graph_grad(g, out);
    int64_t n = lt_tensor_numel(out);
    if (g->device == LT_CUDA)
        lt_cuda_h2d(d->data, R, (size_t)n * sizeof(float));
    else
        memcpy(d->data, R, (size_t)n * sizeof(float));
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        lt_node *nd = g->nodes[i];
        if (!nd->out->grad) continue;
        const lt_op_def *def = &lt_op_table[nd->op];
        (g->device == LT_CUDA ? def->backward_cuda : def->backward_cpu)(g, nd);
    }
}

static void run_case(const char *name, leaf *L, int nl, build_fn build, void *ctx,
                     tol_t tol_fwd, tol_t tol_bwd) {
    lt_arena ha, da;
    lt_arena_init(&ha, 1 << 20);
    lt_arena_init(&da, 1 << 20);
    lt_graph gc, gd;
    lt_graph_init(&gc, &ha);
    lt_graph_init(&gd, &da);
    gd.device = LT_CUDA;
    gd.dev_arena = &step;
    lt_dev_arena_reset(&step);
    LT_CUDA_CHECK(cudaMemset(step.base, 0xFF, step.cap)); /* poison: NaN in bf16 and f32 */

    lt_tensor *cin[8], *din[8];
    for (int i = 0; i < nl; i++) {
        leaf_upload(&L[i]);
        L[i].cpu.grad = L[i].dev.grad = NULL;
        cin[i] = L[i].cpu.dtype == LT_U8 && L[i].cpu.ndim == 0 ? NULL : &L[i].cpu;
        din[i] = &L[i].dev;
    }
    lt_tensor *oc = build(&gc, cin, ctx), *od = build(&gd, din, ctx);
    lt_cuda_sync();
    int64_t n = lt_tensor_numel(oc);
    float *got = to_host_f32(od);
    int nan;
    double e = norm_err(got, lt_f32(oc), n, &nan);
    /* the padding after the output up to the next 256-byte boundary must still be poison */
    size_t nb = lt_tensor_nbytes(od), pad = ((nb + 255) & ~(size_t)255) - nb, badp = 0;
    if (pad) {
        unsigned char buf[256];
        lt_cuda_d2h(buf, (char *)od->data + nb, pad);
        for (size_t i = 0; i < pad; i++) badp += buf[i] != 0xFF;
    }
    op_result(name, "forward", -1, e, tol_fwd, nan, badp);
    free(got);

    if (oc->requires_grad) {
        float *R = lt_xmalloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) R[i] = (float)unif(-1, 1);
        backprop(&gc, oc, R);
        backprop(&gd, od, R);
        lt_cuda_sync();
        for (int i = 0; i < nl; i++) {
            char what[64];
            if (!L[i].cpu.requires_grad) {
                snprintf(what, sizeof what, "frozen input %d gets no grad", i);
                op_condition(name, what, L[i].dev.grad == NULL);
                continue;
            }
            if (!L[i].dev.grad) {
                snprintf(what, sizeof what, "input %d has a grad", i);
                op_condition(name, what, false);
                continue;
            }
            float *gg = to_host_f32(L[i].dev.grad);
            double eg = norm_err(gg, lt_f32(L[i].cpu.grad), lt_tensor_numel(&L[i].cpu), &nan);
            op_result(name, "backward", i, eg, tol_bwd, nan, 0);
            free(gg);
        }
        free(R);
    }
    lt_graph_free(&gc), lt_graph_free(&gd);
    lt_arena_free(&ha), lt_arena_free(&da);
}

/* ---- cases ---------------------------------------------------------------------------------- */

static lt_tensor *b_add(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_add(g, in[0], in[1]); }
static lt_tensor *b_geglu(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_glu(g, in[0], in[1], LT_ACT_GELU_TANH); }
static lt_tensor *b_softcap(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_softcap(g, in[0], 3.0f); }
static lt_tensor *b_rms1(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_rmsnorm(g, in[0], in[1], 1e-6f, 1.0f); }
static lt_tensor *b_emb_scaled(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_embedding(g, in[0], in[1], 8.0f); }
static lt_tensor *b_swiglu(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_glu(g, in[0], in[1], LT_ACT_SILU); }
static lt_tensor *b_rms(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_rmsnorm(g, in[0], in[1], 1e-5f, 0.0f); }
static lt_tensor *b_rope(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_rope(g, in[0], in[1], in[2]); }
static lt_tensor *b_emb(lt_graph *g, lt_tensor **in, void *c) { (void)c; return lt_embedding(g, in[0], in[1], 1.0f); }
/* c: the attention options (lt_attn_opts *) */
static lt_tensor *b_att(lt_graph *g, lt_tensor **in, void *c) {
    return lt_attention(g, in[0], in[1], in[2], in[3], (const lt_attn_opts *)c);
}
typedef struct { float scale, p; bool lora; } lin_ctx;
static lt_tensor *b_lin(lt_graph *g, lt_tensor **in, void *c) {
    lin_ctx *l = c;
    return lt_linear(g, in[0], in[1], l->lora ? in[2] : NULL, l->lora ? in[3] : NULL, l->scale, l->p,
                     777);
}
static lt_tensor *b_ce(lt_graph *g, lt_tensor **in, void *c) {
    return lt_cross_entropy(g, in[0], in[1], in[2], c ? 5.0f : 0.0f);
}
static lt_tensor *b_lmce(lt_graph *g, lt_tensor **in, void *c) {
    return lt_lm_head_cross_entropy(g, in[0], in[1], in[2], in[3], c ? 5.0f : 0.0f, 0.0f);
}

static void set_i32(leaf *l, int64_t mod, int64_t every_neg) {
    int64_t n = lt_tensor_numel(&l->cpu);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)l->cpu.data)[i] = every_neg && i % every_neg == 3 ? -100 : (int32_t)(lt_splitmix64(&rng_s) % (uint64_t)mod);
}

static void dev_tests(void) {
    leaf L[6];
    /* add / swiglu / geglu on an odd size */
    for (int k = 0; k < 3; k++) {
        const int64_t sh[2] = {37, 129};
        leaf_make(&L[0], LT_F32, LT_BF16, 2, sh, true, -3, 3);
        leaf_make(&L[1], LT_F32, LT_BF16, 2, sh, true, -3, 3);
        static const char *const nm[3] = {"add", "swiglu", "geglu"};
        lt_tensor *(*const fn[3])(lt_graph *, lt_tensor **, void *) = {b_add, b_swiglu, b_geglu};
        run_case(nm[k], L, 2, fn[k], NULL, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        leaf_free(&L[0]), leaf_free(&L[1]);
    }
    { /* soft-capping (Gemma 2 final logits): values well past the cap */
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){29, 77}, true, -9, 9);
        run_case("softcap", L, 1, b_softcap, NULL, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        leaf_free(&L[0]);
    }
    { /* Gemma's (1 + w) RMSNorm */
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){19, 333}, true, -2, 2);
        leaf_make(&L[1], LT_F32, LT_F32, 1, (int64_t[]){333}, false, -0.5, 0.5);
        run_case("rmsnorm_offset", L, 2, b_rms1, NULL, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        leaf_free(&L[0]), leaf_free(&L[1]);
    }
    { /* rmsnorm: trainable weight too */
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){19, 333}, true, -2, 2);
        leaf_make(&L[1], LT_F32, LT_F32, 1, (int64_t[]){333}, true, 0.5, 1.5);
        run_case("rmsnorm", L, 2, b_rms, NULL, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        leaf_free(&L[0]), leaf_free(&L[1]);
    }
    { /* rope: positions restart (packed docs), Dh 64 */
        leaf_make(&L[0], LT_F32, LT_BF16, 3, (int64_t[]){23, 3, 64}, true, -2, 2);
        leaf_make(&L[1], LT_I32, LT_I32, 1, (int64_t[]){23}, false, 0, 0);
        for (int i = 0; i < 23; i++) ((int32_t *)L[1].cpu.data)[i] = i < 11 ? i * 97 : i - 11;
        leaf_make(&L[2], LT_F32, LT_F32, 1, (int64_t[]){32}, false, 0, 0);
        for (int i = 0; i < 32; i++) /* HF default frequencies, base 10000 */
            lt_f32(&L[2].cpu)[i] = 1.0f / powf(10000.0f, (float)(2 * i) / 64.0f);
        run_case("rope", L, 3, b_rope, NULL, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        leaf_free(&L[0]), leaf_free(&L[1]), leaf_free(&L[2]);
    }
    for (int k = 0; k < 2; k++) { /* embedding with repeated ids, trainable table; scaled */
        leaf_make(&L[0], LT_F32, LT_F32, 2, (int64_t[]){41, 67}, true, -1, 1);
        leaf_make(&L[1], LT_I32, LT_I32, 1, (int64_t[]){29}, false, 0, 0);
        set_i32(&L[1], 7, 0);
        run_case(k ? "embedding_scaled" : "embedding", L, 2, k ? b_emb_scaled : b_emb, NULL,
                 TOL(TOL_BF16_FWD), TOL(TOL_F32_SAME_INPUTS));
        leaf_free(&L[0]), leaf_free(&L[1]);
    }
    /* linear: plain, LoRA, LoRA + dropout (same mask bits as the CPU) */
    for (int k = 0; k < 3; k++) {
        const int64_t N = 45, in = 97, out = 71, r = 8;
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){N, in}, true, -1, 1);
        leaf_make(&L[1], LT_F32, LT_BF16, 2, (int64_t[]){out, in}, false, -0.2, 0.2);
        leaf_make(&L[2], LT_F32, LT_F32, 2, (int64_t[]){r, in}, true, -0.2, 0.2);
        leaf_make(&L[3], LT_F32, LT_F32, 2, (int64_t[]){out, r}, true, -0.2, 0.2);
        lin_ctx c = {2.0f, k == 2 ? 0.25f : 0.0f, k > 0};
        const char *nm[3] = {"linear", "linear_lora", "linear_lora_dropout"};
        run_case(nm[k], L, k ? 4 : 2, b_lin, &c, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        for (int i = 0; i < 4; i++) leaf_free(&L[i]);
    }
    /* attention: GQA, KV offset, packed documents, Dh 40 and 128; sliding window 29 (several
     * key tiles skipped, with and without a KV offset); Gemma 2's scale and soft-capping */
    for (int k = 0; k < 6; k++) {
        const int64_t B = 2, Tq = k == 1 || k == 4 ? 21 : 70, Tk = 70, Hq = 4, Hkv = 2,
                      Dh = k == 2 ? 128 : 40;
        const lt_attn_opts ao = {.window = k >= 3 ? 29 : 0, .scale = k == 5 ? 0.0625f : 0.0f,
                                 .softcap = k == 5 ? 2.0f : 0.0f};
        leaf_make(&L[0], LT_F32, LT_BF16, 4, (int64_t[]){B, Tq, Hq, Dh}, true, -1.5, 1.5);
        leaf_make(&L[1], LT_F32, LT_BF16, 4, (int64_t[]){B, Tk, Hkv, Dh}, true, -1.5, 1.5);
        leaf_make(&L[2], LT_F32, LT_BF16, 4, (int64_t[]){B, Tk, Hkv, Dh}, true, -1.5, 1.5);
        leaf_make(&L[3], LT_I32, LT_I32, 2, (int64_t[]){B, Tk}, false, 0, 0);
        for (int64_t i = 0; i < B * Tk; i++) ((int32_t *)L[3].cpu.data)[i] = (int32_t)((i % Tk) / 23);
        const char *nm[6] = {"attention_doc", "attention_kv_offset", "attention_dh128",
                             "attention_window", "attention_window_kv_offset",
                             "attention_window_softcap"};
        run_case(nm[k], L, 4, b_att, (void *)&ao, TOL(TOL_BF16_FWD), TOL(TOL_BF16_BWD));
        for (int i = 0; i < 4; i++) leaf_free(&L[i]);
    }
    /* cross-entropy on bf16 logits, and fused with the LM head (vocab > one chunk) */
    for (int k = 0; k < 2; k++) {
        const int64_t N = 33, V = 301;
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){N, V}, true, -4, 4);
        leaf_make(&L[1], LT_I32, LT_I32, 1, (int64_t[]){N}, false, 0, 0);
        leaf_make(&L[2], LT_U8, LT_U8, 1, (int64_t[]){N}, false, 0, 0);
        set_i32(&L[1], V, 11);
        for (int64_t i = 0; i < N; i++) ((uint8_t *)L[2].cpu.data)[i] = i % 5 != 1;
        run_case(k ? "cross_entropy_den" : "cross_entropy", L, 3, b_ce, k ? (void *)1 : NULL,
                 TOL(TOL_F32_LOSS), TOL(TOL_BF16_BWD));
        for (int i = 0; i < 3; i++) leaf_free(&L[i]);
    }
    for (int k = 0; k < 2; k++) {
        const int64_t N = 37, D = 64, V = k ? 9000 : 257; /* 9000 > LMCE_CHUNK (8192) */
        leaf_make(&L[0], LT_F32, LT_BF16, 2, (int64_t[]){N, D}, true, -1, 1);
        leaf_make(&L[1], LT_F32, LT_BF16, 2, (int64_t[]){V, D}, k == 0, -0.5, 0.5);
        leaf_make(&L[2], LT_I32, LT_I32, 1, (int64_t[]){N}, false, 0, 0);
        leaf_make(&L[3], LT_U8, LT_U8, 1, (int64_t[]){N}, false, 0, 0);
        set_i32(&L[2], V, 9);
        for (int64_t i = 0; i < N; i++) ((uint8_t *)L[3].cpu.data)[i] = i % 6 != 2;
        run_case(k ? "lm_head_ce_chunked" : "lm_head_ce", L, 4, b_lmce, NULL, TOL(TOL_F32_LOSS),
                 TOL(TOL_BF16_BWD));
        for (int i = 0; i < 4; i++) leaf_free(&L[i]);
    }
    { /* AdamW and the global norm on device vs optim.c */
        const int64_t n = 100003;
        float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
        for (int64_t i = 0; i < n; i++) p[i] = (float)unif(-1, 1), g[i] = (float)unif(-1, 1);
        float *dp, *dg, *dm, *dv;
        cudaMalloc((void **)&dp, n * 4), cudaMalloc((void **)&dg, n * 4);
        cudaMalloc((void **)&dm, n * 4), cudaMalloc((void **)&dv, n * 4);
        lt_cuda_h2d(dp, p, n * 4), lt_cuda_h2d(dg, g, n * 4);
        lt_cuda_memset0(dm, n * 4), lt_cuda_memset0(dv, n * 4);
        lt_adamw_hparams h = lt_adamw_defaults();
        h.weight_decay = 0.01f;
        float nc = lt_grad_global_norm(g, n), nd = lt_cuda_grad_global_norm(dg, n);
        op_result("grad_global_norm", "forward", -1, fabs((double)nd - nc) / nc,
                  TOL(TOL_F32_NORM), !isfinite(nd), 0);
        for (int t = 1; t <= 3; t++) {
            lt_adamw_step(p, g, m, v, n, &h, t, 1e-3f);
            lt_cuda_adamw_step(dp, dg, dm, dv, n, &h, t, 1e-3f);
        }
        float *back = malloc(n * 4);
        lt_cuda_d2h(back, dp, n * 4);
        int nan;
        double e = norm_err(back, p, n, &nan);
        op_result("adamw", "forward", -1, e, TOL(TOL_F32_ADAMW), nan, 0);
        free(p), free(g), free(m), free(v), free(back);
        cudaFree(dp), cudaFree(dg), cudaFree(dm), cudaFree(dv);
    }
}

static const char *dev_names[] = {"add", "swiglu", "geglu", "softcap", "rmsnorm_offset", "rmsnorm", "rope", "embedding", "embedding_scaled", "linear",
                                  "linear_lora", "linear_lora_dropout", "attention_doc",
                                  "attention_kv_offset", "attention_dh128", "attention_window",
                                  "attention_window_kv_offset", "attention_window_softcap",
                                  "cross_entropy",
                                  "cross_entropy_den", "lm_head_ce", "lm_head_ce_chunked",
                                  "grad_global_norm", "adamw"};

static void summary(const char *status, const char *device, const char *reason) {
    printf("{\"check\":\"cuda_ops_summary\",\"status\":\"%s\",\"checks\":%d,\"failed\":%d,"
           "\"device\":", status, checks, failures);
    json_str(stdout, device);
    if (reason) {
        printf(",\"reason\":");
        json_str(stdout, reason);
    }
    printf("}\n");
}

int main(int argc, char **argv) { /* argc/argv: the gpu-bundle multi-call binary calls every main so */
    (void)argc, (void)argv;
    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash mid-run keeps every finished line */
    host_q8_0();
    host_nf4();
    host_arena_plan();
    int ndev = lt_cuda_device_count();
    if (ndev <= 0) {
        char why[512];
        snprintf(why, sizeof why, "no CUDA device (%s)",
                 lt_error_message()[0] ? lt_error_message() : "no GPU visible");
        for (size_t i = 0; i < sizeof dev_names / sizeof dev_names[0]; i++) {
            printf("{\"check\":\"cuda_op\",\"case\":\"%s\",\"status\":\"skip\",\"reason\":", dev_names[i]);
            json_str(stdout, why);
            printf("}\n");
        }
        summary(failures ? "fail" : "skip", "none", why);
        return failures ? 1 : 0;
    }
    if (lt_device_init(LT_CUDA, 0)) {
        fprintf(stderr, "%s\n", lt_error_message());
        summary("fail", "none", lt_error_message());
        return 1;
    }
    char desc[256];
    lt_cuda_describe(desc, sizeof desc);
    if (lt_dev_arena_init(&step, STEP_BYTES, "test step arena")) {
        fprintf(stderr, "%s\n", lt_error_message());
        summary("fail", desc, lt_error_message());
        return 1;
    }
    dev_tests();
    lt_dev_arena_free(&step);
    lt_device_shutdown();
    summary(failures ? "fail" : "pass", desc, NULL);
    return failures ? 1 : 0;
}
