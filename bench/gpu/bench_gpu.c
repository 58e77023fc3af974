/*
 * bench_gpu — one LoRA / QLoRA training configuration on the GPU with random weights, printed as
 * one JSON line: tokens/s, ms/step (median of timed steps after warm-up), MFU (useful FLOPs per
 * second over the dense bf16 GEMM rate measured in this same run), peak device memory.
 *
 *   bench_gpu MODEL MODE SEQ BATCH STEPS
 *   MODEL: llama3-8b | smollm2-135m (shapes only; weights are random, nothing is downloaded)
 *   MODE:  lora (bf16 base) | qlora-q8 (Q8_0 base) | qlora-nf4 (pending the nf4 branch)
 *   bench_gpu rates
 *   one JSON line describing the device and what this process loaded (driver, CUDA runtime and
 *   cuBLASLt versions, the CUDA library files mapped) with the measured dense bf16 GEMM rate and
 *   copy bandwidths (see rates() below). tools/gpu_check.sh's environment check runs it.
 *
 * The step is the training step of src/train/train.c on device arenas: ops from autograd.h, the
 * fused LM-head cross-entropy, lt_backward, the device AdamW over the flat adapter buffer.
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

static lt_dev_arena arenas[LT_DEV_CLASS_COUNT];

/* Random frozen weights: bf16 uniform in ±0.05 (a 1 MiB pattern repeated), or Q8_0 random int8
 * with a small fixed scale. */
static lt_tensor *weight(lt_arena *h, lt_dtype dt, int64_t rows, int64_t cols) {
    int64_t shp[2] = {rows, cols};
    lt_tensor *t = lt_dev_tensor(h, &arenas[LT_DEV_BASE], dt, 2, shp, false);
    size_t nb = lt_tensor_nbytes(t);
    if (dt == LT_BF16) {
        uint16_t *tmp = lt_xmalloc(1 << 20);
        uint64_t s = (uint64_t)rows * 31 + (uint64_t)cols;
        for (int i = 0; i < (1 << 19); i++) tmp[i] = lt_f32_to_bf16((float)((lt_splitmix64(&s) >> 40) * (1.0 / 16777216.0) - 0.5) * 0.1f);
        for (size_t off = 0; off < nb; off += 1 << 20)
            lt_cuda_h2d((char *)t->data + off, tmp, nb - off < (1u << 20) ? nb - off : (1u << 20));
        free(tmp);
    } else { /* Q8_0: random int8 with a fixed small f16 scale in every block */
        uint8_t *tmp = lt_xmalloc(34 * 4096);
        uint64_t s = 7;
        for (int b = 0; b < 4096; b++) {
            uint16_t d = lt_f32_to_f16(0.0004f);
            memcpy(tmp + 34 * b, &d, 2);
            for (int i = 0; i < 32; i++) tmp[34 * b + 2 + i] = (uint8_t)lt_splitmix64(&s);
        }
        for (size_t off = 0; off < nb; off += 34 * 4096)
            lt_cuda_h2d((char *)t->data + off, tmp, nb - off < 34 * 4096 ? nb - off : 34 * 4096);
        free(tmp);
    }
    return t;
}

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
    if (!S) {
        fprintf(stderr, "unknown model %s\n", model);
        return 2;
    }
    if (lt_cuda_device_count() <= 0 || lt_device_init(LT_CUDA, 0) != LT_OK) {
        printf("{\"bench\":\"lathe-gpu\",\"model\":\"%s\",\"mode\":\"%s\",\"skip\":\"no CUDA device: "
               "%s\"}\n", model, mode, lt_error_message());
        return 0;
    }
    lt_dtype wdt = LT_BF16;
    if (!strcmp(mode, "qlora-q8")) wdt = LT_Q8_0;
    else if (!strcmp(mode, "qlora-nf4")) {
        printf("{\"bench\":\"lathe-gpu\",\"model\":\"%s\",\"mode\":\"%s\",\"skip\":\"NF4 linear on "
               "CUDA waits for the nf4 branch's quant state\"}\n", model, mode);
        return 0;
    }
    const int64_t D = S->dim, Dh = D / S->n_head, Hq = S->n_head, Hkv = S->n_kv, F = S->ffn,
                  V = S->vocab, L = S->n_layer, N = (int64_t)B * T;
    const int64_t outs[7] = {Hq * Dh, Hkv * Dh, Hkv * Dh, D, F, F, D}, ins[7] = {D, D, D, Hq * Dh, D, D, F};
    int64_t n_lora = 0, p_frozen = V * D; /* LM head */
    for (int m = 0; m < 7; m++) n_lora += R * (ins[m] + outs[m]) * L, p_frozen += ins[m] * outs[m] * L;

    size_t base_bytes = lt_dtype_nbytes(LT_BF16, V * D) * 2 + (size_t)(L * 2 + 1) * D * 4 + (64u << 20);
    for (int m = 0; m < 7; m++) base_bytes += (lt_dtype_nbytes(wdt, ins[m] * outs[m]) + 256) * L;
    lt_status st;
    if ((st = lt_dev_arena_init(&arenas[LT_DEV_BASE], base_bytes, "frozen base")) ||
        (st = lt_dev_arena_init(&arenas[LT_DEV_ADAPTER], n_lora * 4 + (1 << 20), "adapter")) ||
        (st = lt_dev_arena_init(&arenas[LT_DEV_GRADS], n_lora * 4 + (1 << 20), "adapter grads")) ||
        (st = lt_dev_arena_init(&arenas[LT_DEV_OPTIM], n_lora * 8 + (1 << 20), "optimizer")))
        goto oom;
    size_t fr, tot;
    lt_cuda_mem_info(&fr, &tot); /* fr = used here */
    size_t step_cap = (tot - fr) - (tot - fr) / 8 - (4ull << 30); /* leave room for temps */
    if ((st = lt_dev_arena_init(&arenas[LT_DEV_STEP], step_cap, "activations"))) goto oom;

    lt_arena host;
    lt_arena_init(&host, 16 << 20);
    lt_tensor *embd = weight(&host, LT_BF16, V, D), *head = weight(&host, LT_BF16, V, D);
    int64_t shd[1] = {D};
    lt_tensor *norms = lt_dev_tensor(&host, &arenas[LT_DEV_BASE], LT_F32, 1, shd, false);
    {
        float *ones = lt_xmalloc(D * 4);
        for (int64_t i = 0; i < D; i++) ones[i] = 1.0f;
        lt_cuda_h2d(norms->data, ones, D * 4);
        free(ones);
    }
    /* RoPE inverse frequencies F32 [Dh/2] on the device, computed as the model loader does
     * (lt_rope_inv_freq, default scaling: the torch baseline sets rope_theta only). */
    int64_t shf[1] = {Dh / 2};
    lt_tensor *inv_freq = lt_dev_tensor(&host, &arenas[LT_DEV_BASE], LT_F32, 1, shf, false);
    {
        lt_model_config cfg = {.n_layer = (int)L, .dim = (int)D, .n_head = (int)Hq,
                               .n_kv_head = (int)Hkv, .head_dim = (int)Dh, .ffn_dim = (int)F,
                               .vocab_size = (int)V, .rope_base = S->rope_base, .rms_eps = 1e-5f};
        float *f = lt_xmalloc((size_t)Dh / 2 * sizeof(float));
        lt_rope_inv_freq(f, &cfg);
        lt_cuda_h2d(inv_freq->data, f, (size_t)Dh / 2 * sizeof(float));
        free(f);
    }
    lt_tensor *W[64][7], A[64][7], Bt[64][7], gA[64][7], gB[64][7];
    float *P = lt_dev_arena_alloc(&arenas[LT_DEV_ADAPTER], n_lora * 4);
    float *G = lt_dev_arena_alloc(&arenas[LT_DEV_GRADS], n_lora * 4);
    float *M1 = lt_dev_arena_calloc(&arenas[LT_DEV_OPTIM], n_lora * 4);
    float *M2 = lt_dev_arena_calloc(&arenas[LT_DEV_OPTIM], n_lora * 4);
    {
        float *tmp = lt_xmalloc(n_lora * 4);
        uint64_t s = 3;
        for (int64_t i = 0; i < n_lora; i++) tmp[i] = (float)((lt_splitmix64(&s) >> 40) * (1.0 / 16777216.0) - 0.5) * 0.02f;
        lt_cuda_h2d(P, tmp, n_lora * 4);
        free(tmp);
    }
    int64_t off = 0;
    for (int l = 0; l < L; l++)
        for (int m = 0; m < 7; m++) {
            W[l][m] = weight(&host, wdt, outs[m], ins[m]);
            lt_tensor *pair[2] = {&A[l][m], &Bt[l][m]}, *gp[2] = {&gA[l][m], &gB[l][m]};
            int64_t shp[2][2] = {{R, ins[m]}, {outs[m], R}};
            for (int k = 0; k < 2; k++) {
                memset(pair[k], 0, sizeof(lt_tensor));
                pair[k]->dtype = LT_F32, pair[k]->device = LT_CUDA, pair[k]->requires_grad = true;
                lt_tensor_set_shape(pair[k], 2, shp[k]);
                pair[k]->data = P + off;
                *gp[k] = *pair[k];
                gp[k]->requires_grad = false;
                gp[k]->data = G + off;
                off += shp[k][0] * shp[k][1];
            }
        }
    int32_t *tok = lt_xmalloc(N * 4), *pos = lt_xmalloc(N * 4), *doc = lt_xmalloc(N * 4);
    uint64_t s = 9;
    for (int64_t i = 0; i < N; i++) {
        tok[i] = (int32_t)(lt_splitmix64(&s) % (uint64_t)V);
        doc[i] = (int32_t)((i % T) / (T / 4 > 0 ? T / 4 : 1)); /* four packed documents per row */
        pos[i] = (int32_t)((i % T) % (T / 4 > 0 ? T / 4 : 1));
    }
    double gemm = lt_cuda_gemm_tflops(8192, 8192, 8192, 9);
    lt_adamw_hparams hp = lt_adamw_defaults();
    lt_arena ha;
    lt_arena_init(&ha, 64 << 20);
    lt_graph g;
    lt_graph_init(&g, &ha);
    g.device = LT_CUDA;
    g.dev_arena = &arenas[LT_DEV_STEP];
    double ms[256];
    const int warm = 2;
    int total = steps + warm > 256 ? 256 : steps + warm;
    float loss_h = 0;
    for (int it = 0; it < total; it++) {
        lt_cuda_sync();
        double t0 = lt_now();
        lt_cuda_memset0(G, n_lora * 4);
        for (int l = 0; l < L; l++)
            for (int m = 0; m < 7; m++) A[l][m].grad = &gA[l][m], Bt[l][m].grad = &gB[l][m];
        int64_t sh1[1] = {N}, sh2[2] = {B, T};
        lt_tensor *ids = lt_graph_tensor(&g, LT_I32, 1, sh1), *tp = lt_graph_tensor(&g, LT_I32, 1, sh1),
                  *td = lt_graph_tensor(&g, LT_I32, 2, sh2), *tg = lt_graph_tensor(&g, LT_I32, 1, sh1);
        lt_cuda_h2d(ids->data, tok, N * 4), lt_cuda_h2d(tp->data, pos, N * 4);
        lt_cuda_h2d(td->data, doc, N * 4), lt_cuda_h2d(tg->data, tok, N * 4);
        lt_tensor *x = lt_embedding(&g, embd, ids, 1.0f);
        for (int l = 0; l < L; l++) {
            lt_tensor *h = lt_rmsnorm(&g, x, norms, 1e-5f, 0.0f), *qkv[3];
            for (int m = 0; m < 3; m++)
                qkv[m] = lt_linear(&g, h, W[l][m], &A[l][m], &Bt[l][m], 2.0f, 0.05f, (uint64_t)(it * 977 + l * 7 + m));
            int64_t q4[4] = {B, T, Hq, Dh}, k4[4] = {B, T, Hkv, Dh}, f2[2] = {N, Hq * Dh};
            lt_tensor *q = lt_rope(&g, lt_reshape(&g, qkv[0], 4, q4), tp, inv_freq);
            lt_tensor *k = lt_rope(&g, lt_reshape(&g, qkv[1], 4, k4), tp, inv_freq);
            lt_tensor *v = lt_reshape(&g, qkv[2], 4, k4);
            lt_tensor *a = lt_reshape(&g, lt_attention(&g, q, k, v, td, NULL), 2, f2);
            x = lt_add(&g, x, lt_linear(&g, a, W[l][3], &A[l][3], &Bt[l][3], 2.0f, 0.05f, (uint64_t)(it * 977 + l * 7 + 3)));
            h = lt_rmsnorm(&g, x, norms, 1e-5f, 0.0f);
            lt_tensor *gt = lt_linear(&g, h, W[l][4], &A[l][4], &Bt[l][4], 2.0f, 0.05f, (uint64_t)(it * 977 + l * 7 + 4));
            lt_tensor *up = lt_linear(&g, h, W[l][5], &A[l][5], &Bt[l][5], 2.0f, 0.05f, (uint64_t)(it * 977 + l * 7 + 5));
            x = lt_add(&g, x, lt_linear(&g, lt_glu(&g, gt, up, LT_ACT_SILU), W[l][6], &A[l][6], &Bt[l][6], 2.0f, 0.05f, (uint64_t)(it * 977 + l * 7 + 6)));
        }
        lt_tensor *loss = lt_lm_head_cross_entropy(&g, lt_rmsnorm(&g, x, norms, 1e-5f, 0.0f), head, tg, NULL, 0.0f, 0.0f);
        lt_backward(&g, loss, 1.0f);
        float nrm = lt_cuda_grad_global_norm(G, n_lora);
        lt_cuda_grad_clip(G, n_lora, 1.0f, nrm);
        lt_cuda_adamw_step(P, G, M1, M2, n_lora, &hp, it + 1, 1e-4f);
        lt_cuda_d2h(&loss_h, loss->data, 4);
        lt_cuda_sync();
        ms[it] = (lt_now() - t0) * 1e3;
        lt_graph_clear(&g);
        lt_arena_reset(&ha);
        lt_dev_arena_reset(&arenas[LT_DEV_STEP]);
    }
    int nt = total - warm;
    double *tm = ms + warm;
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && tm[j] < tm[j - 1]; j--) { double t = tm[j]; tm[j] = tm[j - 1]; tm[j - 1] = t; }
    double med = tm[nt / 2];
    double flops = 4.0 * N * (double)p_frozen + 6.0 * N * (double)n_lora +
                   3.5 * L * 2.0 * B * (double)T * T * Hq * Dh;
    size_t used, tot2;
    lt_cuda_mem_info(&used, &tot2);
    size_t peak = arenas[LT_DEV_STEP].peak;
    for (int c = 0; c < LT_DEV_STEP; c++) peak += arenas[c].cap;
    peak += lt_cuda_temp_bytes();
    char desc[256];
    /* "step" says what was timed: this file's hand-built decoder until bench_gpu runs lathe's one
     * training step (issue 8 §1), then "lt_train_step" (tools/gpu_check.sh reads it). */
    printf("{\"bench\":\"lathe-gpu\",\"step\":\"hand-built decoder in bench_gpu.c\","
           "\"device\":\"%s\",\"model\":\"%s\",\"mode\":\"%s\",\"seq\":%d,"
           "\"batch\":%d,\"lora_r\":%d,\"tokens_per_s\":%.1f,\"ms_per_step\":%.2f,\"mfu\":%.4f,"
           "\"gemm_tflops\":%.1f,\"peak_mem_gib\":%.2f,\"loss\":%.4f}\n",
           lt_cuda_describe(desc, sizeof desc), model, mode, T, B, R, N / (med * 1e-3), med,
           flops / (med * 1e-3) / (gemm * 1e12), gemm, (double)peak / (1u << 30), loss_h);
    return 0;
oom:
    printf("{\"bench\":\"lathe-gpu\",\"model\":\"%s\",\"mode\":\"%s\",\"error\":\"%s\"}\n", model, mode,
           lt_error_message());
    return 1;
}
