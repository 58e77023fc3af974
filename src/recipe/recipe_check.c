/*
 * recipe_check — questions about a loaded recipe: where a key's value came from, whether two
 * recipes are the same (the resolved copy read back, a resume's), the cross-field validation
 * that single keys cannot express, and the model options the recipe implies.
 */
#include "recipe/recipe_impl.h"

#include "data/data.h" /* lt_data_is_raw */

#include <stdio.h>
#include <string.h>

lt_recipe_origin lt_recipe_origin_of(const lt_recipe *r, const char *key) {
    int i = lt_recipe__find_full(key);
    return i < 0 ? LT_RECIPE_DEFAULT : (lt_recipe_origin)r->from[i].origin;
}

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

bool lt_recipe_equal(const lt_recipe *a, const lt_recipe *b) {
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *k = &lt_recipe_keys[i];
        const void *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
        switch (k->type) {
        case RK_STRING:
        case RK_PATH:
            if (!str_eq(*(char *const *)fa, *(char *const *)fb)) return false;
            break;
        case RK_INT:
            if (*(const int64_t *)fa != *(const int64_t *)fb) return false;
            break;
        case RK_FLOAT:
            if (*(const double *)fa != *(const double *)fb) return false;
            break;
        case RK_BOOL:
            if (*(const bool *)fa != *(const bool *)fb) return false;
            break;
        case RK_ENUM:
            if (*(const int *)fa != *(const int *)fb) return false;
            break;
        case RK_LIST:
        case RK_PATHLIST: {
            const lt_recipe_list *la = fa, *lb = fb;
            if (la->n != lb->n) return false;
            for (int j = 0; j < la->n; j++) {
                if (strcmp(la->items[j], lb->items[j])) return false;
                lt_data_entry u = lt_data_entry_unset();
                const lt_data_entry *ea = la->entries ? &la->entries[j] : &u;
                const lt_data_entry *eb = lb->entries ? &lb->entries[j] : &u;
                if (ea->weight != eb->weight || ea->format != eb->format ||
                    !str_eq(ea->template_name, eb->template_name) || ea->max_len != eb->max_len ||
                    ea->eval_fraction != eb->eval_fraction || ea->on_error != eb->on_error)
                    return false;
            }
            break;
        }
        case RK_FLOATPAIR: break; /* compared through its two keys */
        }
    }
    return true;
}

/* "file:line:col", "--set key" or the file / "recipe" for defaults, into buf. */
static const char *where(const lt_recipe *r, int i, char *buf, size_t n) {
    const char *src = r->source ? r->source : "recipe";
    switch (r->from[i].origin) {
    case LT_RECIPE_FROM_FILE:
        snprintf(buf, n, "%s:%d:%d", src, r->from[i].line, r->from[i].col);
        break;
    case LT_RECIPE_FROM_SET: snprintf(buf, n, "--set %s", lt_recipe_keys[i].name); break;
    default: snprintf(buf, n, "%s", src);
    }
    return buf;
}

lt_status lt_recipe_validate(const lt_recipe *r) {
    char w[600], w2[600];
    for (int i = 0; i < LT_RECIPE_NKEYS; i++) {
        const rk_key *k = &lt_recipe_keys[i];
        if (!(k->flags & RF_REQUIRED)) continue;
        const void *f = (const char *)r + k->off;
        bool missing = (k->type == RK_LIST || k->type == RK_PATHLIST)
                           ? ((const lt_recipe_list *)f)->n == 0
                           : *(char *const *)f == NULL;
        if (missing) {
            const char *dot = strchr(k->name, '.');
            return lt_error_set(LT_ERR_RECIPE,
                                "%s: %s is required; hint: add '%s:' under '%.*s:' or pass "
                                "--set %s=...",
                                where(r, i, w, sizeof w), k->name, dot + 1,
                                (int)(dot - k->name), k->name, k->name);
        }
    }
    int ims = lt_recipe__find_full("train.max_steps"), iep = lt_recipe__find_full("train.epochs");
    if (r->train.max_steps > 0 && r->from[iep].origin != LT_RECIPE_DEFAULT)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: train.epochs and train.max_steps (%s) are both set; hint: keep "
                            "one: max_steps counts optimizer steps, epochs counts passes over "
                            "data.train",
                            where(r, iep, w, sizeof w), where(r, ims, w2, sizeof w2));
    /* each factor is bounded by its key; their product, the batch buffers allocated per step,
     * is bounded here (fits int64: 2^16 x 2^20 x 2^20) */
    int imb = lt_recipe__find_full("train.micro_batch_size");
    int64_t step_tokens = r->train.grad_accum * r->train.micro_batch_size * r->data.seq_len;
    if (step_tokens > LT_RECIPE_STEP_TOKENS_MAX)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: train.grad_accum (%lld) x train.micro_batch_size (%lld) x "
                            "data.seq_len (%lld) = %lld tokens per optimizer step, more than the "
                            "limit %lld; hint: lower micro_batch_size or grad_accum",
                            where(r, imb, w, sizeof w), (long long)r->train.grad_accum,
                            (long long)r->train.micro_batch_size, (long long)r->data.seq_len,
                            (long long)step_tokens, (long long)LT_RECIPE_STEP_TOKENS_MAX);
    int imin = lt_recipe__find_full("schedule.min_lr");
    if (r->schedule.min_lr > r->optim.lr) {
        char a[40], b[40];
        lt_recipe__fmt_double(r->schedule.min_lr, a, sizeof a);
        lt_recipe__fmt_double(r->optim.lr, b, sizeof b);
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: schedule.min_lr (%s) is above optim.lr (%s); hint: the decay "
                            "goes from optim.lr down to schedule.min_lr",
                            where(r, imin, w, sizeof w), a, b);
    }
    int iwu = lt_recipe__find_full("schedule.warmup_steps");
    if (r->train.max_steps > 0 && r->schedule.warmup_steps > r->train.max_steps)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: schedule.warmup_steps (%lld) exceeds train.max_steps (%lld); "
                            "hint: warm up over a fraction of the run",
                            where(r, iwu, w, sizeof w), (long long)r->schedule.warmup_steps,
                            (long long)r->train.max_steps);
    int itm = lt_recipe__find_full("lora.target_modules");
    if (r->lora.target_modules.n == 0)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: lora.target_modules is empty; hint: list at least one module, "
                            "e.g. [q_proj, v_proj]",
                            where(r, itm, w, sizeof w));
    int iqb = lt_recipe__find_full("quantization.block_size"), iqm = lt_recipe__find_full("quantization.modules");
    int64_t bs = r->quantization.block_size;
    if (bs & (bs - 1))
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: quantization.block_size = %lld is not a power of two; hint: "
                            "64 (QLoRA's and bitsandbytes' default), or 32, 128, ... 4096",
                            where(r, iqb, w, sizeof w), (long long)bs);
    if (r->quantization.type != 0 && r->quantization.modules.n == 0)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: quantization.modules is empty while quantization.type is %s; "
                            "hint: list the projections to quantize, or set quantization.type: "
                            "none", where(r, iqm, w, sizeof w), lt_recipe_quant_types[r->quantization.type]);
    for (int i = 0; r->quantization.type != 0 && i < r->quantization.modules.n; i++)
        if (!strcmp(r->quantization.modules.items[i], "embed_tokens"))
            return lt_error_set(LT_ERR_RECIPE,
                                "%s: quantization.modules: embed_tokens cannot be quantized: the "
                                "embedding lookup kernel reads an F32 table; hint: remove it "
                                "(lm_head, when not tied, can be)",
                                where(r, iqm, w, sizeof w));
    int iex = lt_recipe__find_full("output.exports");
    for (int i = 0; i < r->output.exports.n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(r->output.exports.items[i], r->output.exports.items[j]))
                return lt_error_set(LT_ERR_RECIPE, "%s: output.exports names '%s' twice",
                                    where(r, iex, w, sizeof w), r->output.exports.items[i]);
    int idt = lt_recipe__find_full("data.train"), ide = lt_recipe__find_full("data.eval");
    const lt_data_entry *te = r->data.train.entries, *ee = r->data.eval.entries;
    for (int i = 0; ee && i < r->data.eval.n; i++)
        if (ee[i].weight > 0 || ee[i].eval_fraction >= 0)
            return lt_error_set(LT_ERR_RECIPE, "%s: data.eval[%d] sets %s, which applies to "
                                "data.train entries only; hint: evaluation reads every document "
                                "of data.eval once", where(r, ide, w, sizeof w), i + 1,
                                ee[i].weight > 0 ? "weight" : "eval_fraction");
    /* does some data.train entry hold documents out for evaluation (raw files only: rawdata.c
     * refuses a fraction on shards) */
    for (int k = 0; k < 2; k++) {
        const lt_recipe_list *l = k ? &r->data.eval : &r->data.train;
        for (int i = 0; l->entries && i < l->n; i++) {
            const lt_data_entry *e = &l->entries[i];
            if (!lt_data_is_raw(l->items[i]) &&
                (e->format >= 0 || e->template_name || e->max_len >= 0 ||
                 e->eval_fraction >= 0 || e->on_error >= 0))
                return lt_error_set(LT_ERR_RECIPE, "%s: data.%s[%d] ('%s') names shards, but "
                                    "format, template, max_len, eval_fraction and on_error apply "
                                    "to raw .json, .jsonl and .txt files; hint: keep path and "
                                    "weight", where(r, k ? ide : idt, w, sizeof w),
                                    k ? "eval" : "train", i + 1, l->items[i]);
        }
    }
    bool held_out = !te && r->data.eval_fraction > 0;
    for (int i = 0; te && i < r->data.train.n; i++) {
        held_out |= (te[i].eval_fraction >= 0 ? te[i].eval_fraction : r->data.eval_fraction) > 0;
        if ((te[i].weight > 0) != (te[0].weight > 0))
            return lt_error_set(LT_ERR_RECIPE, "%s: data.train[%d] has a weight but "
                                "data.train[%d] has none; hint: weights mix the entries in "
                                "proportion: give every entry one, or none",
                                where(r, idt, w, sizeof w), te[i].weight > 0 ? i + 1 : 1,
                                te[i].weight > 0 ? 1 : i + 1);
    }
    int igm = lt_recipe__find_full("output.gate.metric");
    if (r->output.gate.metric != LT_GATE_NONE && r->data.eval.n == 0 && !held_out)
        return lt_error_set(LT_ERR_RECIPE, "%s: output.gate.metric compares eval losses but "
                            "data.eval is empty; hint: add data.eval shards or set "
                            "output.gate.metric: none",
                            where(r, igm, w, sizeof w));
    int iee = lt_recipe__find_full("train.eval_every");
    if (r->train.eval_every > 0 && r->data.eval.n == 0 && !held_out)
        return lt_error_set(LT_ERR_RECIPE,
                            "%s: train.eval_every is %lld but data.eval is empty; hint: add "
                            "data.eval shards or set train.eval_every: 0",
                            where(r, iee, w, sizeof w), (long long)r->train.eval_every);
    return LT_OK;
}

lt_model_opts lt_recipe_model_opts(const lt_recipe *r) {
    /* recipe_keys.c lists quantization.type's choices in lt_quant_type order */
    lt_model_opts o = {.type = (lt_quant_type)r->quantization.type,
                       .double_quant = r->quantization.double_quant,
                       .block_size = r->quantization.block_size,
                       .progress = true};
    for (int i = 0; i < r->quantization.modules.n; i++) {
        const char *name = r->quantization.modules.items[i];
        int k = lt_module_from_name(name);
        if (k >= 0) o.modules |= 1u << k;
        else if (!strcmp(name, "qkv_proj")) /* Phi-3's fused modules: their projections */
            o.modules |= 1u << LT_MOD_Q | 1u << LT_MOD_K | 1u << LT_MOD_V;
        else if (!strcmp(name, "gate_up_proj"))
            o.modules |= 1u << LT_MOD_GATE | 1u << LT_MOD_UP;
        else if (!strcmp(name, "lm_head")) o.modules |= LT_QUANT_LM_HEAD;
        /* embed_tokens is refused by validation: the embedding lookup reads F32 only */
    }
    return o;
}
