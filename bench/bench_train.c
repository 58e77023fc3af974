/* CPU training benchmark: LoRA on a real GGUF base (SmolLM2-135M by default), printing JSON
 * lines: the machine's measured sgemm rate, then tokens/s, ms/step, peak RSS and MFU (the model's
 * matmul FLOPs per second over that sgemm rate, measured in the same run).
 *
 * usage: bench_train MODEL.gguf [--steps N] [--batch B] [--seq T] [--rank R]
 *                    [--quant none|nf4|q8_0] [--double-quant] [--checkpointing]
 *
 * --quant stores the frozen base's seven projections as NF4 (QLoRA, arXiv 2305.14314; block 64,
 * with --double-quant its absmax double-quantized) or Q8_0, quantized on load; the default is
 * the F32 base (plain LoRA). Run each mode in its own process: peak RSS is per process.
 * --checkpointing checkpoints each transformer block (lt_checkpoint, arXiv 1604.06174): the
 * activation arena keeps block outputs only and backward recomputes each block's forward, which
 * the FLOP count below does not include (MFU counts useful work, so it drops by the recompute).
 *
 * FLOPs counted per step (N = B·T tokens; only matmul work, as MFU conventionally does):
 *   base projections and LM head: 2·N·in·out forward + 2·N·in·out input-gradient backward
 *     (the base is frozen: no weight gradient);
 *   LoRA: 2·N·r·(in+out) forward + 4·N·r·(in+out) backward;
 *   attention (causal, so half the T×T products): 2·B·H·T²·Dh forward, 4·B·H·T²·Dh backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "model/model.h"
#include "optim/optim.h"
#include "train/train.h"

static double sgemm_rate(int M, int N, int K, int reps) {
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K),
          *c = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)M * K; i++) a[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < (long)N * K; i++) b[i] = (float)(i % 5) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    double t0 = lt_now();
    for (int r = 0; r < reps; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    double dt = lt_now() - t0;
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K * reps / dt;
}

int main(int argc, char **argv) {
    lt_tune_thread_env(argv);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_train MODEL.gguf [--steps N] [--batch B] [--seq T] "
                        "[--rank R] [--quant none|nf4|q8_0] [--double-quant] "
                        "[--checkpointing]\n");
        return 2;
    }
    int steps = 4, B = 4, T = 512, R = 16;
    lt_model_opts qo = {.type = LT_QUANT_NONE, .block_size = 64};
    bool ckpt = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--double-quant")) {
            qo.double_quant = true;
            continue;
        }
        if (!strcmp(argv[i], "--checkpointing")) {
            ckpt = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_train: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rank")) R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--quant")) {
            const char *q = argv[i + 1];
            if (!strcmp(q, "none")) qo.type = LT_QUANT_NONE;
            else if (!strcmp(q, "nf4")) qo.type = LT_QUANT_NF4;
            else if (!strcmp(q, "q8_0")) qo.type = LT_QUANT_Q8_0;
            else {
                fprintf(stderr, "bench_train: --quant %s: expected none, nf4 or q8_0\n", q);
                return 2;
            }
        } else {
            fprintf(stderr, "bench_train: unknown option %s\n", argv[i]);
            return 2;
        }
        i++;
    }
    lt_gguf *g;
    lt_model *m;
    double t_load = lt_now();
    lt_status st = lt_gguf_open(&g, argv[1]);
    if (!st) st = lt_model_load_gguf_opts(&m, g, &qo);
    if (st) {
        fprintf(stderr, "bench_train: %s\n", lt_error_message());
        return lt_status_exit_code(st);
    }
    lt_gguf_close(g);
    t_load = lt_now() - t_load;
    size_t rss_load = lt_peak_rss();
    char mem[256];
    const char *mode = qo.type == LT_QUANT_NONE ? "lora_f32_base"
                       : qo.type == LT_QUANT_Q8_0 ? "qlora_q8_0"
                       : qo.double_quant ? "qlora_nf4_dq" : "qlora_nf4";
    printf("{\"bench\": \"load\", \"mode\": \"%s\", \"seconds\": %.2f, \"base_mib\": %.1f, "
           "\"peak_rss_after_load_mib\": %.1f, \"base\": \"%s\"}\n", mode, t_load,
           (m->base_bytes + m->quant_bytes) / 1048576.0, rss_load / 1048576.0,
           lt_model_memory_str(m, mem, sizeof mem));
    const lt_model_config *c = &m->cfg;
    int64_t N = (int64_t)B * T;

    /* the machine's sgemm rate on this model's largest projection shape, same thread setup */
    double peak = sgemm_rate((int)N, c->ffn_dim, c->dim, 3);
    printf("{\"bench\": \"sgemm\", \"m\": %lld, \"n\": %d, \"k\": %d, \"gflops\": %.1f}\n",
           (long long)N, c->ffn_dim, c->dim, peak / 1e9);

    lt_lora_config lc = {.r = R, .alpha = 2.0f * R, .dropout = 0.0f, .targets = 0x7f};
    lt_model_add_lora(m, &lc, 1);
    int32_t *tok = malloc(sizeof(int32_t) * N), *tgt = malloc(sizeof(int32_t) * N);
    int32_t *pos = malloc(sizeof(int32_t) * N), *doc = malloc(sizeof(int32_t) * N);
    lt_rng rng = {7};
    for (int64_t i = 0; i < N; i++) {
        tok[i] = (int32_t)(lt_rng_u64(&rng) % (uint64_t)c->vocab_size);
        pos[i] = (int32_t)(i % T);
        doc[i] = 0;
    }
    for (int64_t i = 0; i < N; i++) tgt[i] = (i % T == T - 1) ? -1 : tok[i + 1];

    double flops = 0;
    int64_t Dq = (int64_t)c->n_head * c->head_dim, Dkv = (int64_t)c->n_kv_head * c->head_dim;
    int64_t in[7] = {c->dim, c->dim, c->dim, Dq, c->dim, c->dim, c->ffn_dim};
    int64_t out[7] = {Dq, Dkv, Dkv, c->dim, c->ffn_dim, c->ffn_dim, c->dim};
    for (int k = 0; k < 7; k++) flops += c->n_layer * (4.0 * N * in[k] * out[k] + 6.0 * N * R * (in[k] + out[k]));
    flops += c->n_layer * 6.0 * B * c->n_head * (double)T * T * c->head_dim;
    flops += 4.0 * N * c->dim * c->vocab_size;

    /* the step `lathe train` runs (train.h lt_train_step): loss, backward, norm, AdamW */
    lt_batch batch = {.B = B, .T = T, .tokens = tok, .targets = tgt, .pos = pos, .doc = doc,
                      .n_rows_used = B};
    for (int64_t i = 0; i < N; i++) batch.n_target_tokens += tgt[i] >= 0;
    lt_adamw_hparams hp = lt_adamw_defaults();
    lt_trainer tr;
    if (lt_trainer_init(&tr, m, &hp, 0.0f, 1, ckpt) != LT_OK) {
        fprintf(stderr, "bench_train: %s\n", lt_error_message());
        return 1;
    }
    double total = 0;
    for (int s = 0; s <= steps; s++) {
        double t0 = lt_now();
        lt_step_stats ss;
        if (lt_train_step(&tr, &batch, 1, s, 1e-4f, &ss) != LT_OK) {
            fprintf(stderr, "bench_train: %s\n", lt_error_message());
            return 1;
        }
        double dt = lt_now() - t0;
        if (s == 0) continue; /* warm-up step: first-touch page faults, arena growth */
        total += dt;
        printf("{\"bench\": \"train_step\", \"step\": %d, \"loss\": %.4f, \"ms\": %.1f}\n", s,
               ss.loss, dt * 1e3);
    }
    double per = total / steps;
    printf("{\"bench\": \"lora_train_cpu\", \"mode\": \"%s\", \"gradient_checkpointing\": %s, "
           "\"model\": \"%s\", \"batch\": %d, \"seq_len\": %d, \"rank\": %d, \"steps\": %d, \"tokens_per_s\": %.1f, \"ms_per_step\": %.1f, "
           "\"model_gflop_per_step\": %.1f, \"achieved_gflops\": %.1f, \"sgemm_gflops\": %.1f, "
           "\"mfu\": %.3f, \"activation_arena_mib\": %.1f, \"peak_rss_mib\": %.1f}\n",
           mode, ckpt ? "true" : "false", argv[1], B, T, R, steps, N / per, per * 1e3, flops / 1e9, flops / per / 1e9,
           peak / 1e9, flops / per / peak, tr.arena.peak / 1048576.0, lt_peak_rss() / 1048576.0);
    lt_trainer_free(&tr);
    lt_model_free(m);
    free(tok); free(tgt); free(pos); free(doc);
    return 0;
}
