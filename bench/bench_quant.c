/* Quantization error benchmark: how far deq(q(W)) lands from W for the base-weight layouts a
 * QLoRA run can use, printed as JSON lines (one per weight set and layout, then a summary).
 *
 * usage: bench_quant [MODEL.gguf]   (default ~/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf)
 *
 * Layouts, all with the same block size B = 64 where they have one:
 *   nf4      NF4, one F32 absmax per block (bitsandbytes quant_type="nf4"; quant.h)
 *   nf4_dq   NF4 + double quantization (compress_statistics=True)
 *   int4     symmetric absmax int4: q = round(7·x/absmax) in [-7, 7], x = q·absmax/7, one F32
 *            absmax per block (the plain 4-bit baseline of QLoRA §3)
 *   q8_0     GGUF Q8_0 (blocks of 32, F16 scale; an 8-bit reference point)
 * Figures: mean |W − deq(q(W))| over all elements, the same relative to mean |W|, and over
 * blocks of 64 the distribution (mean, p50, p99, max) of each block's mean |error|; storage
 * bytes and bits per parameter.
 *
 * Weight sets: a seeded Gaussian matrix (N(0, 0.02²), 1024×1024), then real SmolLM2-135M layers.
 * The GGUF stores them as Q4_1, so they are dequantized to F32 first and re-quantized: the
 * source is already on a 4-bit grid per 32 elements, which flatters layouts whose blocks align
 * with it; the output says so ("source"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "quant/quant.h"

#define BLOCK 64

enum { L_NF4, L_NF4_DQ, L_INT4, L_Q8_0, L_COUNT };
static const char *layout_name[L_COUNT] = {"nf4", "nf4_dq", "int4", "q8_0"};

typedef struct {
    double sum_err, sum_abs;
    int64_t n;
    double *block_err; /* per 64-block mean |err| */
    int64_t n_blocks, cap;
    double bytes;
} acc;

static void acc_add(acc *a, const float *w, const float *d, int64_t n) {
    for (int64_t b = 0; b < n / BLOCK; b++) {
        double e = 0;
        for (int i = 0; i < BLOCK; i++) {
            const int64_t j = b * BLOCK + i;
            e += fabs((double)w[j] - (double)d[j]);
            a->sum_abs += fabs((double)w[j]);
        }
        a->sum_err += e;
        if (a->n_blocks == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 1024;
            a->block_err = lt_xrealloc(a->block_err, (size_t)a->cap * sizeof(double));
        }
        a->block_err[a->n_blocks++] = e / BLOCK;
    }
    a->n += n;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Quantize and dequantize w (n elements, rows of `row`) with layout l into d; returns bytes. */
static double roundtrip(int l, const float *w, int64_t n, int64_t row, float *d) {
    if (l == L_NF4 || l == L_NF4_DQ) {
        lt_tensor src = {0}, q;
        src.dtype = LT_F32;
        lt_tensor_set_shape(&src, 2, (int64_t[]){n / row, row});
        src.data = (void *)w;
        src.name = "bench";
        if (lt_nf4_quantize(&q, &src, BLOCK, l == L_NF4_DQ) != LT_OK) {
            fprintf(stderr, "%s\n", lt_error_message());
            exit(1);
        }
        lt_nf4_dequant_range(q.data, q.quant, 0, n, d);
        const lt_nf4_state *st = q.quant;
        double bytes = (double)n / 2;
        bytes += st->double_quant ? (double)st->n_blocks + 4.0 * (double)((st->n_blocks + 255) / 256) + 4
                                  : 4.0 * (double)st->n_blocks;
        lt_nf4_free(&q);
        return bytes;
    }
    if (l == L_INT4) {
        for (int64_t b = 0; b < n / BLOCK; b++) {
            const float *x = w + b * BLOCK;
            float amax = 0;
            for (int i = 0; i < BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
            const float s = amax / 7.0f, inv = amax > 0 ? 7.0f / amax : 0.0f;
            for (int i = 0; i < BLOCK; i++) {
                float q = roundf(x[i] * inv);
                q = q > 7 ? 7 : q < -7 ? -7 : q;
                d[b * BLOCK + i] = q * s;
            }
        }
        return (double)n / 2 + 4.0 * (double)(n / BLOCK);
    }
    uint8_t *q = malloc(lt_dtype_nbytes(LT_Q8_0, n));
    lt_quantize_q8_0(w, q, n);
    lt_dequant(LT_Q8_0, q, d, n);
    free(q);
    return (double)lt_dtype_nbytes(LT_Q8_0, n);
}

static void report(const char *set, const char *source, int l, acc *a) {
    qsort(a->block_err, (size_t)a->n_blocks, sizeof(double), cmp_double);
    const double mean = a->sum_err / (double)a->n;
    printf("{\"set\":\"%s\",\"source\":\"%s\",\"layout\":\"%s\",\"block\":%d,\"params\":%lld,"
           "\"mean_abs_err\":%.6g,\"rel_mean_abs_err\":%.5f,\"block_mean_abs_err\":{\"mean\":%.6g,"
           "\"p50\":%.6g,\"p99\":%.6g,\"max\":%.6g},\"bytes\":%.0f,\"bits_per_param\":%.4f}\n",
           set, source, layout_name[l], l == L_Q8_0 ? 32 : BLOCK, (long long)a->n, mean,
           mean / (a->sum_abs / (double)a->n), mean,
           a->block_err[a->n_blocks / 2], a->block_err[(int64_t)(0.99 * (double)(a->n_blocks - 1))],
           a->block_err[a->n_blocks - 1], a->bytes, 8.0 * a->bytes / (double)a->n);
}

/* Box–Muller on lathe's splitmix64 stream. */
static float gauss(lt_rng *r) {
    float u1 = lt_rng_uniform(r), u2 = lt_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

int main(int argc, char **argv) {
    lt_tune_thread_env(argv);
    char def[1024];
    snprintf(def, sizeof def, "%s/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf",
             getenv("HOME") ? getenv("HOME") : ".");
    const char *path = argc > 1 ? argv[1] : def;
    double mean_err[2][L_COUNT] = {{0}};

    /* Gaussian */
    {
        const int64_t R = 1024, C = 1024, n = R * C;
        float *w = malloc((size_t)n * sizeof(float)), *d = malloc((size_t)n * sizeof(float));
        lt_rng rng = {20240531};
        for (int64_t i = 0; i < n; i++) w[i] = 0.02f * gauss(&rng);
        for (int l = 0; l < L_COUNT; l++) {
            acc a = {0};
            a.bytes = roundtrip(l, w, n, C, d);
            acc_add(&a, w, d, n);
            report("gaussian_1024x1024", "N(0,0.02^2) splitmix64 seed 20240531", l, &a);
            mean_err[0][l] = a.sum_err / (double)a.n;
            free(a.block_err);
        }
        free(w), free(d);
    }

    /* SmolLM2 layers: every 2-D blk.* weight, aggregated, plus three single layers */
    lt_gguf *g = NULL;
    if (lt_gguf_open(&g, path) != LT_OK) {
        printf("{\"set\":\"smollm2\",\"skipped\":\"%s\"}\n", lt_error_message());
    } else {
        const char *single[] = {"blk.0.attn_q.weight", "blk.15.ffn_down.weight",
                                "blk.29.ffn_gate.weight"};
        const char *source = "GGUF Q4_1 dequantized to F32, then re-quantized";
        acc all[L_COUNT] = {{0}};
        for (int64_t t = 0; t < g->n_tensors; t++) {
            const lt_gguf_tensor *gt = &g->tensors[t];
            if (gt->n_dims != 2 || strncmp(gt->name, "blk.", 4) != 0) continue;
            const int64_t row = gt->ne[0], n = lt_gguf_tensor_numel(gt);
            if (row % BLOCK) continue;
            float *w = malloc((size_t)n * sizeof(float)), *d = malloc((size_t)n * sizeof(float));
            lt_gguf_tensor_to_f32(gt, w);
            for (int l = 0; l < L_COUNT; l++) {
                const double bytes = roundtrip(l, w, n, row, d);
                all[l].bytes += bytes;
                acc_add(&all[l], w, d, n);
                for (size_t k = 0; k < sizeof single / sizeof *single; k++)
                    if (strcmp(gt->name, single[k]) == 0) {
                        acc a = {0};
                        a.bytes = bytes;
                        acc_add(&a, w, d, n);
                        report(gt->name, source, l, &a);
                        free(a.block_err);
                    }
            }
            free(w), free(d);
        }
        for (int l = 0; l < L_COUNT; l++) {
            report("smollm2_135m_all_blk_2d", source, l, &all[l]);
            mean_err[1][l] = all[l].sum_err / (double)all[l].n;
            free(all[l].block_err);
        }
        lt_gguf_close(g);
    }
    printf("{\"summary\":\"nf4 vs int4 mean |err|\",\"gaussian\":{\"nf4\":%.6g,\"int4\":%.6g,"
           "\"nf4_beats_int4\":%s},\"smollm2\":{\"nf4\":%.6g,\"int4\":%.6g,\"nf4_beats_int4\":%s},"
           "\"bits_per_param_formula\":{\"nf4_b64\":%.4f,\"nf4_dq_b64\":%.4f,\"int4_b64\":4.5,"
           "\"q8_0\":8.5}}\n",
           mean_err[0][L_NF4], mean_err[0][L_INT4],
           mean_err[0][L_NF4] < mean_err[0][L_INT4] ? "true" : "false", mean_err[1][L_NF4],
           mean_err[1][L_INT4], mean_err[1][L_NF4] < mean_err[1][L_INT4] ? "true" : "false",
           lt_nf4_bits_per_param(BLOCK, false), lt_nf4_bits_per_param(BLOCK, true));
    return 0;
}
