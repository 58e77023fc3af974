/* Run directory: creation/resume, manifest.json, metrics.jsonl, checkpoints, final export. */
#include "run.h"

#include "../core/device.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../dist/dist.h"
#include "../export/export.h"
#include "../io/io.h"


static void iso_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static lt_status write_json(const char *path, json_t *j) {
    char *text = json_dumps(j, JSON_INDENT(2));
    lt_status st = lt_write_file_atomic(path, text, strlen(text));
    free(text);
    return st;
}

/* A published checkpoint's directory name: "step-" and digits only; *step is the number.
 * Temporary ("step-N.tmp.PID") and moved-aside ("step-N.old.PID") names are not checkpoints. */
static bool ckpt_name_step(const char *name, int64_t *step) {
    if (strncmp(name, "step-", 5) || !isdigit((unsigned char)name[5])) return false;
    char *end;
    errno = 0;
    long long s = strtoll(name + 5, &end, 10);
    if (*end || errno || s <= 0) return false;
    *step = s;
    return true;
}

static int cmp_ckpt_desc(const void *a, const void *b) {
    int64_t x = ((const lt_run_ckpt *)a)->step, y = ((const lt_run_ckpt *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* run->ckpts: the complete checkpoints of dir (checkpoints/step-N holding trainer_state.json;
 * lt_dir_publish renames a directory into place only once it is whole), newest first. */
static void list_checkpoints(lt_run *run, const char *dir) {
    char cdir[PATH_MAX];
    snprintf(cdir, sizeof cdir, "%s/checkpoints", dir);
    DIR *d = opendir(cdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s;
        if (!ckpt_name_step(e->d_name, &s)) continue;
        lt_run_ckpt c = {.step = s};
        if (snprintf(c.dir, sizeof c.dir, "%s/%s", cdir, e->d_name) >= (int)sizeof c.dir) continue;
        char state[PATH_MAX + 32];
        snprintf(state, sizeof state, "%s/trainer_state.json", c.dir);
        if (!exists(state)) continue;
        run->ckpts = lt_xrealloc(run->ckpts, (run->n_ckpts + 1) * sizeof *run->ckpts);
        run->ckpts[run->n_ckpts++] = c;
    }
    closedir(d);
    if (run->n_ckpts > 1) qsort(run->ckpts, run->n_ckpts, sizeof *run->ckpts, cmp_ckpt_desc);
}

/* Remove checkpoints/step-N.tmp.PID and step-N.old.PID directories whose process is gone: what a
 * kill during a checkpoint write leaves behind (lt_run_save_checkpoint, lt_dir_publish). A
 * directory of a process still alive is left alone. */
/* In `dir`: remove entries whose name ends in ".tmp.<pid>" or ".old.<pid>" of a process that is
 * gone — a temporary file or directory of an atomic write (lt_atomic_*, lt_dir_publish) that a
 * kill interrupted. The last such suffix counts: a checkpoint's PEFT files are published inside
 * "step-N.tmp.P" as "step-N.tmp.P.tmp.P". */
static void remove_stale_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *dot = NULL;
        for (const char *q = e->d_name; (q = strstr(q, ".")); q++)
            if (!strncmp(q, ".tmp.", 5) || !strncmp(q, ".old.", 5)) dot = q;
        if (!dot || !isdigit((unsigned char)dot[5])) continue;
        char *end;
        long pid = strtol(dot + 5, &end, 10);
        if (*end || pid <= 0) continue;
        if (pid != (long)getpid() && kill((pid_t)pid, 0) == 0) continue; /* still running */
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        lt_warn("removing %s, left by an interrupted write", p);
        lt_remove_tree(p);
    }
    closedir(d);
}

/* The run directory, its checkpoints/ and exports/ (resume: this process is the run's writer). */
static void remove_stale_tmp(const char *dir) {
    static const char *const subs[] = {"", "/checkpoints", "/exports"};
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s", dir, subs[i]);
        remove_stale_in(p);
    }
}

/* Keep metrics lines whose "step" is <= keep (a resumed run re-logs what came after). */
static lt_status truncate_metrics(const char *path, int64_t keep) {
    char *text;
    size_t len;
    if (!exists(path)) return LT_OK;
    lt_status st = lt_read_file(path, &text, &len);
    if (st) return st;
    char *out = lt_xmalloc(len + 1);
    size_t olen = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line + 1) : strlen(line);
        json_t *j = json_loadb(line, ll, 0, NULL);
        json_t *sv = j ? json_object_get(j, "step") : NULL;
        if (sv && json_is_integer(sv) && json_integer_value(sv) <= keep) {
            memcpy(out + olen, line, ll);
            olen += ll;
        }
        json_decref(j);
        line += ll;
    }
    st = lt_write_file_atomic(path, out, olen);
    free(out);
    free(text);
    return st;
}

static json_t *file_entry(const char *path) {
    json_t *e = json_object();
    char hex[65];
    json_object_set_new(e, "path", json_string(path));
    if (lt_sha256_file(path, hex) == LT_OK) json_object_set_new(e, "sha256", json_string(hex));
    return e;
}

void lt_run_attach(lt_run *run, const lt_recipe *r) {
    memset(run, 0, sizeof *run);
    run->r = r;
}

lt_status lt_run_open(lt_run *run, const lt_recipe *r, bool resume) {
    memset(run, 0, sizeof *run);
    run->r = r;
    run->writer = true;
    const char *dir = r->output.dir;
    char path[PATH_MAX + 64];
    lt_status st = lt_mkdir_p(dir);
    if (st) return st;
    snprintf(path, sizeof path, "%s/recipe.yaml", dir);
    bool has_run = exists(path);
    if (resume) {
        remove_stale_tmp(dir);
        list_checkpoints(run, dir);
        if (run->n_ckpts > 0) {
            run->resume_step = run->ckpts[0].step;
            snprintf(run->resume_dir, sizeof run->resume_dir, "%s", run->ckpts[0].dir);
        }
        if (run->resume_step == 0)
            return lt_error_set(LT_ERR_USAGE, "--resume: '%s' holds no checkpoint to resume "
                                "from; hint: run without --resume to start afresh", dir);
    } else if (has_run) {
        return lt_error_set(LT_ERR_USAGE, "output.dir '%s' already holds a run; hint: pass "
                            "--resume to continue it, or choose another output.dir "
                            "(--set output.dir=...)", dir);
    }
    if ((st = lt_recipe_write(r, path))) return st;

    iso_now(run->started, sizeof run->started);
    json_t *man = json_object();
    json_object_set_new(man, "lathe_version", json_string(LATHE_VERSION));
    json_object_set_new(man, "status", json_string("running"));
    json_object_set_new(man, "started", json_string(run->started));
    json_object_set_new(man, "seed", json_integer(r->train.seed));
    if (resume) json_object_set_new(man, "resumed_from_step", json_integer(run->resume_step));
    json_object_set_new(man, "base_model", file_entry(r->model.path));
    json_t *shards = json_array();
    const lt_recipe_list *lists[2] = {&r->data.train, &r->data.eval};
    for (int li = 0; li < 2; li++) {
        char **paths;
        size_t n;
        /* shard globs only: raw files are recorded with their shards by rawdata.c */
        const char *pats[lists[li]->n + 1];
        size_t np = 0;
        for (int i = 0; i < lists[li]->n; i++)
            if (!lt_data_is_raw(lists[li]->items[i])) pats[np++] = lists[li]->items[i];
        if (np == 0) continue;
        if (lt_shard_glob(&paths, &n, pats, np) != LT_OK) {
            json_decref(man);
            json_decref(shards);
            return LT_ERR_DATA; /* message from lt_shard_glob names the pattern */
        }
        for (size_t i = 0; i < n; i++) {
            /* before hashing: a FIFO or a device named as a shard would block or never end */
            lt_status rs = lt_require_regular(paths[i], LT_ERR_DATA, "shard");
            if (rs) {
                lt_paths_free(paths, n);
                json_decref(man);
                json_decref(shards);
                return rs;
            }
            /* a shard's sidecar already holds its SHA-256 (verified when the loader opens it):
             * hashing every shard twice would double the load cost */
            bool found;
            char hex[65];
            rs = lt_shard_sidecar_read(paths[i], &found, hex);
            if (rs) {
                lt_paths_free(paths, n);
                json_decref(man);
                json_decref(shards);
                return rs;
            }
            json_t *e = found ? json_object() : file_entry(paths[i]);
            if (found) {
                json_object_set_new(e, "path", json_string(paths[i]));
                json_object_set_new(e, "sha256", json_string(hex));
            }
            json_array_append_new(shards, e);
        }
        lt_paths_free(paths, n);
    }
    json_object_set_new(man, "shards", shards);
    run->manifest = man;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    if ((st = write_json(path, man))) return st;

    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (resume && (st = truncate_metrics(path, run->resume_step))) return st;
    run->metrics = fopen(path, resume ? "a" : "w");
    if (!run->metrics)
        return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return LT_OK;
}

void lt_run_close(lt_run *run, lt_status st) {
    if (run->metrics) fclose(run->metrics);
    run->metrics = NULL;
    free(run->ckpts);
    run->ckpts = NULL;
    run->n_ckpts = 0;
    json_t *man = run->manifest;
    if (!man) return;
    char now[40], path[PATH_MAX + 64];
    iso_now(now, sizeof now);
    json_object_set_new(man, "finished", json_string(now));
    json_object_set_new(man, "status", json_string(st == LT_OK ? "completed"
                                                   : st == LT_ERR_INTERRUPTED ? "interrupted"
                                                   : st == LT_ERR_GATE        ? "gate_refused"
                                                                              : "failed"));
    if (st != LT_OK && st != LT_ERR_INTERRUPTED && st != LT_ERR_GATE)
        json_object_set_new(man, "error", json_string(lt_error_message()));
    snprintf(path, sizeof path, "%s/manifest.json", run->r->output.dir);
    char saved[2048];
    snprintf(saved, sizeof saved, "%s", lt_error_message());
    write_json(path, man); /* best effort: keep the run's own error as the message */
    lt_error_set(st, "%s", saved);
    json_decref(man);
    run->manifest = NULL;
}

void lt_run_log_step(lt_run *run, int64_t step, double loss, float lr, double tokens_per_s,
                     float grad_norm) {
    if (!run->metrics) return;
    fprintf(run->metrics,
            "{\"step\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"tokens_per_s\": %.1f, "
            "\"grad_norm\": %.6g}\n",
            (long long)step, loss, lr, tokens_per_s, grad_norm);
    fflush(run->metrics);
}

void lt_run_log_eval(lt_run *run, int64_t step, double eval_loss) {
    if (!run->metrics) return;
    fprintf(run->metrics, "{\"step\": %lld, \"eval_loss\": %.6f, \"eval_ppl\": %.4f}\n",
            (long long)step, eval_loss, exp(eval_loss));
    fflush(run->metrics);
}

lt_status lt_run_save_checkpoint(lt_run *run, const lt_model *m, const float *opt_m,
                                 const float *opt_v, const lt_loader *train, int64_t step,
                                 int64_t epochs_done) {
    if (!run->writer) return LT_OK;
    char final[PATH_MAX], tmp[PATH_MAX + 32], path[PATH_MAX + 64];
    snprintf(final, sizeof final, "%s/checkpoints/step-%07lld", run->r->output.dir,
             (long long)step);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", final, (long)getpid());
    lt_remove_tree(tmp);
    lt_status st = lt_mkdir_p(run->r->output.dir);
    if (!st) st = lt_peft_save(m, tmp, run->r->model.path, false);
    if (st) return lt_error_wrap(st, "writing checkpoint %s", final);

    lt_st_writer *w = lt_st_writer_new();
    int64_t shape[1] = {m->n_lora};
    lt_st_writer_add(w, "adamw.exp_avg", LT_F32, 1, shape, opt_m);
    lt_st_writer_add(w, "adamw.exp_avg_sq", LT_F32, 1, shape, opt_v);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    st = lt_st_writer_write(w, path);
    lt_st_writer_free(w);

    lt_loader_state ls = lt_loader_get_state(train);
    json_t *js = json_object();
    json_object_set_new(js, "step", json_integer(step));
    json_object_set_new(js, "epochs_done", json_integer(epochs_done));
    json_object_set_new(js, "n_params", json_integer(m->n_lora));
    json_object_set_new(js, "world_size", json_integer(lt_dist_self()->world));
    json_object_set_new(js, "grad_accum", json_integer(run->r->train.grad_accum));
    json_t *cur = json_object();
    json_object_set_new(cur, "epoch", json_integer(ls.epoch));
    json_object_set_new(cur, "doc_index", json_integer(ls.doc_index));
    json_object_set_new(cur, "doc_offset", json_integer(ls.doc_offset));
    json_object_set_new(cur, "seed", json_integer((json_int_t)ls.seed));
    json_object_set_new(cur, "n_docs", json_integer(ls.n_docs));
    json_object_set_new(js, "data_cursor", cur);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if (!st) st = write_json(path, js);
    json_decref(js);
    if (!st) st = lt_dir_publish(tmp, final, true);
    if (st) {
        lt_remove_tree(tmp);
        return lt_error_wrap(st, "writing checkpoint %s", final);
    }
    return LT_OK;
}

static lt_status state_int(json_t *o, const char *key, const char *path, int64_t *out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return lt_error_set(LT_ERR_DATA, "%s: '%s' is missing or not an integer", path, key);
    *out = json_integer_value(v);
    return LT_OK;
}

/* Load one checkpoint directory, validating every field of trainer_state.json: the step must be
 * the one its directory names (1..max_steps), epochs_done and the data cursor in range. A
 * damaged checkpoint gives LT_ERR_DATA or LT_ERR_MODEL naming the file. */
static lt_status load_one(lt_run *run, const lt_run_ckpt *ck, int64_t n_lora, lt_model *m,
                          float *opt_m, float *opt_v, lt_loader *train, int64_t max_steps,
                          int64_t *step, int64_t *epochs_done) {
    char path[PATH_MAX + 64];
    lt_status st = lt_peft_load(m, ck->dir);
    if (st) return st;
    if (m->n_lora != n_lora)
        return lt_error_set(LT_ERR_USAGE, "%s: the checkpoint's adapter has %lld parameters but "
                            "the recipe's lora settings give %lld; hint: resume with the recipe "
                            "the run started with", ck->dir, (long long)m->n_lora,
                            (long long)n_lora);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", ck->dir);
    lt_safetensors *sf;
    if ((st = lt_safetensors_open(&sf, path))) return st;
    const lt_st_tensor *tm = lt_safetensors_find(sf, "adamw.exp_avg");
    const lt_st_tensor *tv = lt_safetensors_find(sf, "adamw.exp_avg_sq");
    if (!tm || !tv || tm->dtype != LT_F32 || tv->dtype != LT_F32 ||
        tm->nbytes != (size_t)m->n_lora * 4 || tv->nbytes != (size_t)m->n_lora * 4) {
        lt_safetensors_close(sf);
        return lt_error_set(LT_ERR_DATA, "%s: expected F32 tensors 'adamw.exp_avg' and "
                            "'adamw.exp_avg_sq' of %lld values", path, (long long)m->n_lora);
    }
    memcpy(opt_m, tm->data, tm->nbytes);
    memcpy(opt_v, tv->data, tv->nbytes);
    lt_safetensors_close(sf);

    snprintf(path, sizeof path, "%s/trainer_state.json", ck->dir);
    json_error_t jerr;
    json_t *js = json_load_file(path, 0, &jerr);
    if (!js) return lt_error_set(LT_ERR_DATA, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *cur = json_object_get(js, "data_cursor");
    lt_loader_state ls = {0};
    int64_t seed = 0;
    if ((st = state_int(js, "step", path, step)) ||
        (st = state_int(js, "epochs_done", path, epochs_done)) ||
        (st = state_int(cur, "epoch", path, &ls.epoch)) ||
        (st = state_int(cur, "doc_index", path, &ls.doc_index)) ||
        (st = state_int(cur, "doc_offset", path, &ls.doc_offset)) ||
        (st = state_int(cur, "seed", path, &seed)) ||
        (st = state_int(cur, "n_docs", path, &ls.n_docs))) {
        json_decref(js);
        return st;
    }
    /* the cursor is per global step: another world size would take other documents (and sum
     * in another order), so the run would not continue as it would have */
    int64_t world = 1;
    json_t *wv = json_object_get(js, "world_size");
    if (wv && (st = state_int(js, "world_size", path, &world))) {
        json_decref(js);
        return st;
    }
    json_decref(js);
    if (world != lt_dist_self()->world)
        return lt_error_set(LT_ERR_USAGE, "%s: the checkpoint was written by a job of %lld "
                            "rank%s but this job has %d: the data cursor and each step's sums "
                            "are per global batch (ranks x grad_accum x micro_batch_size), so "
                            "the run would not continue as it ran; hint: resume with %lld "
                            "rank%s (mpirun -np %lld)", path, (long long)world,
                            world == 1 ? "" : "s", lt_dist_self()->world, (long long)world,
                            world == 1 ? "" : "s", (long long)world);
    if (*step != ck->step)
        return lt_error_set(LT_ERR_DATA, "%s: 'step' is %lld but the directory is the checkpoint "
                            "of step %lld (damaged or edited file)", path, (long long)*step,
                            (long long)ck->step);
    if (*step > max_steps)
        return lt_error_set(LT_ERR_USAGE, "%s: the checkpoint is at step %lld, past this run's "
                            "%lld steps; hint: resume with the recipe the run started with, or "
                            "raise train.max_steps", path, (long long)*step, (long long)max_steps);
    /* each micro-batch ends at most one epoch */
    int64_t most_epochs = *step * run->r->train.grad_accum * world;
    if (*epochs_done < 0 || *epochs_done > most_epochs)
        return lt_error_set(LT_ERR_DATA, "%s: 'epochs_done' is %lld, outside 0..%lld for step "
                            "%lld (damaged file)", path, (long long)*epochs_done,
                            (long long)most_epochs, (long long)*step);
    if (ls.epoch < 0 || ls.epoch > *epochs_done + 1)
        return lt_error_set(LT_ERR_DATA, "%s: data_cursor 'epoch' is %lld, outside 0..%lld "
                            "(damaged file)", path, (long long)ls.epoch,
                            (long long)(*epochs_done + 1));
    ls.seed = (uint64_t)seed;
    if ((st = lt_loader_set_state(train, &ls))) return lt_error_wrap(st, "%s", path);
    return LT_OK;
}

lt_status lt_run_load_checkpoint(lt_run *run, lt_model *m, float *opt_m, float *opt_v,
                                 lt_loader *train, int64_t max_steps, int64_t *step,
                                 int64_t *epochs_done) {
    int64_t n_lora = m->n_lora;
    char *first = NULL;
    lt_status first_st = LT_OK;
    for (size_t i = 0; i < run->n_ckpts; i++) {
        const lt_run_ckpt *ck = &run->ckpts[i];
        lt_status st = load_one(run, ck, n_lora, m, opt_m, opt_v, train, max_steps, step,
                                epochs_done);
        if (!st) {
            free(first);
            if (i == 0) return LT_OK;
            /* fell back: metrics after this step are re-logged, the manifest says where from */
            run->resume_step = ck->step;
            snprintf(run->resume_dir, sizeof run->resume_dir, "%s", ck->dir);
            json_object_set_new(run->manifest, "resumed_from_step", json_integer(ck->step));
            char path[PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/manifest.json", run->r->output.dir);
            if ((st = write_json(path, run->manifest))) return st;
            snprintf(path, sizeof path, "%s/metrics.jsonl", run->r->output.dir);
            if (run->metrics) fclose(run->metrics);
            run->metrics = NULL;
            if ((st = truncate_metrics(path, ck->step))) return st;
            if (!(run->metrics = fopen(path, "a")))
                return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
            return LT_OK;
        }
        if (st != LT_ERR_DATA && st != LT_ERR_MODEL) {
            free(first);
            return st;
        }
        lt_warn("cannot resume from %s: %s", ck->dir, lt_error_message());
        if (!first) {
            first = lt_xstrdup(lt_error_message());
            first_st = st;
        }
        if (i + 1 < run->n_ckpts)
            lt_warn("falling back to the previous complete checkpoint, %s", run->ckpts[i + 1].dir);
    }
    lt_status st = lt_error_set(first_st, "%s (and no earlier complete checkpoint could be "
                                "loaded either); hint: run without --resume and a new "
                                "output.dir to start afresh", first ? first : "no checkpoint");
    free(first);
    return st;
}

lt_status lt_run_manifest_set(lt_run *run, const char *key, void *value) {
    if (!run->manifest) {
        json_decref(value);
        return LT_OK;
    }
    json_object_set_new(run->manifest, key, value);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/manifest.json", run->r->output.dir);
    return write_json(path, run->manifest);
}

lt_status lt_run_export(lt_run *run, const lt_model *m) {
    if (!run->writer) return LT_OK;
    char dir[PATH_MAX + 64], file[PATH_MAX + 96];
    snprintf(dir, sizeof dir, "%s/adapter", run->r->output.dir);
    lt_status st = lt_peft_save(m, dir, run->r->model.path, true);
    if (st) return st;
    snprintf(file, sizeof file, "%s/adapter_model.safetensors", dir);
    json_t *e = json_object();
    char sha[65];
    json_object_set_new(e, "path", json_string(dir));
    if (lt_sha256_file(file, sha) == LT_OK) json_object_set_new(e, "sha256", json_string(sha));
    if ((st = lt_run_manifest_set(run, "adapter", e))) return st;
    const lt_recipe_list *ex = &run->r->output.exports;
    if (ex->n == 0) return st;
    /* output.exports: each format with `lathe export`'s defaults into exports/<format>/,
     * replacing an older export of this run like adapter/ above */
    lt_export_src src;
    lt_model *host = NULL;
    if (lt_device_host_visible(m->device)) {
        st = lt_export_src_open(&src, m, run->r->model.path);
    } else { /* the trained base lives on the device: the exports read the base from its file
              * (as `lathe export` does) with the adapter just written */
        snprintf(dir, sizeof dir, "%s/adapter", run->r->output.dir);
        st = lt_export_src_load(&src, &host, run->r->model.path, NULL);
        if (!st && (st = lt_peft_load(host, dir))) lt_export_src_close(&src);
    }
    if (st) {
        lt_model_free(host);
        return st;
    }
    src.base_name = run->r->model.path;
    for (int i = 0; i < ex->n && !st; i++) {
        lt_export_format f;
        if ((st = lt_export_format_from_name(&f, ex->items[i]))) break;
        lt_export_opts o = lt_export_defaults(f);
        o.force = true;
        snprintf(dir, sizeof dir, "%s/exports/%s", run->r->output.dir, ex->items[i]);
        st = lt_export_write(&src, dir, &o);
    }
    lt_export_src_close(&src);
    lt_model_free(host);
    return st;
}
