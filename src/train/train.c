/* The training loop. One optimizer step = grad_accum micro-batches whose losses are normalized
 * by the target tokens of the whole accumulated batch, then global-norm clipping, then AdamW on
 * the flat adapter buffer. Every random choice derives from train.seed, and the data cursor,
 * optimizer moments and step are checkpointed, so a resumed run repeats the same steps.
 *
 * Data parallelism (src/dist/): N ranks run this same loop. A step's global batch is N · k
 * micro-batches (k = grad_accum) taken from one cursor in order; rank r trains on global
 * micro-batches r·k .. r·k + k - 1 and passes over the others with lt_loader_skip, so every
 * rank's cursor is the global one and N ranks x k see exactly what 1 rank x N·k sees. Rank 0
 * alone writes the run directory; every collective is reached by every rank in the same order,
 * and a rank that fails ends the job (lt_dist_abort, in the CLI). */
#include "train.h"

#include "../core/device.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <jansson.h>
#include <omp.h>

#include "../dist/dist.h"
#include "../optim/optim.h"
#include "../report/report.h"
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
    lt_status st = lt_model_graph_init(&g, &arena, m);
    if (st) {
        lt_arena_free(&arena);
        lt_batch_free(&b);
        return st;
    }
    g.record = false;
    lt_loader_rewind(eval);
    const lt_dist *d = lt_dist_self();
    double sum = 0;
    int64_t count = 0;
    bool end = false;
    /* ranks score batches i ≡ rank (mod world) and pass over the rest: one pass split N ways */
    for (int64_t i = 0; !end && (max_batches <= 0 || i < max_batches); i++) {
        if (i % d->world != d->rank) {
            lt_loader_skip(eval, &end);
            continue;
        }
        if ((st = lt_loader_next(eval, &b, &end))) break;
        if (b.n_target_tokens == 0) continue;
        /* denominator 1: the loss is the summed NLL of this batch */
        lt_tensor *loss = lt_model_loss(&g, m, b.B, b.T, b.tokens, b.pos, b.doc, b.targets, 1.0f, 0);
        float lv;
        lt_tensor_download(loss, &lv);
        sum += lv;
        count += b.n_target_tokens;
        lt_graph_reset(&g);
    }
    lt_graph_free(&g);
    lt_arena_free(&arena);
    lt_batch_free(&b);
    if (st) return st;
    double tot[2] = {sum, (double)count}; /* counts are far below 2^53: exact as doubles */
    if ((st = lt_dist_sum_f64(tot, 2))) return st;
    sum = tot[0];
    count = (int64_t)tot[1];
    *mean_loss = count ? sum / (double)count : NAN;
    if (n_tokens) *n_tokens = count;
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
    int stop = stop_requested; /* a signal to any rank stops every rank here */
    lt_status st = lt_dist_max_int(&stop, 1);
    if (st) return st;
    if (!stop) return LT_OK;
    if (resumed)
        return lt_error_set(LT_ERR_INTERRUPTED, "interrupted while loading, before the first "
                            "step; nothing new to save; resume with: lathe train %s/recipe.yaml "
                            "--resume", r->output.dir);
    return lt_error_set(LT_ERR_INTERRUPTED, "interrupted while loading, before the first step: "
                        "nothing was trained; hint: remove %s (or choose another output.dir) and "
                        "start again", r->output.dir);
}

/* What one run holds while it trains; job_free releases it. */
typedef struct {
    const lt_recipe *r;
    lt_run run;
    lt_model *m;
    lt_tokenizer *tok;
    lt_recipe_list train_pats, eval_pats; /* the loaders' shard globs (raw files -> cache) */
    double *train_weights;                /* [train_pats.n] mixture weights, or NULL */
    lt_loader *train, *eval;
    lt_loader_totals tt;
    lt_trainer tr;
    lt_batch *batches;        /* [accum] this rank's micro-batches of a step */
    int accum;
    int world;                /* data-parallel ranks (1 without a launcher) */
    int rank;
    int64_t total_steps;
    int64_t tokens_per_step;  /* world · accum · micro_batch_size · seq_len: the global batch */
} job;

static void job_free(job *j) {
    if (j->batches) {
        for (int a = 0; a < j->accum; a++) lt_batch_free(&j->batches[a]);
        free(j->batches);
    }
    lt_trainer_free(&j->tr);
    lt_loader_free(j->train);
    lt_loader_free(j->eval);
    lt_recipe_list_free(&j->train_pats);
    lt_recipe_list_free(&j->eval_pats);
    free(j->train_weights);
    lt_tokenizer_free(j->tok);
    lt_model_free(j->m);
}

/* The base (quantized as the recipe says) and its adapter. */
static lt_status job_load_model(job *j) {
    const lt_recipe *r = j->r;
    lt_status st;
    lt_info("loading %s", r->model.path);
    lt_model_opts qo = lt_recipe_model_opts(r);
    if ((st = lt_model_load_opts(&j->m, &j->tok, r->model.path, &qo))) {
        if (st == LT_ERR_RECIPE && r->source) lt_error_wrap(st, "%s", r->source);
        return st;
    }
    const lt_model_config *c = &j->m->cfg;
    if (c->context_length > 0 && r->data.seq_len > c->context_length)
        return lt_error_set(LT_ERR_RECIPE, "%s: data.seq_len = %lld exceeds the model's context "
                            "length %d (%s); hint: lower data.seq_len",
                            r->source ? r->source : "recipe", (long long)r->data.seq_len,
                            c->context_length, r->model.path);
    unsigned targets;
    if ((st = target_mask(r, c, &targets))) return st;
    lt_lora_config lc = {.r = (int)r->lora.r, .alpha = (float)r->lora.alpha,
                         .dropout = (float)r->lora.dropout, .rslora = r->lora.rslora,
                         .targets = targets};
    lt_model_add_lora(j->m, &lc, (uint64_t)r->train.seed);
    /* a resumed run's checkpoint holds the adapter; the parent is checked and recorded anyway */
    if (r->lora.init_from) return lt_run_init_from(&j->run, j->m, &lc);
    return LT_OK;
}

/* train.device: the device opened and the model (adapter attached, init_from loaded) moved
 * onto it. A data-parallel run stays on the CPU: its CUDA collectives (NCCL) are not built. */
static lt_status job_to_device(job *j) {
    const lt_recipe *r = j->r;
    lt_device dev;
    if (j->world > 1 && r->train.device == LT_DEVICE_CUDA)
        return lt_error_set(LT_ERR_RECIPE, "%s: train.device: cuda with %d data-parallel ranks: "
                            "the GPU all-reduce (NCCL) is not built yet; hint: train.device: cpu "
                            "for several ranks, or one rank on the GPU",
                            r->source ? r->source : "recipe", j->world);
    lt_device_choice want = j->world > 1 ? LT_DEVICE_CPU : (lt_device_choice)r->train.device;
    lt_status st = lt_device_open(want, lt_dist_self()->local_rank, &dev);
    if (st) return lt_error_wrap(st, "%s: train.device", r->source ? r->source : "recipe");
    if (!lt_device_host_visible(dev)) {
        char what[256];
        lt_info("device: %s", lt_cuda_describe(what, sizeof what));
    }
    return lt_model_to_device(j->m, dev);
}

/* The train (and eval) loaders, the step count and the micro-batch buffers. */
static lt_status job_open_data(job *j) {
    const lt_recipe *r = j->r;
    lt_status st;
    /* rank 0 tokenizes raw files into the cache first; the other ranks then find the entry
     * (or, with a cache that is not shared between nodes, build their own identical one) */
    if (j->rank != 0 && (st = lt_dist_barrier())) return st;
    if ((st = lt_run_prepare_data(&j->run, lt_tokenizer_sha256(j->tok), &j->train_pats,
                                  &j->train_weights, &j->eval_pats)))
        return st;
    if (j->rank == 0 && (st = lt_dist_barrier())) return st;
    lt_loader_opts lo = {
        .patterns = (const char *const *)j->train_pats.items,
        .n_patterns = (size_t)j->train_pats.n,
        .weights = j->train_weights,
        .seq_len = (int)r->data.seq_len,
        .batch_rows = (int)r->train.micro_batch_size,
        .shuffle = true,
        .pack = r->data.packing,
        .seed = (uint64_t)r->train.seed,
        .expect = {.vocab_size = j->m->cfg.vocab_size,
                   .tokenizer_sha256 = lt_tokenizer_sha256(j->tok)},
    };
    if ((st = lt_loader_open(&j->train, &lo))) return st;
    if (j->eval_pats.n > 0) {
        lt_loader_opts eo = lo;
        eo.patterns = (const char *const *)j->eval_pats.items;
        eo.n_patterns = (size_t)j->eval_pats.n;
        eo.shuffle = false;
        eo.weights = NULL; /* evaluation reads every document once */
        if ((st = lt_loader_open(&j->eval, &eo))) return st;
    }
    lt_loader_totals_get(j->train, &j->tt);
    j->accum = (int)r->train.grad_accum;
    j->total_steps = r->train.max_steps;
    if (j->total_steps <= 0) {
        double per_epoch = (double)j->tt.batches_per_epoch / ((double)j->accum * j->world);
        double want = ceil(r->train.epochs * per_epoch);
        if (!(want <= LT_RECIPE_STEPS_MAX))
            return lt_error_set(LT_ERR_RECIPE, "train.epochs = %g over data.train (%lld batches "
                                "per epoch) is %.0f optimizer steps, more than the limit %d; "
                                "hint: fewer epochs, or set train.max_steps", r->train.epochs,
                                (long long)j->tt.batches_per_epoch, want, LT_RECIPE_STEPS_MAX);
        j->total_steps = (int64_t)want;
        if (j->total_steps < 1) j->total_steps = 1;
    }
    j->tokens_per_step = (int64_t)j->world * j->accum * r->train.micro_batch_size *
                         r->data.seq_len;
    j->batches = lt_xcalloc((size_t)j->accum, sizeof(lt_batch));
    for (int a = 0; a < j->accum; a++)
        lt_batch_init(&j->batches[a], (int)r->train.micro_batch_size, (int)r->data.seq_len);
    return LT_OK;
}

static void job_log_summary(const job *j) {
    const lt_recipe *r = j->r;
    const lt_model *m = j->m;
    const lt_model_config *c = &m->cfg;
    char mem[256];
    lt_info("model: %d layers, hidden %d, %d heads (%d kv), vocab %d, context %d",
            c->n_layer, c->dim, c->n_head, c->n_kv_head, c->vocab_size, c->context_length);
    lt_info("base: %s", lt_model_memory_str(m, mem, sizeof mem));
    lt_info("LoRA: r=%d alpha=%g%s on %d modules/layer: %lld trainable parameters (%.3f%% of "
            "the base); adapter + grads + AdamW state %.1f MiB",
            m->lora.r, m->lora.alpha, m->lora.rslora ? " (rsLoRA)" : "",
            __builtin_popcount(m->lora.targets), (long long)m->n_lora,
            100.0 * m->n_lora / (double)m->n_params, 16.0 * m->n_lora / 1048576.0);
    lt_info("data: %lld documents, %lld tokens (%lld trained) in %lld shards; %lld micro-batches "
            "of %lld x %lld per epoch; %lld steps of %lld tokens",
            (long long)j->tt.n_docs, (long long)j->tt.n_tokens, (long long)j->tt.n_targets,
            (long long)j->tt.n_shards, (long long)j->tt.batches_per_epoch,
            (long long)r->train.micro_batch_size, (long long)r->data.seq_len,
            (long long)j->total_steps, (long long)j->tokens_per_step);
    if (j->train_weights) {
        double sum = 0;
        for (int i = 0; i < j->train_pats.n; i++) sum += j->train_weights[i];
        for (int i = 0; i < j->train_pats.n; i++)
            lt_info("data.train[%d]: weight %g, %.1f%% of the documents drawn (%s)", i + 1,
                    j->train_weights[i], 100.0 * j->train_weights[i] / sum,
                    r->data.train.items[i]);
    }
    if (j->world > 1)
        lt_info("data-parallel: %d ranks x grad_accum %d x micro_batch_size %lld = global batch "
                "of %lld sequences, %lld tokens per step", j->world, j->accum,
                (long long)r->train.micro_batch_size,
                (long long)j->world * j->accum * r->train.micro_batch_size,
                (long long)j->tokens_per_step);
}

/* Evaluation on the eval split (recipe batch shape), logged; *last receives the loss. */
static lt_status job_eval(job *j, int64_t step, double *first, double *last) {
    const lt_recipe *r = j->r;
    double el;
    lt_status st = lt_train_eval(j->m, j->eval, (int)r->train.micro_batch_size,
                                 (int)r->data.seq_len, r->train.eval_batches, &el, NULL);
    if (st) return st;
    if (isnan(*first)) *first = el;
    *last = el;
    lt_run_log_eval(&j->run, step, el);
    return LT_OK;
}

/* A checkpoint (rank 0 writes it) after proving that every rank holds the same adapter and
 * moments: what rank 0 saves is what each rank trained (collective). */
static lt_status job_save(job *j, int64_t step, int64_t epochs_done) {
    const size_t nb = (size_t)j->m->n_lora * sizeof(float);
    lt_status st;
    lt_trainer_to_host(&j->tr); /* the host copies are what is compared and written */
    if ((st = lt_dist_check_same(j->m->lora_params, nb, "the adapter")) ||
        (st = lt_dist_check_same(j->tr.host_v, nb, "the AdamW second moments")))
        return st;
    return lt_run_save_checkpoint(&j->run, j->m, j->tr.host_m, j->tr.host_v, j->train, step,
                                  epochs_done);
}

/* Steps from `step` to total_steps: data, lt_train_step, logs, evaluations, checkpoints, and a
 * checkpoint + LT_ERR_INTERRUPTED on SIGINT/SIGTERM. */
static lt_status job_loop(job *j, int64_t step, int64_t epochs_done, double *first_eval,
                          double *last_eval, int64_t *step_out, int64_t *epochs_out) {
    const lt_recipe *r = j->r;
    lt_status st = LT_OK;
    lt_schedule sched = {.type = (lt_schedule_type)r->schedule.type, .lr = (float)r->optim.lr,
                         .min_lr = (float)r->schedule.min_lr,
                         .warmup_steps = r->schedule.warmup_steps};
    lt_progress prog;
    lt_progress_init(&prog, step, j->total_steps, r->train.log_every);
    prog.off = j->rank != 0;
    const int first = j->rank * j->accum; /* this rank's global micro-batches: first .. + accum */
    double allreduce_sum = 0;
    int64_t allreduce_n = 0;
    if (j->eval && step == 0 && (st = job_eval(j, 0, first_eval, last_eval))) goto out;
    while (step < j->total_steps) {
        double t0 = lt_now();
        float lr = lt_schedule_lr(&sched, step, j->total_steps);
        for (int g = 0; g < j->world * j->accum && !st; g++) {
            bool end = false;
            if (g >= first && g < first + j->accum)
                st = lt_loader_next(j->train, &j->batches[g - first], &end);
            else
                lt_loader_skip(j->train, &end);
            if (end) epochs_done++;
        }
        lt_step_stats ss;
        if (st || (st = lt_train_step(&j->tr, j->batches, j->accum, step, lr, &ss))) break;
        step++;
        allreduce_sum += j->tr.allreduce_s;
        allreduce_n++;
        /* the global batch over this rank's step time: the sum of the ranks' rates */
        double tps = j->tokens_per_step / (lt_now() - t0);
        if (step == 1)
            lt_progress_note(&prog, "activation arena peak %.1f MiB%s; peak RSS %.1f MiB",
                             j->tr.arena.peak / 1048576.0,
                             j->tr.g.checkpoint ? " (gradient checkpointing)" : "",
                             lt_peak_rss() / 1048576.0);
        if (step % r->train.log_every == 0 || step == j->total_steps)
            lt_run_log_step(&j->run, step, ss.loss, lr, tps, ss.grad_norm);
        lt_progress_update(&prog, step, ss.loss, lr, tps, *last_eval);
        bool last = step == j->total_steps;
        if (j->eval && ((r->train.eval_every > 0 && step % r->train.eval_every == 0) || last)) {
            if ((st = job_eval(j, step, first_eval, last_eval))) break;
            lt_progress_note(&prog, "step %lld: eval loss %.4f, perplexity %.2f", (long long)step,
                             *last_eval, exp(*last_eval));
        }
        /* SIGTERM reaches the ranks at different moments (Slurm signals each task; mpirun
         * only its own): every rank stops after the same step */
        int stop = stop_requested;
        if ((st = lt_dist_max_int(&stop, 1))) break;
        if (((r->train.save_every > 0 && step % r->train.save_every == 0 && !last) || stop) &&
            (st = job_save(j, step, epochs_done)))
            break;
        if (stop) {
            /* the run's resolved recipe.yaml carries every --set, so it resumes as it ran */
            st = lt_error_set(LT_ERR_INTERRUPTED, "interrupted at step %lld; checkpoint saved in "
                              "%s/checkpoints; resume with: lathe train %s/recipe.yaml --resume",
                              (long long)step, r->output.dir, r->output.dir);
            break;
        }
    }
out:
    if (j->world > 1 && allreduce_n > 0)
        lt_info("gradient all-reduce: %.3f ms per step on average (%lld floats, %d ranks)",
                1e3 * allreduce_sum / (double)allreduce_n, (long long)j->m->n_lora, j->world);
    lt_progress_end(&prog);
    *step_out = step;
    *epochs_out = epochs_done;
    return st;
}

/* output.gate.metric: the decision on the final eval loss against the baseline, in the manifest and
 * the log; LT_ERR_GATE (exit 4) when refused — the adapter stays in the run directory. */
static lt_status job_gate(job *j, double baseline, double candidate) {
    const lt_recipe *r = j->r;
    if (r->output.gate.metric == LT_GATE_NONE) return LT_OK;
    bool ok = isfinite(baseline) && isfinite(candidate) &&
              candidate <= baseline + r->output.gate.max_regression &&
              baseline - candidate >= r->output.gate.min_improvement * baseline;
    json_t *g = json_object();
    json_object_set_new(g, "metric", json_string("eval_loss"));
    json_object_set_new(g, "baseline", json_real(baseline));
    json_object_set_new(g, "candidate", json_real(candidate));
    json_object_set_new(g, "max_regression", json_real(r->output.gate.max_regression));
    json_object_set_new(g, "min_improvement", json_real(r->output.gate.min_improvement));
    json_object_set_new(g, "baseline_is", json_string(r->lora.init_from ? "lora.init_from"
                                                                        : "base model"));
    json_object_set_new(g, "passed", json_boolean(ok));
    lt_status st = lt_run_manifest_set(&j->run, "gate", g);
    if (st) return st;
    lt_info("gate: eval loss %.6f vs baseline %.6f (%s; max regression %g, min improvement "
            "%g): %s", candidate, baseline, r->lora.init_from ? "the parent adapter"
                                                             : "the base model",
            r->output.gate.max_regression, r->output.gate.min_improvement, ok ? "passed" : "REFUSED");
    if (ok) return LT_OK;
    return lt_error_set(LT_ERR_GATE, "gate refused the adapter: eval loss %.6f against the "
                        "baseline's %.6f (max regression %g, min improvement %g); it stays in "
                        "%s/adapter and nothing was published", candidate, baseline,
                        r->output.gate.max_regression, r->output.gate.min_improvement, r->output.dir);
}

/* output.publish: the switch, recorded in the manifest (written again into the version). */
static lt_status job_publish(job *j) {
    const lt_recipe *r = j->r;
    if (!r->output.publish || !j->run.writer) return LT_OK;
    json_t *man = j->run.manifest;
    const char *sha = json_string_value(json_object_get(json_object_get(man, "adapter"),
                                                        "sha256"));
    char version[96];
    json_object_set_new(man, "status", json_string("completed")); /* the copy in the version */
    json_t *p = json_object();
    json_object_set_new(p, "dir", json_string(r->output.publish));
    lt_status st = lt_run_manifest_set(&j->run, "published", p);
    if (!st)
        st = lt_publish(r->output.dir, r->output.publish, r->output.keep, j->run.started,
                        sha ? sha : "unknown", version);
    if (st) return st;
    json_object_set_new(p, "version", json_string(version));
    lt_info("published %s/%s; %s/current points to it", r->output.publish, version,
            r->output.publish);
    return lt_run_manifest_set(&j->run, "published", json_incref(p));
}

/* output.dir/report.html after the manifest is stamped (any outcome but a run that never
 * opened); a failure to write it is a warning, never the run's status. */
static void job_report(const lt_recipe *r, lt_status st) {
    char saved[2048], path[PATH_MAX + 16];
    snprintf(saved, sizeof saved, "%s", lt_error_message());
    snprintf(path, sizeof path, "%s/report.html", r->output.dir);
    const char *dir = r->output.dir;
    if (lt_report_write(&dir, 1, path)) lt_warn("report not written: %s", lt_error_message());
    lt_error_set(st, "%s", saved);
}

/* The checkpoint rank 0 loaded, copied to every other rank (they never read the run
 * directory): adapter, AdamW moments, step, epochs and data cursor. */
static lt_status share_checkpoint(job *j, int64_t *step, int64_t *epochs_done) {
    if (j->world == 1) return LT_OK;
    const size_t nb = (size_t)j->m->n_lora * sizeof(float);
    lt_loader_state ls = lt_loader_get_state(j->train);
    int64_t se[2] = {*step, *epochs_done};
    lt_status st;
    if ((st = lt_dist_bcast(j->m->lora_params, nb, 0)) ||
        (st = lt_dist_bcast(j->tr.host_m, nb, 0)) || (st = lt_dist_bcast(j->tr.host_v, nb, 0)) ||
        (st = lt_dist_bcast(se, sizeof se, 0)) || (st = lt_dist_bcast(&ls, sizeof ls, 0)))
        return st;
    *step = se[0];
    *epochs_done = se[1];
    if (j->rank != 0 && (st = lt_loader_set_state(j->train, &ls))) return st;
    return LT_OK;
}

lt_status lt_train_run(const lt_recipe *r, const lt_train_opts *o) {
    lt_status st;
    set_threads(r->train.threads);
    const lt_dist *d = lt_dist_self();
    job j = {.r = r, .world = d->world, .rank = d->rank};
    /* SIGINT/SIGTERM from here on end the run cleanly: during loading (nothing to save yet) at
     * the next stop point, during training after a checkpoint (exit 130 either way) */
    stop_requested = 0;
    int lock = -1;
    const char *shared = r->output.publish ? r->output.publish : r->output.dir;
    /* one writer: rank 0 holds the lock (another rank on its node would be refused by it) */
    if (j.rank == 0 &&
        ((st = lt_run_lock(shared, r->source ? r->source : "recipe", &lock)) ||
         (r->output.publish && (st = lt_publish_check(r->output.publish))))) {
        lt_run_unlock(lock);
        return st;
    }
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (j.rank != 0) lt_run_attach(&j.run, r);
    else if ((st = lt_run_open(&j.run, r, o->resume))) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        lt_run_close(&j.run, st); /* frees what the open made; no manifest yet, nothing stamped */
        lt_run_unlock(lock);
        return st;
    }
    if (j.world > 1) {
        /* the other ranks learn from rank 0 whether there is a checkpoint to resume */
        if ((st = lt_dist_bcast(&j.run.resume_step, sizeof j.run.resume_step, 0))) goto done;
        json_t *dj = json_object();
        json_object_set_new(dj, "backend", json_string("mpi"));
        json_object_set_new(dj, "world_size", json_integer(j.world));
        if ((st = lt_run_manifest_set(&j.run, "distributed", dj))) goto done;
    }
    if ((st = lt_run_manifest_set(&j.run, "world_size", json_integer(j.world)))) goto done;
    double t_start = lt_now();
    if ((st = job_load_model(&j)) || (st = job_to_device(&j)) ||
        (st = stopped_while_loading(r, o->resume)) || (st = job_open_data(&j)))
        goto done;
    lt_adamw_hparams hp = {.beta1 = (float)r->optim.beta1, .beta2 = (float)r->optim.beta2,
                           .eps = (float)r->optim.eps,
                           .weight_decay = (float)r->optim.weight_decay};
    /* gradient checkpointing: the recipe's choice, else on where memory is scarce (a GPU) */
    bool ckpt = r->train.gradient_checkpointing ||
                (!lt_device_host_visible(j.m->device) &&
                 lt_recipe_origin_of(r, "train.gradient_checkpointing") == LT_RECIPE_DEFAULT);
    if ((st = lt_trainer_init(&j.tr, j.m, &hp, (float)r->train.grad_clip,
                              (uint64_t)r->train.seed, ckpt)))
        goto done;
    j.tr.mb_first = j.rank * j.accum;
    int64_t step = 0, epochs_done = 0;
    /* the gate's baseline is the adapter training starts from (the parent's, or a fresh one,
     * whose zero B leaves the bare base): a fresh run's step-0 evaluation measures it; a
     * resumed one measures it here, before the checkpoint replaces the adapter */
    double baseline = NAN;
    if (r->output.gate.metric == LT_GATE_EVAL_LOSS && o->resume && j.run.resume_step > 0 &&
        (st = lt_train_eval(j.m, j.eval, (int)r->train.micro_batch_size, (int)r->data.seq_len,
                            r->train.eval_batches, &baseline, NULL)))
        goto done;
    if (o->resume && j.run.resume_step > 0) {
        if (j.rank == 0 &&
            (st = lt_run_load_checkpoint(&j.run, j.m, j.tr.host_m, j.tr.host_v, j.train,
                                         j.total_steps, &step, &epochs_done)))
            goto done;
        if ((st = share_checkpoint(&j, &step, &epochs_done))) goto done;
        lt_trainer_to_device(&j.tr); /* the checkpoint was read into the host copies */
        lt_info("resumed from %s at step %lld", j.run.resume_dir, (long long)step);
    }
    job_log_summary(&j);
    if ((st = stopped_while_loading(r, o->resume))) goto done;

    double first_eval = NAN, last_eval = NAN;
    if ((st = job_loop(&j, step, epochs_done, &first_eval, &last_eval, &step, &epochs_done)))
        goto done;
    if ((st = job_save(&j, step, epochs_done)) || (st = lt_run_export(&j.run, j.m)))
        goto done;
    if (!isnan(first_eval))
        lt_info("eval loss %.4f -> %.4f (perplexity %.2f -> %.2f)", first_eval, last_eval,
                exp(first_eval), exp(last_eval));
    if (isnan(baseline)) baseline = first_eval;
    if ((st = job_gate(&j, baseline, last_eval)) || (st = job_publish(&j))) goto done;
    lt_info("done: %lld steps in %.1f s; adapter in %s/adapter", (long long)step,
            lt_now() - t_start, r->output.dir);
done:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    lt_run_close(&j.run, st);
    if (j.run.writer) job_report(r, st);
    job_free(&j);
    if (lock >= 0) lt_run_unlock(lock);
    return st;
}
