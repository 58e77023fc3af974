/*
 * kernels — entry points of the op implementations, one forward/backward pair per op and device.
 *
 * Every entry point has the op-table signature `void (lt_graph *g, lt_node *n)`: inputs are
 * n->in[], the (already allocated) output is n->out, scalar parameters n->p, and a forward may
 * allocate op-private tensors from the graph arena into n->saved[] for its backward (only when
 * n->out->requires_grad, i.e. the node is being recorded). Backwards ACCUMULATE (+=) into
 * lt_graph_grad(g, in) and only for inputs with requires_grad; frozen inputs never get a grad.
 * Shapes and the meaning of in[]/saved[] per op are documented at each pair below; the user-level
 * contracts are the op constructors in src/autograd/autograd.h.
 *
 * CPU kernels (src/kernels/cpu/<op>.c) compute in F32: GEMMs through OpenBLAS (cblas_sgemm, which
 * threads itself), elementwise loops through OpenMP over rows.
 */
#ifndef LATHE_KERNELS_H
#define LATHE_KERNELS_H

#include "../autograd/autograd.h"
#include "../optim/optim.h"
#include "../quant/quant.h"

/* ---- LoRA dropout mask (one definition for the CPU and CUDA kernels: the same mask) ---------
 * Element j of the flattened adapter input is kept iff u(seed, j) >= p, where u is the top 24
 * bits of lt_splitmix64_at(seed, j) (core.h). A pure function of (seed, j), so a mask is
 * reproducible and any element is computable independently (no RNG state). */
/* Uniform in [0, 1) with 24 random bits (exact in float). */
static inline LT_HD float lt_dropout_uniform(uint64_t seed, uint64_t j) {
    return (float)(lt_splitmix64_at(seed, j) >> 40) * (1.0f / 16777216.0f);
}
static inline LT_HD bool lt_dropout_keep(uint64_t seed, uint64_t j, float p) {
    return lt_dropout_uniform(seed, j) >= p;
}

/* ---- CPU kernels ---------------------------------------------------------------------------- */

/* embedding: in[0] table F32 (V, D), in[1] ids I32 (N); out F32 (N, D) = p.scale · rows. No
 * saved tensors. backward: dtable[ids[i]] += p.scale · dout[i] (table only). */
void lt_cpu_embedding_forward(lt_graph *g, lt_node *n);
void lt_cpu_embedding_backward(lt_graph *g, lt_node *n);

/* linear: in[0] x F32 (N, in) (any leading dims), in[1] W (out, in): F32, or a frozen
 * block-quantized base (NF4 with W->quant, Q8_0, Q4_0, Q4_1; dequantized tile by tile, never
 * whole), in[2] A F32 (r, in) or NULL, in[3] B F32 (out, r) or NULL, in[4] bias F32 (out) or
 * NULL (frozen: no grad); out F32 (N, out). p.lora_scale s, p.dropout, p.seed.
 * saved[0] drop(x) F32 (N, in) (only when p.dropout > 0; else x itself is the adapter input),
 * saved[1] h = drop(x) Aᵀ F32 (N, r) (LoRA only). */
void lt_cpu_linear_forward(lt_graph *g, lt_node *n);
void lt_cpu_linear_backward(lt_graph *g, lt_node *n);

/* rmsnorm: in[0] x F32 (N, D), in[1] w F32 (D); out F32 (N, D); p.eps, p.offset (weight
 * applied as offset + w).
 * saved[0] rstd F32 (N) = 1/sqrt(mean(x²) + eps). */
void lt_cpu_rmsnorm_forward(lt_graph *g, lt_node *n);
void lt_cpu_rmsnorm_backward(lt_graph *g, lt_node *n);

/* rope: in[0] x F32 (N, H, Dh), in[1] pos I32 (N), in[2] inv_freq F32 (Dh/2) (frozen);
 * out F32 (N, H, Dh). No saved tensors (cos/sin are recomputed from pos and inv_freq). */
void lt_cpu_rope_forward(lt_graph *g, lt_node *n);
void lt_cpu_rope_backward(lt_graph *g, lt_node *n);

/* attention: in[0] q F32 (B, Tq, Hq, Dh), in[1] k F32 (B, Tk, Hkv, Dh), in[2] v F32
 * (B, Tk, Hkv, Dh), in[3] doc I32 (B, Tk) or NULL; out F32 (B, Tq, Hq, Dh); p.window (0 =
 * none), p.scale (> 0, set by the constructor), p.softcap (0 = none).
 * saved[0] lse F32 (B, Hq, Tq): per-query-row log-sum-exp of the scaled, capped, masked
 * scores. */
void lt_cpu_attention_forward(lt_graph *g, lt_node *n);
void lt_cpu_attention_backward(lt_graph *g, lt_node *n);

/* glu: in[0] gate F32 (N, F), in[1] up F32 (N, F); out F32 (N, F); p.act. No saved tensors. */
void lt_cpu_glu_forward(lt_graph *g, lt_node *n);
void lt_cpu_glu_backward(lt_graph *g, lt_node *n);

/* softcap: in[0] x F32 (any shape); out F32 (same); p.softcap > 0. No saved tensors (backward
 * reads out). */
void lt_cpu_softcap_forward(lt_graph *g, lt_node *n);
void lt_cpu_softcap_backward(lt_graph *g, lt_node *n);

/* add: in[0] a, in[1] b, out: F32, same shape. No saved tensors. */
void lt_cpu_add_forward(lt_graph *g, lt_node *n);
void lt_cpu_add_backward(lt_graph *g, lt_node *n);

/* cross_entropy: in[0] logits F32 (N, V), in[1] targets I32 (N), in[2] mask U8 (N) or NULL;
 * out F32 (1); p.ce_denominator. saved[0] lse F32 (N) (0 for ignored rows). */
void lt_cpu_cross_entropy_forward(lt_graph *g, lt_node *n);
void lt_cpu_cross_entropy_backward(lt_graph *g, lt_node *n);

/* reshape: in[0] x (any dtype); out shares x's data with another shape of the same numel.
 * backward: x->grad becomes a view of dout when x has no grad yet, else dx += dout. */
void lt_cpu_reshape_forward(lt_graph *g, lt_node *n);
void lt_cpu_reshape_backward(lt_graph *g, lt_node *n);

/* lm_head_cross_entropy: in[0] x F32 (N, D), in[1] W F32 (V, D), in[2] targets I32 (N), in[3]
 * mask U8 (N) or NULL; out F32 (1); p.ce_denominator, p.softcap. saved[0] lse F32 (N) of the
 * (capped) logits. */
void lt_cpu_lm_head_ce_forward(lt_graph *g, lt_node *n);
void lt_cpu_lm_head_ce_backward(lt_graph *g, lt_node *n);

/* ---- CUDA kernels (src/kernels/cuda/<op>.cu; built when LATHE_CUDA) ---------------------------
 * Same in[]/saved[] contracts as the CPU rows above, with the device dtypes of core/device.h:
 * activations (op outputs, saved drop(x) and h of linear) bf16; grads, lse, rstd, losses f32;
 * linear W bf16 / f32 / Q8_0 / NF4 (W->quant: state with device arrays), optional in[4] bias [out]
 * f32 or bf16; rope optional in[2] inv_freq F32 [Dh/2]; cross_entropy saved[1] F32 [2] =
 * {Σ nll, den} (the device keeps the denominator so backward needs no host sync). */
#ifdef LATHE_CUDA
#define LT_CUDA_OP(name)                                                                         \
    void lt_cuda_##name##_forward(lt_graph *g, lt_node *n);                                      \
    void lt_cuda_##name##_backward(lt_graph *g, lt_node *n);
LT_CUDA_OP(embedding)
LT_CUDA_OP(linear)
LT_CUDA_OP(rmsnorm)
LT_CUDA_OP(rope)
LT_CUDA_OP(attention)
LT_CUDA_OP(glu)
LT_CUDA_OP(add)
LT_CUDA_OP(cross_entropy)
LT_CUDA_OP(reshape)
LT_CUDA_OP(lm_head_ce)
LT_CUDA_OP(softcap)
#undef LT_CUDA_OP

/* Optimizer on device (optim.cu), same contracts as optim.h's lt_adamw_step / lt_grad_global_norm
 * / lt_grad_clip with device pointers. The norm synchronizes (returns a host float). */
void lt_cuda_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                        const lt_adamw_hparams *h, int64_t t, float lr);
float lt_cuda_grad_global_norm(const float *g, int64_t n);
float lt_cuda_grad_clip(float *g, int64_t n, float max_norm, float norm);
void lt_cuda_vec_add(float *y, const float *x, int64_t n);

/* Dequantize n elements to bf16 at dst (device) on `stream` (cudaStream_t). Q8_0: ggml blocks.
 * NF4: bitsandbytes layout, quant.h's lt_nf4_state with device pointers and dmap the device copy
 * of the dynamic map (read only with double quantization). */
void lt_cuda_dequant_q8_0_bf16(void *dst, const void *src, int64_t n, void *stream);
void lt_cuda_dequant_nf4_bf16(void *dst, const void *codes, const lt_nf4_state *q,
                              const float *dmap, int64_t n, void *stream);
/* The dynamic map (lt_quant_dynamic_map) on the device, uploaded on first use. */
const float *lt_cuda_dynamic_map(void);
/* Total bytes of the reusable device temps (common.cuh), for peak-memory reports. */
size_t lt_cuda_temp_bytes(void);
/* Measured bf16 GEMM rate in TFLOP/s (median of reps M×N×K products; gemm.cu). */
double lt_cuda_gemm_tflops(int64_t M, int64_t N, int64_t K, int reps);
#endif

/* Host copies of the device element functions, for tests without a GPU (cuda/quant.cu). */
#ifdef LATHE_CUDA
void lt_cuda_host_dequant_q8_0(float *dst, const void *src, int64_t n);
void lt_cuda_host_dequant_nf4(float *dst, const void *codes, const lt_nf4_state *q,
                              const float *dmap, int64_t n);
#endif

/* Cross-entropy row selection shared by cross_entropy and lm_head_cross_entropy: row i counts
 * when its target is >= 0 and its mask (if any) is nonzero. The mean divides by p.ce_denominator
 * when > 0, else by the number of counted rows. */
static inline bool lt_ce_counted(const int32_t *tgt, const uint8_t *mask, int64_t i) {
    return tgt[i] >= 0 && (!mask || mask[i] != 0);
}
static inline float lt_ce_denominator(const lt_node *n, int64_t N, const int32_t *tgt,
                                      const uint8_t *mask) {
    if (n->p.ce_denominator > 0.0f) return n->p.ce_denominator;
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) cnt += lt_ce_counted(tgt, mask, i);
    return (float)cnt;
}

#endif
