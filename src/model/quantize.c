/*
 * Quantize-on-load for the frozen base (QLoRA: Dettmers et al., "QLoRA: Efficient Finetuning of
 * Quantized LLMs", arXiv 2305.14314, §3): the GGUF and HF loaders stream every weight named by
 * lt_model_opts.modules through one F32 scratch into NF4 (bitsandbytes layout, optional
 * double quantization) or Q8_0 storage owned by the tensor header, and the base's memory report.
 *
 * Invariants: a quantized weight's header has dtype LT_NF4 (data = packed codes, quant = its
 * lt_nf4_state, both from lt_nf4_quantize) or LT_Q8_0 (data = blocks from lt_quantize_q8_0);
 * lt_model_free releases exactly those. Every quantized row is a whole number of blocks
 * (checked in lt_qload_init), which the tile-by-tile linear kernel relies on.
 */
#include "model_impl.h"

#include "../quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const quant_names[] = {"none", "nf4", "q8_0"};

const char *lt_quant_type_name(lt_quant_type t) {
    return (unsigned)t < 3 ? quant_names[t] : "?";
}

/* "NF4+DQ", "NF4", "Q8_0" */
static const char *format_label(const lt_model_opts *o) {
    if (o->type == LT_QUANT_Q8_0) return "Q8_0";
    return o->double_quant ? "NF4+DQ" : "NF4";
}

void lt_release_pages(const void *p, size_t n) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || !p || !n) return;
    uintptr_t a = (uintptr_t)p, e = a + n;
    /* whole pages strictly inside the range: neighbours' pages stay untouched */
    uintptr_t a0 = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), e0 = e & ~((uintptr_t)pg - 1);
    if (e0 > a0) (void)madvise((void *)a0, e0 - a0, MADV_DONTNEED);
}

lt_status lt_qload_init(lt_qload *q, lt_model *m, const lt_model_opts *o, const char *file,
                        void (*names)(char *buf, size_t n, int layer, int mod)) {
    memset(q, 0, sizeof *q);
    if (!o || o->type == LT_QUANT_NONE) return LT_OK;
    const lt_model_config *c = &m->cfg;
    q->o = *o;
    if (q->o.block_size <= 0) q->o.block_size = LT_NF4_BLOCK_DEFAULT;
    if (q->o.type == LT_QUANT_Q8_0) {
        q->o.block_size = LT_QK;
        q->o.double_quant = false;
    }
    if (!q->o.modules) q->o.modules = LT_QUANT_ALL_PROJ;
    q->mask = q->o.modules & (LT_QUANT_ALL_PROJ | LT_QUANT_LM_HEAD);
    char name[160];
    if ((q->mask & LT_QUANT_LM_HEAD) && c->tied) {
        names(name, sizeof name, -1, LT_MOD_COUNT);
        return lt_error_set(LT_ERR_RECIPE, "%s: quantization.modules: lm_head is tied to "
                            "embed_tokens (%s), which the embedding lookup reads as F32 only; "
                            "hint: drop lm_head from quantization.modules", file, name);
    }
    const int64_t bs = q->o.block_size;
    for (int k = 0; k <= LT_MOD_COUNT; k++) {
        if (!(q->mask & (1u << k))) continue;
        int64_t row = k < LT_MOD_COUNT ? lt_model_module_cols(c, (lt_module)k) : c->dim;
        names(name, sizeof name, 0, k);
        bool pow2 = bs >= LT_NF4_BLOCK_MIN && bs <= LT_NF4_BLOCK_MAX && !(bs & (bs - 1));
        if (!pow2 || row % bs) {
            const char *mod = k < LT_MOD_COUNT ? lt_module_name((lt_module)k) : "lm_head";
            if (q->o.type == LT_QUANT_Q8_0)
                return lt_error_set(LT_ERR_RECIPE, "%s: tensor '%s' (and every layer's %s) has "
                                    "rows of %lld values, not a multiple of Q8_0's block of 32; "
                                    "hint: leave %s out of quantization.modules", file, name,
                                    mod, (long long)row, mod);
            return lt_error_set(LT_ERR_RECIPE, "%s: tensor '%s' (and every layer's %s) has rows "
                                "of %lld values; quantization.block_size = %lld %s; hint: a "
                                "block never straddles two rows: pick a power of two in "
                                "[%d, %d] dividing %lld, or leave %s out of "
                                "quantization.modules", file, name, mod, (long long)row,
                                (long long)bs, pow2 ? "does not divide it"
                                                    : "is not a power of two in [32, 4096]",
                                LT_NF4_BLOCK_MIN, LT_NF4_BLOCK_MAX, (long long)row, mod);
        }
    }
    q->total = c->n_layer * __builtin_popcount(q->mask & LT_QUANT_ALL_PROJ) +
               ((q->mask & LT_QUANT_LM_HEAD) ? 1 : 0);
    q->tty = isatty(2);
    return LT_OK;
}

lt_status lt_qload_begin(lt_qload *q, lt_model *m) {
    if (!q->mask) return LT_OK;
    const lt_model_config *c = &m->cfg;
    int64_t biggest = 0;
    for (int k = 0; k < LT_MOD_COUNT; k++)
        if (q->mask & (1u << k)) {
            int64_t n = lt_model_module_rows(c, (lt_module)k) * lt_model_module_cols(c, k);
            if (n > biggest) biggest = n;
        }
    if ((q->mask & LT_QUANT_LM_HEAD) && (int64_t)c->vocab_size * c->dim > biggest)
        biggest = (int64_t)c->vocab_size * c->dim;
    q->scratch = lt_alloc_big((size_t)biggest * sizeof(float), "one weight being quantized");
    if (!q->scratch) return LT_ERR_OOM;
    m->quant = q->o;
    return LT_OK;
}

static void progress(const lt_qload *q, bool final) {
    if (!q->o.progress || (!q->tty && !final)) return;
    fprintf(stderr, "%squantizing %d/%d tensors to %s...%s", q->tty ? "\r" : "", q->done,
            q->total, format_label(&q->o), final ? " done\n" : "");
    fflush(stderr);
}

lt_status lt_qload_weight(lt_qload *q, lt_model *m, lt_tensor *dst, lt_dtype src_dtype) {
    LT_ASSERT(q->mask && dst->data == NULL && dst->dtype == LT_F32);
    if (!q->requant_logged && src_dtype != LT_F32 && src_dtype != LT_F16 &&
        src_dtype != LT_BF16) {
        q->requant_logged = true;
        if (q->o.progress && q->tty) fputc('\n', stderr);
        lt_info("%s: weights stored as %s are dequantized to F32, then quantized to %s (the "
                "two quantization errors add up)", m->path, lt_dtype_name(src_dtype),
                format_label(&q->o));
    }
    lt_tensor src = *dst;
    src.data = q->scratch;
    const int64_t n = lt_tensor_numel(dst);
    if (q->o.type == LT_QUANT_NF4) {
        lt_status st = lt_nf4_quantize(dst, &src, q->o.block_size, q->o.double_quant);
        if (st) return lt_error_wrap(st, "%s", m->path);
        const lt_nf4_state *s = dst->quant;
        m->quant_bytes += (size_t)n / 2 +
                          (s->double_quant ? (size_t)s->n_blocks +
                                                 4 * (size_t)((s->n_blocks + LT_NF4_DQ_BLOCK - 1) /
                                                              LT_NF4_DQ_BLOCK) + 4
                                           : 4 * (size_t)s->n_blocks);
    } else {
        size_t nb = lt_dtype_nbytes(LT_Q8_0, n);
        void *data = lt_alloc_big(nb, "a Q8_0 weight");
        if (!data) return LT_ERR_OOM;
        lt_quantize_q8_0(q->scratch, data, n);
        dst->dtype = LT_Q8_0;
        dst->data = data;
        dst->quant = NULL;
        m->quant_bytes += nb;
    }
    dst->requires_grad = false;
    m->n_quant_params += n;
    q->done++;
    progress(q, false);
    return LT_OK;
}

lt_status lt_qload_adopt(lt_qload *q, lt_model *m, lt_tensor *dst, lt_tensor *nf4) {
    LT_ASSERT(q->mask && dst->data == NULL && nf4->dtype == LT_NF4 && nf4->quant);
    const lt_nf4_state *s = nf4->quant;
    if (!q->requant_logged && (s->blocksize != q->o.block_size ||
                               s->double_quant != q->o.double_quant)) {
        q->requant_logged = true;
        lt_info("%s: weights already stored as NF4 (block %lld%s) are kept as stored, not "
                "requantized to block %lld%s", m->path, (long long)s->blocksize,
                s->double_quant ? ", double quant" : "", (long long)q->o.block_size,
                q->o.double_quant ? ", double quant" : "");
    }
    const int64_t n = lt_tensor_numel(dst);
    const char *name = dst->name;
    *dst = *nf4;
    dst->name = name;
    dst->requires_grad = false;
    m->quant_bytes += (size_t)n / 2 +
                      (s->double_quant ? (size_t)s->n_blocks +
                                             4 * (size_t)((s->n_blocks + LT_NF4_DQ_BLOCK - 1) /
                                                          LT_NF4_DQ_BLOCK) + 4
                                       : 4 * (size_t)s->n_blocks);
    m->n_quant_params += n;
    q->done++;
    progress(q, false);
    return LT_OK;
}

lt_status lt_qload_split(lt_qload *q, lt_model *m, const float *all, lt_tensor **dst, int n,
                         lt_dtype src_dtype) {
    const int64_t cols = dst[0]->shape[1];
    lt_status st = LT_OK;
    for (int i = 0; i < n && !st; i++) {
        const size_t bytes = (size_t)(dst[i]->shape[0] * cols) * sizeof(float);
        if (lt_qload_target(dst[i])) {
            memcpy(q->scratch, all, bytes);
            st = lt_qload_weight(q, m, dst[i], src_dtype);
        } else {
            memcpy(dst[i]->data, all, bytes);
        }
        all += dst[i]->shape[0] * cols;
    }
    return st;
}

void lt_qload_end(lt_qload *q, lt_model *m, lt_status st) {
    (void)m;
    if (q->mask && !st) progress(q, true);
    else if (q->mask && q->tty && q->o.progress && q->done) fputc('\n', stderr);
    free(q->scratch);
    q->scratch = NULL;
}

const char *lt_model_memory_str(const lt_model *m, char *buf, size_t n) {
    const double mib = 1048576.0;
    /* the F32 buffer also holds the RoPE table (head_dim/2 floats): not a parameter */
    int64_t f32_params = m->n_params - m->n_quant_params;
    if (m->quant.type == LT_QUANT_NONE || m->n_quant_params == 0) {
        snprintf(buf, n, "%.1f MiB F32 (%.1fM params)", m->base_bytes / mib, m->n_params / 1e6);
        return buf;
    }
    snprintf(buf, n, "%.1f MiB %s (%.3f bits/param, %.1fM params), %.1f MiB F32 (%.1fM params: "
             "embeddings, norms%s)", m->quant_bytes / mib, format_label(&m->quant),
             8.0 * (double)m->quant_bytes / (double)m->n_quant_params, m->n_quant_params / 1e6,
             m->base_bytes / mib, f32_params / 1e6,
             (m->quant.modules & LT_QUANT_ALL_PROJ) != LT_QUANT_ALL_PROJ ? ", other projections"
                                                                          : "");
    return buf;
}
