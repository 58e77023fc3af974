/* The training loop. One optimizer step = grad_accum micro-batches whose losses are normalized
 * by the target tokens of the whole accumulated batch, then global-norm clipping, then AdamW on
 * the flat adapter buffer. Every random choice derives from train.seed, and the data cursor,
 * optimizer moments and step are checkpointed, so a resumed run repeats the same steps. */
#include "train.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "../optim/optim.h"
#include "../tokenizer/tokenizer.h"
#include "run.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

lt_status lt_train_eval(lt_model *m, lt_loader *eval, int B, int T, int64_t max_batches,
                        double *mean_loss, int64_t *n_tokens) {
    lt_batch b;
    lt_batch_init(&b, B, T);
    lt_arena arena;
    lt_arena_init(&arena, 0);
    lt_graph g;
    lt_graph_init(&g, &arena);
    g.record = false;
    lt_loader_rewind(eval);
    double sum = 0;
    int64_t count = 0;
    lt_status st = LT_OK;
    bool end = false;
    for (int64_t i = 0; !end && (max_batches <= 0 || i < max_batches); i++) {
        if ((st = lt_loader_next(eval, &b, &end))) break;
        if (b.n_target_tokens == 0) continue;
        /* denominator 1: the loss is the summed NLL of this batch */
        lt_tensor *loss = lt_model_loss(&g, m, b.B, b.T, b.tokens, b.pos, b.doc, b.targets, 1.0f, 0);
        sum += lt_f32(loss)[0];
        count += b.n_target_tokens;
        lt_arena_reset(&arena);
    }
    lt_graph_free(&g);
    lt_arena_free(&arena);
    lt_batch_free(&b);
    if (st) return st;
    *mean_loss = count ? sum / (double)count : NAN;
    if (n_tokens) *n_tokens = count;
    return LT_OK;
}

/* ---- one optimizer step ------------------------------------------------------------------- */

typedef struct {
    lt_model *m;
    lt_loader *train;
    lt_batch *batches; /* [grad_accum] */
    int accum;
    lt_arena arena;
    lt_graph g;
    uint64_t seed;
} stepper;

/* Forward + backward over the accumulated micro-batches; returns the step's mean loss. The data
 * for all micro-batches is fetched first so the loss can be normalized by the whole step's
 * target count (each micro-batch's CE divides by that total, and the grads add up). */
static lt_status run_step(stepper *s, int64_t step, double *loss_out, int64_t *targets_out,
                          int64_t *epochs_done) {
    int64_t total = 0;
    for (int a = 0; a < s->accum; a++) {
        bool end = false;
        lt_status st = lt_loader_next(s->train, &s->batches[a], &end);
        if (st) return st;
        if (end) (*epochs_done)++;
        total += s->batches[a].n_target_tokens;
    }
    memset(s->m->lora_grads, 0, (size_t)s->m->n_lora * sizeof(float));
    double loss = 0;
    for (int a = 0; a < s->accum; a++) {
        lt_batch *b = &s->batches[a];
        if (b->n_target_tokens == 0) continue;
        uint64_t dseed = s->seed ^ ((uint64_t)step * 0x100000001b3ull + (uint64_t)a + 1);
        lt_tensor *l = lt_model_loss(&s->g, s->m, b->B, b->T, b->tokens, b->pos, b->doc,
                                     b->targets, (float)total, dseed);
        loss += lt_f32(l)[0];
        lt_backward(&s->g, l, 1.0f);
        lt_graph_clear(&s->g);
        lt_arena_reset(&s->arena);
    }
    *loss_out = loss;
    *targets_out = total;
    return LT_OK;
}

/* ---- the run ------------------------------------------------------------------------------ */

/* lora.target_modules as projection bits of model c (a fused module such as Phi-3's qkv_proj
 * covers its members). LT_ERR_RECIPE naming the module when c has no such module or a fused one
 * is only partly listed. */
static lt_status target_mask(const lt_recipe *r, const lt_model_config *c, unsigned *mask) {
    *mask = 0;
    const char *src = r->source ? r->source : "recipe";
    for (int i = 0; i < r->lora.target_modules.n; i++) {
        const char *name = r->lora.target_modules.items[i];
        unsigned bits = lt_model_adapter_bits(c, name);
        if (!bits)
            return lt_error_set(LT_ERR_RECIPE, "%s: lora.target_modules: '%s' is not a module of "
                                "this model (%s fuses q/k/v into qkv_proj and gate/up into "
                                "gate_up_proj only for Phi-3)", src, name, r->model.path);
        *mask |= bits;
    }
    char what[512];
    snprintf(what, sizeof what, "%s: lora.target_modules", src);
    return lt_model_check_targets(c, *mask, what);
}

static void set_threads(int64_t n) {
    if (n <= 0) return;
    openblas_set_num_threads((int)n);
    omp_set_num_threads((int)n);
}

/* LT_ERR_INTERRUPTED when SIGINT/SIGTERM came before the first step of this process: nothing
 * new to save, the run directory (and any earlier checkpoint) is as it was. */
static lt_status stopped_while_loading(const lt_recipe *r, bool resumed) {
    if (!stop_requested) return LT_OK;
    if (resumed)
        return lt_error_set(LT_ERR_INTERRUPTED, "interrupted while loading, before the first "
                            "step; nothing new to save; resume with: lathe train %s/recipe.yaml "
                            "--resume", r->output.dir);
    return lt_error_set(LT_ERR_INTERRUPTED, "interrupted while loading, before the first step: "
                        "nothing was trained; hint: remove %s (or choose another output.dir) and "
                        "start again", r->output.dir);
}

lt_status lt_train_run(const lt_recipe *r, const lt_train_opts *o) {
    lt_status st;
    set_threads(r->train.threads);
    /* SIGINT/SIGTERM from here on end the run cleanly: during loading (nothing to save yet) at
     * the next stop point, during training after a checkpoint (exit 130 either way) */
    stop_requested = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    lt_run run;
    if ((st = lt_run_open(&run, r, o->resume))) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        lt_run_close(&run, st); /* frees what the open made; no manifest yet, nothing stamped */
        return st;
    }

    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    lt_loader *train = NULL, *eval = NULL;
    float *opt_m = NULL, *opt_v = NULL;
    stepper s = {0};
    double t_start = lt_now();

    lt_info("loading %s", r->model.path);
    lt_model_opts qo = lt_recipe_model_opts(r);
    if ((st = lt_model_load_opts(&m, &tok, r->model.path, &qo))) {
        if (st == LT_ERR_RECIPE && r->source) lt_error_wrap(st, "%s", r->source);
        goto done;
    }
    if ((st = stopped_while_loading(r, o->resume))) goto done;
    const lt_model_config *c = &m->cfg;
    if (c->context_length > 0 && r->data.seq_len > c->context_length) {
        st = lt_error_set(LT_ERR_RECIPE, "%s: data.seq_len = %lld exceeds the model's context "
                          "length %d (%s); hint: lower data.seq_len", r->source ? r->source : "recipe",
                          (long long)r->data.seq_len, c->context_length, r->model.path);
        goto done;
    }
    unsigned targets;
    if ((st = target_mask(r, c, &targets))) goto done;
    lt_lora_config lc = {.r = (int)r->lora.r, .alpha = (float)r->lora.alpha,
                         .dropout = (float)r->lora.dropout, .rslora = r->lora.rslora,
                         .targets = targets};
    lt_model_add_lora(m, &lc, (uint64_t)r->train.seed);

    lt_loader_opts lo = {
        .patterns = (const char *const *)r->data.train.items,
        .n_patterns = (size_t)r->data.train.n,
        .seq_len = (int)r->data.seq_len,
        .batch_rows = (int)r->train.micro_batch_size,
        .shuffle = true,
        .pack = r->data.packing,
        .seed = (uint64_t)r->train.seed,
        .expect = {.vocab_size = c->vocab_size, .tokenizer_sha256 = lt_tokenizer_sha256(tok)},
    };
    if ((st = lt_loader_open(&train, &lo))) goto done;
    if (r->data.eval.n > 0) {
        lt_loader_opts eo = lo;
        eo.patterns = (const char *const *)r->data.eval.items;
        eo.n_patterns = (size_t)r->data.eval.n;
        eo.shuffle = false;
        if ((st = lt_loader_open(&eval, &eo))) goto done;
    }
    lt_loader_totals tt;
    lt_loader_totals_get(train, &tt);
    int64_t accum = r->train.grad_accum;
    int64_t total_steps = r->train.max_steps;
    if (total_steps <= 0) {
        double per_epoch = (double)tt.batches_per_epoch / (double)accum;
        double want = ceil(r->train.epochs * per_epoch);
        if (!(want <= LT_RECIPE_STEPS_MAX)) {
            st = lt_error_set(LT_ERR_RECIPE, "train.epochs = %g over data.train (%lld batches "
                              "per epoch) is %.0f optimizer steps, more than the limit %d; hint: "
                              "fewer epochs, or set train.max_steps", r->train.epochs,
                              (long long)tt.batches_per_epoch, want, LT_RECIPE_STEPS_MAX);
            goto done;
        }
        total_steps = (int64_t)want;
        if (total_steps < 1) total_steps = 1;
    }

    size_t nb = (size_t)m->n_lora * sizeof(float);
    opt_m = lt_alloc_big(nb, "AdamW first moments");
    opt_v = opt_m ? lt_alloc_big(nb, "AdamW second moments") : NULL;
    if (!opt_v) {
        st = LT_ERR_OOM;
        goto done;
    }

    int64_t step = 0, epochs_done = 0;
    if (o->resume && run.resume_step > 0) {
        if ((st = lt_run_load_checkpoint(&run, m, opt_m, opt_v, train, total_steps, &step,
                                          &epochs_done)))
            goto done;
        lt_info("resumed from %s at step %lld", run.resume_dir, (long long)step);
    }

    int64_t tokens_per_step = accum * r->train.micro_batch_size * r->data.seq_len;
    char mem[256];
    lt_info("model: %d layers, hidden %d, %d heads (%d kv), vocab %d, context %d",
            c->n_layer, c->dim, c->n_head, c->n_kv_head, c->vocab_size, c->context_length);
    lt_info("base: %s", lt_model_memory_str(m, mem, sizeof mem));
    lt_info("LoRA: r=%d alpha=%g%s on %d modules/layer: %lld trainable parameters (%.3f%% of "
            "the base); adapter + grads + AdamW state %.1f MiB",
            lc.r, lc.alpha, lc.rslora ? " (rsLoRA)" : "", __builtin_popcount(lc.targets),
            (long long)m->n_lora, 100.0 * m->n_lora / (double)m->n_params,
            4.0 * nb / 1048576.0);
    lt_info("data: %lld documents, %lld tokens (%lld trained) in %lld shards; %lld micro-batches "
            "of %lld x %lld per epoch; %lld steps of %lld tokens",
            (long long)tt.n_docs, (long long)tt.n_tokens, (long long)tt.n_targets,
            (long long)tt.n_shards, (long long)tt.batches_per_epoch,
            (long long)r->train.micro_batch_size, (long long)r->data.seq_len,
            (long long)total_steps, (long long)tokens_per_step);

    lt_adamw_hparams hp = {.beta1 = (float)r->optim.beta1, .beta2 = (float)r->optim.beta2,
                           .eps = (float)r->optim.eps,
                           .weight_decay = (float)r->optim.weight_decay};
    lt_schedule sched = {.type = (lt_schedule_type)r->schedule.type, .lr = (float)r->optim.lr,
                         .min_lr = (float)r->schedule.min_lr,
                         .warmup_steps = r->schedule.warmup_steps};

    s.m = m;
    s.train = train;
    s.accum = (int)accum;
    s.seed = (uint64_t)r->train.seed;
    s.batches = lt_xcalloc((size_t)accum, sizeof(lt_batch));
    for (int a = 0; a < accum; a++)
        lt_batch_init(&s.batches[a], (int)r->train.micro_batch_size, (int)r->data.seq_len);
    lt_arena_init(&s.arena, 0);
    lt_graph_init(&s.g, &s.arena);
    s.g.checkpoint = r->train.gradient_checkpointing;

    if ((st = stopped_while_loading(r, o->resume))) goto done;

    lt_progress prog;
    lt_progress_init(&prog, step, total_steps, r->train.log_every);
    double first_eval = NAN, last_eval = NAN;
    if (eval && step == 0) {
        double el;
        if ((st = lt_train_eval(m, eval, (int)r->train.micro_batch_size, (int)r->data.seq_len, r->train.eval_batches, &el, NULL))) goto loop_done;
        first_eval = last_eval = el;
        lt_run_log_eval(&run, 0, el);
    }
    while (step < total_steps) {
        double t0 = lt_now();
        float lr = lt_schedule_lr(&sched, step, total_steps);
        double loss;
        int64_t ntg;
        if ((st = run_step(&s, step, &loss, &ntg, &epochs_done))) break;
        float gn = lt_grad_global_norm(m->lora_grads, m->n_lora);
        if (!isfinite(loss) || !isfinite(gn)) {
            st = lt_error_set(LT_ERR_RUNTIME, "step %lld: the loss or gradient is not finite "
                              "(loss %g, grad norm %g); the last checkpoint holds the last good "
                              "state; hint: lower optim.lr or set train.grad_clip",
                              (long long)step + 1, loss, gn);
            break;
        }
        if (r->train.grad_clip > 0) lt_grad_clip(m->lora_grads, m->n_lora, (float)r->train.grad_clip, gn);
        lt_adamw_step(m->lora_params, m->lora_grads, opt_m, opt_v, m->n_lora, &hp, step + 1, lr);
        step++;
        double dt = lt_now() - t0;
        double tps = tokens_per_step / dt;
        if (step == 1)
            lt_progress_note(&prog, "activation arena peak %.1f MiB%s; peak RSS %.1f MiB",
                             s.arena.peak / 1048576.0,
                             s.g.checkpoint ? " (gradient checkpointing)" : "",
                             lt_peak_rss() / 1048576.0);
        if (step % r->train.log_every == 0 || step == total_steps)
            lt_run_log_step(&run, step, loss, lr, tps, gn);
        lt_progress_update(&prog, step, loss, lr, tps, last_eval);
        bool last = step == total_steps;
        if (eval && ((r->train.eval_every > 0 && step % r->train.eval_every == 0) || last)) {
            double el;
            if ((st = lt_train_eval(m, eval, (int)r->train.micro_batch_size, (int)r->data.seq_len, r->train.eval_batches, &el, NULL))) break;
            if (isnan(first_eval)) first_eval = el;
            last_eval = el;
            lt_run_log_eval(&run, step, el);
            lt_progress_note(&prog, "step %lld: eval loss %.4f, perplexity %.2f", (long long)step,
                             el, exp(el));
        }
        if ((r->train.save_every > 0 && step % r->train.save_every == 0 && !last) ||
            stop_requested) {
            if ((st = lt_run_save_checkpoint(&run, m, opt_m, opt_v, train, step, epochs_done)))
                break;
        }
        if (stop_requested) {
            /* the run's resolved recipe.yaml carries every --set, so it resumes as it ran */
            st = lt_error_set(LT_ERR_INTERRUPTED, "interrupted at step %lld; checkpoint saved in "
                              "%s/checkpoints; resume with: lathe train %s/recipe.yaml --resume",
                              (long long)step, r->output.dir, r->output.dir);
            break;
        }
    }
loop_done:
    lt_progress_end(&prog);
    if (!st) {
        if ((st = lt_run_save_checkpoint(&run, m, opt_m, opt_v, train, step, epochs_done)) ||
            (st = lt_run_export(&run, m)))
            goto done;
        double secs = lt_now() - t_start;
        if (!isnan(first_eval))
            lt_info("eval loss %.4f -> %.4f (perplexity %.2f -> %.2f)", first_eval, last_eval,
                    exp(first_eval), exp(last_eval));
        lt_info("done: %lld steps in %.1f s; adapter in %s/adapter", (long long)step, secs,
                r->output.dir);
    }
done:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    lt_run_close(&run, st);
    if (s.batches) {
        for (int a = 0; a < s.accum; a++) lt_batch_free(&s.batches[a]);
        free(s.batches);
        lt_graph_free(&s.g);
        lt_arena_free(&s.arena);
    }
    free(opt_m);
    free(opt_v);
    lt_loader_free(train);
    lt_loader_free(eval);
    lt_tokenizer_free(tok);
    lt_model_free(m);
    return st;
}
