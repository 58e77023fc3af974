/*
 * bench_gpu — one LoRA / QLoRA training configuration on the GPU with random weights, printed as
 * one JSON line: tokens/s, ms/step (median of timed steps after warm-up), MFU (useful FLOPs per
 * second over the dense bf16 GEMM rate measured in this same run), peak device memory.
 *
 *   bench_gpu MODEL MODE SEQ BATCH STEPS
 *   MODEL: llama3-8b | smollm2-135m (shapes only; weights are random, nothing is downloaded)
 *   MODE:  lora (bf16 base) | qlora-q8 (Q8_0 base) | qlora-nf4 (NF4 + double quantization, blocks
 *          of 64, as QLoRA)
 *   bench_gpu rates
 *   one JSON line describing the device and what this process loaded (driver, CUDA runtime and
 *   cuBLASLt versions, the CUDA library files mapped) with the measured dense bf16 GEMM rate and
 *   copy bandwidths (see rates() below). tools/gpu_check.sh's environment check runs it.
 *
 * The step is lathe's one training step, lt_train_step (src/train/step.c), on a random-weight
 * model of the shapes (lt_model_random, quantized as the mode says) moved to the GPU with
 * lt_model_to_device: LoRA r=16 on the seven projections, dropout 0.05, gradient checkpointing
 * (the CUDA default), the fused LM-head cross-entropy, AdamW with clipping at 1.
 * Useful FLOPs per step (frozen base: no weight-gradient GEMMs):
 *   4·tokens·P_frozen_linear (fwd + dX) + 6·tokens·P_lora + attention 3.5 · 2·B·T²·Hq·Dh per layer
 *   (causal half of QKᵀ and PV forward; backward ≈ 2.5× forward).
 * Without a GPU it prints {"skip": ...} and exits 0.
 */
#include "autograd/autograd.h"
#include "core/device.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "optim/optim.h"
#include "train/train.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int n_layer, dim, n_head, n_kv, ffn, vocab;
    float rope_base;
} shape;

static const shape SHAPES[] = {
    {"llama3-8b", 32, 4096, 32, 8, 14336, 128256, 500000.0f},
    {"smollm2-135m", 30, 576, 9, 3, 1536, 49152, 100000.0f},
};

/* Median of n timings (sorts them). */
static double median(double *t, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[n / 2];
}

/* Seconds for one cudaMemcpyAsync of n bytes on the compute stream, timed with events: the
 * median of `reps` after one warm-up. */
static double copy_seconds(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, int reps) {
    cudaStream_t st = (cudaStream_t)lt_cuda_stream();
    cudaEvent_t e0, e1;
    LT_CUDA_CHECK(cudaEventCreate(&e0));
    LT_CUDA_CHECK(cudaEventCreate(&e1));
    LT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, st));
    double t[16];
    if (reps > 16) reps = 16;
    for (int r = 0; r < reps; r++) {
        float ms;
        LT_CUDA_CHECK(cudaEventRecord(e0, st));
        LT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kind, st));
        LT_CUDA_CHECK(cudaEventRecord(e1, st));
        LT_CUDA_CHECK(cudaEventSynchronize(e1));
        LT_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t[r] = ms * 1e-3;
    }
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return median(t, reps);
}

/* Print, as a JSON array, the distinct CUDA / NVIDIA shared objects mapped into this process
 * (/proc/self/maps): which libcuda, libcublasLt, ... the dynamic loader actually picked. */
static void print_loaded_libs(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096], seen[32][512];
    int n = 0;
    printf("[");
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path) continue;
        path[strcspn(path, "\n")] = 0;
        const char *base = strrchr(path, '/') + 1;
        if (strncmp(base, "libcu", 5) && strncmp(base, "libnv", 5) && strncmp(base, "libnccl", 7))
            continue;
        bool dup = false;
        for (int i = 0; i < n && !dup; i++) dup = !strcmp(seen[i], path);
        if (dup || n == 32 || strlen(path) >= sizeof seen[0]) continue;
        strcpy(seen[n], path);
        printf("%s\"%s\"", n++ ? "," : "", path); /* paths under /proc/self/maps hold no quotes */
    }
    printf("]");
    if (f) fclose(f);
}

/* `bench_gpu rates`: device, versions, loaded libraries and measured rates as one JSON line.
 *   gemm_bf16_tflops: lt_cuda_gemm_tflops(8192, 8192, 8192) — bf16 operands, f32 accumulation
 *     through the cuBLASLt wrapper every op uses (gemm.cu), median of 9; the MFU denominator.
 *   d2d_gbps: a 512 MiB device-to-device copy, counting bytes read plus bytes written (CUDA's
 *     bandwidthTest convention), so it approaches the memory bandwidth; GB = 1e9 bytes.
 *   h2d_gbps, d2h_gbps: 256 MiB between pinned host memory and the device (the PCIe/NVLink-C2C
 *     link lathe's batch uploads use).
 * Without a device: {"bench":"rates","skip":...}, exit 0. */
static int rates(void) {
    if (lt_cuda_device_count() <= 0 || lt_device_init(LT_CUDA, 0) != LT_OK) {
        printf("{\"bench\":\"rates\",\"skip\":\"%s\"}\n", lt_error_message()[0] ? lt_error_message() : "no CUDA device");
        return 0;
    }
    int drv = 0, rt = 0;
    LT_CUDA_CHECK(cudaDriverGetVersion(&drv));
    LT_CUDA_CHECK(cudaRuntimeGetVersion(&rt));
    size_t lt_ver = cublasLtGetVersion(), used, total;
    char desc[256];
    lt_cuda_describe(desc, sizeof desc);
    lt_cuda_mem_info(&used, &total);
    double tflops = lt_cuda_gemm_tflops(8192, 8192, 8192, 9);

    const size_t nd = 512u << 20, nh = 256u << 20;
    void *d0, *d1, *h;
    LT_CUDA_CHECK(cudaMalloc(&d0, nd));
    LT_CUDA_CHECK(cudaMalloc(&d1, nd));
    LT_CUDA_CHECK(cudaMallocHost(&h, nh));
    memset(h, 1, nh);
    LT_CUDA_CHECK(cudaMemset(d0, 1, nd));
    double d2d = 2.0 * nd / copy_seconds(d1, d0, nd, cudaMemcpyDeviceToDevice, 9) / 1e9;
    double h2d = nh / copy_seconds(d0, h, nh, cudaMemcpyHostToDevice, 5) / 1e9;
    double d2h = nh / copy_seconds(h, d0, nh, cudaMemcpyDeviceToHost, 5) / 1e9;
    cudaFree(d0), cudaFree(d1), cudaFreeHost(h);

    printf("{\"bench\":\"rates\",\"device\":\"%s\",\"mem_total_gib\":%.1f,\"driver_cuda_version\":"
           "\"%d.%d\",\"runtime_version\":\"%d.%d\",\"cublaslt_version\":\"%zu.%zu.%zu\","
           "\"gemm_bf16_tflops\":%.1f,\"gemm_shape\":\"8192x8192x8192\",\"d2d_gbps\":%.1f,"
           "\"h2d_gbps\":%.1f,\"d2h_gbps\":%.1f,\"loaded_libs\":",
           desc, (double)total / (1u << 30), drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10,
           lt_ver / 10000, lt_ver / 100 % 100, lt_ver % 100, tflops, d2d, h2d, d2h);
    print_loaded_libs();
    printf("}\n");
    lt_device_shutdown();
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "rates")) return rates();
    const char *model = argc > 1 ? argv[1] : "smollm2-135m", *mode = argc > 2 ? argv[2] : "lora";
    const int T = argc > 3 ? atoi(argv[3]) : 2048, B = argc > 4 ? atoi(argv[4]) : 1;
    const int steps = argc > 5 ? atoi(argv[5]) : 10, R = 16;
    const shape *S = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, model)) S = &SHAPES[i];
    lt_model_opts qo = {.type = LT_QUANT_NONE};
    if (!strcmp(mode, "qlora-q8")) qo.type = LT_QUANT_Q8_0;
    else if (!strcmp(mode, "qlora-nf4")) qo = (lt_model_opts){.type = LT_QUANT_NF4, .double_quant = true, .block_size = 64};
    else if (strcmp(mode, "lora")) S = NULL;
    if (!S || T < 2 || B < 1 || steps < 1) {
        fprintf(stderr, "usage: bench_gpu llama3-8b|smollm2-135m lora|qlora-q8|qlora-nf4 SEQ BATCH STEPS | rates\n");
        return 2;
    }
    if (lt_cuda_device_count() <= 0 || lt_device_init(LT_CUDA, 0) != LT_OK) {
        printf("{\"bench\":\"lathe-gpu\",\"model\":\"%s\",\"mode\":\"%s\",\"skip\":\"no CUDA device: "
               "%s\"}\n", model, mode, lt_error_message());
        return 0;
    }
    lt_model_config c = {0};
    c.arch = LT_ARCH_LLAMA, c.n_layer = S->n_layer, c.dim = S->dim, c.n_head = S->n_head;
    c.n_kv_head = S->n_kv, c.head_dim = S->dim / S->n_head, c.ffn_dim = S->ffn;
    c.vocab_size = S->vocab, c.context_length = T > 8192 ? T : 8192, c.rope_base = S->rope_base;
    c.rms_eps = 1e-5f, c.tied = S->vocab < 100000, c.act = LT_ACT_SILU;
    c.bos_id = c.eos_id = c.pad_id = -1, c.dtype = LT_BF16;
    lt_model *m = NULL;
    lt_trainer tr = {0};
    lt_batch bt;
    lt_batch_init(&bt, B, T);
    double t_load = lt_now();
    lt_status st = lt_model_random(&m, &c, &qo, 1);
    if (st) goto fail;
    lt_lora_config lc = {.r = R, .alpha = 32.0f, .dropout = 0.05f,
                         .targets = (1u << LT_MOD_COUNT) - 1};
    lt_model_add_lora(m, &lc, 1);
    lt_adamw_hparams hp = lt_adamw_defaults();
    if ((st = lt_model_to_device(m, LT_CUDA)) ||
        (st = lt_trainer_init(&tr, m, &hp, 1.0f, 1, true)))
        goto fail;
    t_load = lt_now() - t_load;
    /* one packed micro-batch of random ids: documents of 512 tokens, every target trained */
    uint64_t s = 3;
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        int t = (int)(i % T);
        bt.tokens[i] = (int32_t)(lt_splitmix64(&s) % (uint64_t)c.vocab_size);
        bt.pos[i] = t % 512;
        bt.doc[i] = t / 512;
    }
    bt.n_target_tokens = 0;
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        bool last = i % T == T - 1 || (i % T) % 512 == 511;
        bt.targets[i] = last ? -1 : bt.tokens[i + 1];
        bt.n_target_tokens += !last;
    }
    bt.n_rows_used = B;
    const double gemm = lt_cuda_gemm_tflops(8192, 8192, 8192, 9);
    const int warm = 2, total = steps + warm > 256 ? 256 : steps + warm;
    double ms[256];
    lt_step_stats ss = {0};
    for (int it = 0; it < total; it++) {
        lt_cuda_sync();
        double t0 = lt_now();
        if ((st = lt_train_step(&tr, &bt, 1, it, 1e-4f, &ss))) goto fail;
        lt_cuda_sync();
        ms[it] = (lt_now() - t0) * 1e3;
    }
    const double med = median(ms + warm, total - warm);
    /* useful FLOPs: the frozen base needs no weight gradient (forward + dX: 4 per weight and
     * token), the adapter 6, attention 3.5 x the causal forward's 2·B·T²·H·Dh per layer, and
     * checkpointing's recomputation is not useful work */
    const int64_t N = (int64_t)B * T, D = c.dim, Dh = c.head_dim;
    double p_frozen = (double)c.vocab_size * D;
    for (int k = 0; k < LT_MOD_COUNT; k++)
        p_frozen += (double)lt_tensor_numel(&m->layers[0].w[k]) * c.n_layer;
    const double flops = 4.0 * N * p_frozen + 6.0 * N * (double)m->n_lora +
                         3.5 * c.n_layer * 2.0 * B * (double)T * T * c.n_head * Dh;
    const size_t peak = lt_model_device_bytes(m) + 3 * (size_t)m->n_lora * sizeof(float);
    char desc[256];
    /* "step" says what was timed (tools/gpu_check.sh reads it): lathe's training step */
    printf("{\"bench\":\"lathe-gpu\",\"step\":\"lt_train_step\",\"device\":\"%s\",\"model\":\"%s\","
           "\"mode\":\"%s\",\"seq\":%d,\"batch\":%d,\"lora_r\":%d,\"tokens_per_s\":%.1f,"
           "\"ms_per_step\":%.2f,\"mfu\":%.4f,\"gemm_tflops\":%.1f,\"peak_mem_gib\":%.2f,"
           "\"loss\":%.4f,\"setup_s\":%.1f}\n",
           lt_cuda_describe(desc, sizeof desc), model, mode, T, B, R, N / (med * 1e-3), med,
           flops / (med * 1e-3) / (gemm * 1e12), gemm, (double)peak / (1u << 30), ss.loss,
           t_load);
    lt_trainer_free(&tr);
    lt_model_free(m);
    lt_batch_free(&bt);
    return 0;
fail:
    printf("{\"bench\":\"lathe-gpu\",\"model\":\"%s\",\"mode\":\"%s\",\"error\":\"%s\"}\n", model,
           mode, lt_error_message());
    lt_trainer_free(&tr);
    lt_model_free(m);
    lt_batch_free(&bt);
    return 1;
}
