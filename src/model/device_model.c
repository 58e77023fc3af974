/*
 * device_model.c — a loaded model moved onto the device it trains on (issue 8; device numerics
 * in core/device.h and DESIGN.md §3).
 *
 * On CUDA the frozen base goes into one device arena (LT_DEV_BASE), tensor by tensor, so that
 * the host holds at most one converted tensor at a time: projection weights and the embedding /
 * LM head as bf16 (from F32, or dequantized from a ggml Q4 block format the CUDA linear does not
 * read), Q8_0 and NF4 kept quantized (the linear kernel dequantizes a tile to bf16 per GEMM; an
 * NF4 tensor's lt_nf4_state is copied to a host struct whose arrays point into the arena), norms,
 * biases and RoPE frequencies as F32. The adapter lives in two more arenas: the F32 masters
 * (LT_DEV_ADAPTER) and their grads (LT_DEV_GRADS), in the host buffers' flat layout, so offsets
 * carry over; the host buffers stay as the mirror that checkpoints and PEFT files are written
 * from (lt_model_adapter_to_host). The host copies of the base are released after the upload.
 * On the CPU every call here is a no-op: the live buffers are the host ones.
 */
#include "model.h"

#include "../autograd/autograd.h"
#include "../core/device.h"
#include "../kernels/kernels.h"
#include "../quant/quant.h"

#include <stdlib.h>
#include <string.h>

struct lt_model_dev {
    lt_dev_arena base, adapter, grads;
    lt_dev_arena step; /* activations (LT_DEV_STEP), made by the first lt_model_graph_init */
    lt_nf4_state *nf4;  /* [n_nf4] host structs with device arrays, owned */
    int n_nf4, cap_nf4;
};

/* Every frozen tensor of the model whose data is set, in a fixed order; returns the count. */
static int frozen_tensors(lt_model *m, lt_tensor **out) {
    int n = 0;
#define ADD(t)                                                                                   \
    do {                                                                                         \
        if ((t)->data) out[n++] = (t);                                                           \
    } while (0)
    ADD(&m->tok_embd);
    ADD(&m->out_norm);
    if (!m->cfg.tied) ADD(&m->lm_head);
    ADD(&m->rope_inv_freq);
    ADD(&m->rope_inv_freq_local);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        lt_layer *L = &m->layers[l];
        ADD(&L->attn_norm);
        ADD(&L->ffn_norm);
        ADD(&L->q_norm);
        ADD(&L->k_norm);
        ADD(&L->post_attn_norm);
        ADD(&L->post_ffn_norm);
        for (int k = 0; k < LT_MOD_COUNT; k++) {
            ADD(&L->w[k]);
            ADD(&L->bias[k]);
        }
    }
#undef ADD
    return n;
}

/* Is t a matrix the GEMMs read (projection, embedding, head) rather than a vector? */
static bool is_matrix(const lt_tensor *t) { return t->ndim == 2; }

/* The dtype t gets on CUDA. */
static lt_dtype device_dtype(const lt_tensor *t) {
    if (!is_matrix(t)) return LT_F32;
    return t->dtype == LT_Q8_0 || t->dtype == LT_NF4 ? t->dtype : LT_BF16;
}

static size_t aligned(size_t n) { return (n + 255) & ~(size_t)255; }

/* Device bytes of t once moved (data, plus an NF4 state's arrays). */
static size_t device_bytes(const lt_tensor *t) {
    lt_dtype dt = device_dtype(t);
    size_t n = aligned(lt_dtype_nbytes(dt, lt_tensor_numel(t)));
    if (dt == LT_NF4) {
        const lt_nf4_state *q = t->quant;
        if (q->double_quant)
            n += aligned((size_t)q->n_blocks) +
                 aligned((size_t)((q->n_blocks + 255) / 256) * sizeof(float));
        else
            n += aligned((size_t)q->n_blocks * sizeof(float));
    }
    return n;
}

/* Which op reads t, for the supports() check and its message. */
static lt_op reader_op(const lt_model *m, const lt_tensor *t) {
    if (t == &m->tok_embd) return LT_OP_EMBEDDING;
    if (t == &m->lm_head) return LT_OP_LM_HEAD_CE;
    return is_matrix(t) ? LT_OP_LINEAR : LT_OP_RMSNORM;
}

/* Copy t to the base arena in its device dtype and re-point it there. */
static void move_tensor(lt_model *m, lt_tensor *t) {
    struct lt_model_dev *d = m->dev;
    const int64_t n = lt_tensor_numel(t);
    const lt_dtype dt = device_dtype(t);
    void *dst = lt_dev_arena_alloc(&d->base, lt_dtype_nbytes(dt, n));
    if (dt == LT_BF16) {
        if (t->dtype == LT_F32) {
            lt_cuda_h2d_f32_to_bf16(dst, t->data, n);
        } else { /* F16 / BF16 / a Q4 format: through F32, a row block at a time */
            const int64_t cols = t->shape[1], rows = t->shape[0];
            const int64_t step = rows < 1024 ? rows : 1024;
            float *tmp = lt_xmalloc((size_t)(step * cols) * sizeof(float));
            for (int64_t r0 = 0; r0 < rows; r0 += step) {
                int64_t nr = rows - r0 < step ? rows - r0 : step;
                lt_dequant_rows(t, r0, nr, tmp);
                lt_cuda_h2d_f32_to_bf16((char *)dst + (size_t)(r0 * cols) * 2, tmp, nr * cols);
            }
            free(tmp);
        }
    } else if (dt == LT_NF4) {
        const lt_nf4_state *q = t->quant;
        lt_cuda_h2d(dst, t->data, lt_dtype_nbytes(dt, n));
        LT_ASSERT(d->n_nf4 < d->cap_nf4); /* sized by lt_model_to_device: never moved */
        lt_nf4_state *s = &d->nf4[d->n_nf4++];
        *s = *q;
        if (q->double_quant) {
            size_t n2 = (size_t)((q->n_blocks + 255) / 256);
            s->absmax_q = lt_dev_arena_alloc(&d->base, (size_t)q->n_blocks);
            lt_cuda_h2d(s->absmax_q, q->absmax_q, (size_t)q->n_blocks);
            s->absmax2 = lt_dev_arena_alloc(&d->base, n2 * sizeof(float));
            lt_cuda_h2d(s->absmax2, q->absmax2, n2 * sizeof(float));
        } else {
            s->absmax = lt_dev_arena_alloc(&d->base, (size_t)q->n_blocks * sizeof(float));
            lt_cuda_h2d(s->absmax, q->absmax, (size_t)q->n_blocks * sizeof(float));
        }
        lt_nf4_free(t); /* the host codes and state */
        t->quant = s;
    } else {
        lt_cuda_h2d(dst, t->data, lt_dtype_nbytes(dt, n));
    }
    /* a quantized projection owns its host storage (model.h); F32 ones live in m->base */
    if (t->dtype != LT_F32 && t->dtype != LT_NF4) free(t->data);
    t->data = dst;
    t->dtype = dt;
    t->device = LT_CUDA;
}

lt_status lt_model_to_device(lt_model *m, lt_device dev) {
    if (dev == LT_CPU || m->device == dev) return LT_OK;
    if (!lt_cuda_ready())
        return lt_error_set(LT_ERR_USAGE, "the CUDA device is not initialized (lt_device_init)");
    /* per layer at most 6 norms, 7 projections and 7 biases; 5 outside the layers */
    lt_tensor *ts[8 + 20 * (size_t)m->cfg.n_layer];
    const int nt = frozen_tensors(m, ts);
    size_t base_bytes = 0;
    int n_nf4 = 0;
    for (int i = 0; i < nt; i++) {
        const lt_op op = reader_op(m, ts[i]);
        const lt_dtype dt = device_dtype(ts[i]);
        /* a head the fused loss cannot read goes through linear + cross-entropy (forward.c) */
        bool ok = lt_op_supports(op, dt, LT_CUDA) ||
                  (op == LT_OP_LM_HEAD_CE && lt_op_supports(LT_OP_LINEAR, dt, LT_CUDA));
        if (!ok)
            return lt_error_set(LT_ERR_MODEL, "%s: %s weights cannot run on CUDA in this build "
                                "(op %s); hint: device: cpu, or another quantization.type",
                                ts[i]->name ? ts[i]->name : "a weight", lt_dtype_name(dt),
                                lt_op_table[op].name);
        base_bytes += device_bytes(ts[i]);
        n_nf4 += dt == LT_NF4;
    }
    struct lt_model_dev *d = lt_xcalloc(1, sizeof *d);
    lt_status st = lt_dev_arena_init(&d->base, base_bytes + 256, "frozen base");
    size_t ab = aligned((size_t)m->n_lora * sizeof(float)) + 256;
    if (!st && m->n_lora) st = lt_dev_arena_init(&d->adapter, ab, "LoRA adapter");
    if (!st && m->n_lora) st = lt_dev_arena_init(&d->grads, ab, "LoRA gradients");
    if (st) {
        lt_dev_arena_free(&d->base);
        lt_dev_arena_free(&d->adapter);
        free(d);
        return st;
    }
    d->nf4 = lt_xmalloc((size_t)(n_nf4 ? n_nf4 : 1) * sizeof *d->nf4);
    d->cap_nf4 = n_nf4 ? n_nf4 : 1;
    m->dev = d;
    const bool tied = m->cfg.tied;
    for (int i = 0; i < nt; i++) move_tensor(m, ts[i]);
    if (tied) { /* the same bf16 table, as on the host */
        const char *name = m->lm_head.name;
        m->lm_head = m->tok_embd;
        m->lm_head.name = name;
    }
    /* the host F32 base is no longer read: every frozen tensor now points into the arena */
    free(m->base);
    m->base = NULL;
    if (m->n_lora) {
        float *p = lt_dev_arena_alloc(&d->adapter, (size_t)m->n_lora * sizeof(float));
        float *g = lt_dev_arena_calloc(&d->grads, (size_t)m->n_lora * sizeof(float));
        lt_cuda_h2d(p, m->lora_params, (size_t)m->n_lora * sizeof(float));
        /* re-point every A / B and grad header by its offset in the flat buffers */
        for (int l = 0; l < m->cfg.n_layer; l++)
            for (int k = 0; k < LT_MOD_COUNT; k++) {
                lt_tensor *ab2[2] = {&m->layers[l].lora_A[k], &m->layers[l].lora_B[k]};
                for (int j = 0; j < 2; j++) {
                    lt_tensor *t = ab2[j];
                    if (!t->data) continue;
                    t->data = p + ((float *)t->data - m->lora_params);
                    t->device = LT_CUDA;
                    if (t->grad && t->grad->device != LT_CUDA) {
                        t->grad->data = g + ((float *)t->grad->data - m->lora_grads);
                        t->grad->device = LT_CUDA;
                    }
                }
            }
        m->train_params = p;
        m->train_grads = g;
    }
    m->device = LT_CUDA;
    return LT_OK;
}

void lt_model_adapter_to_host(lt_model *m) {
    if (m->device == LT_CPU || !m->n_lora) return;
    lt_mem_download(m->device, m->lora_params, m->train_params,
                    (size_t)m->n_lora * sizeof(float));
}

void lt_model_adapter_to_device(lt_model *m) {
    if (m->device == LT_CPU || !m->n_lora) return;
    lt_mem_upload(m->device, m->train_params, m->lora_params, (size_t)m->n_lora * sizeof(float));
}

const float *lt_model_host_data(const lt_model *m, const lt_tensor *t) {
    if (t->device == LT_CPU) return t->data;
    LT_ASSERT(m->n_lora && (const float *)t->data >= m->train_params &&
              (const float *)t->data < m->train_params + m->n_lora);
    return m->lora_params + ((const float *)t->data - m->train_params);
}

/* The share of the free device memory the step arena takes when it is made: the rest is left to
 * the kernels' growable temporaries (LM-head chunks, dequantized weight tiles) and cuBLASLt. */
#define STEP_SHARE 0.85

lt_status lt_model_graph_init(lt_graph *g, lt_arena *arena, lt_model *m) {
    lt_graph_init(g, arena);
    g->device = m->device;
    if (m->device == LT_CPU) return LT_OK;
    struct lt_model_dev *d = m->dev;
    if (!d->step.base) {
        size_t used, total;
        lt_cuda_mem_info(&used, &total);
        size_t cap = (size_t)((double)(total - used) * STEP_SHARE) & ~(size_t)255;
        lt_status st = lt_dev_arena_init(&d->step, cap, "activations (step arena)");
        if (st) return st;
    }
    g->dev_arena = &d->step;
    return LT_OK;
}

size_t lt_model_device_bytes(const lt_model *m) {
    const struct lt_model_dev *d = m->dev;
    if (!d) return 0;
    size_t n = d->base.cap + d->adapter.cap + d->grads.cap + d->step.peak;
#ifdef LATHE_CUDA
    n += lt_cuda_temp_bytes();
#endif
    return n;
}

void lt_model_dev_free(lt_model *m) {
    struct lt_model_dev *d = m->dev;
    if (!d) return;
    lt_dev_arena_free(&d->step);
    lt_dev_arena_free(&d->base);
    lt_dev_arena_free(&d->adapter);
    lt_dev_arena_free(&d->grads);
    free(d->nf4);
    free(d);
    m->dev = NULL;
}
