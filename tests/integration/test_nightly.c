/* Nightly jobs (issue 11), on the CI recipe shortened to 10 steps (stories260K, identity data):
 * a run continues from last night's adapter (lora.init_from) — the parent's checks, the exact
 * continuation and the chain in the manifests; the gate against the starting adapter, the
 * atomic publish switch and output.keep; publish checked before training; the run lock. */
#include <jansson.h>
#include <math.h>
#include <sys/wait.h>

#include "../support.h"
#include "train/run.h"

static char tmp[256], model[1024];
static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "nightly"); }
static void teardown(void) { ts_rmtree(tmp); }

static int train(const char *run, const char *extra, char **out) {
    char args[8192];
    snprintf(args, sizeof args, "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s --set train.max_steps=10 --set train.save_every=0 "
             "--set train.eval_every=5 %s", model, tmp, tmp, run, extra);
    return ts_run(tmp, args, out);
}

/* eval_loss values of run/metrics.jsonl in order; returns how many (<= cap). */
static int eval_losses(const char *run, double *v, int cap) {
    char path[600], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    int k = 0;
    for (char *p = strstr(text, "\"eval_loss\": "); p && k < cap; p = strstr(p + 1, "\"eval_loss\": "))
        v[k++] = strtod(p + 13, NULL);
    free(text);
    return k;
}

static json_t *manifest(const char *run) {
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.json", run);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert_not_null(j, "%s unreadable", path);
    return j;
}

static const char *jstr(json_t *j, const char *a, const char *b) {
    return json_string_value(json_object_get(json_object_get(j, a), b));
}

Test(nightly, init_from_continues_exactly_and_records_the_chain, .init = setup, .fini = teardown,
     .timeout = 200) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char n1[400], n2[400], extra[600], *out;
    snprintf(n1, sizeof n1, "%s/night1", tmp);
    snprintf(n2, sizeof n2, "%s/night2", tmp);
    cr_assert_eq(train(n1, "", &out), 0, "%s", out);
    free(out);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter", n1);
    cr_assert_eq(train(n2, extra, &out), 0, "%s", out);
    cr_assert(strstr(out, "continuing from"), "%s", out);
    free(out);

    /* night 2 starts where night 1 ended: its step-0 evaluation of the same eval shards is
     * night 1's last (same adapter, same forward, same fixed-order pass) */
    double e1[8], e2[8];
    int k1 = eval_losses(n1, e1, 8), k2 = eval_losses(n2, e2, 8);
    cr_assert(k1 >= 2 && k2 >= 2);
    cr_assert(fabs(e2[0] - e1[k1 - 1]) < 1e-6, "night 2 starts at %.6f, night 1 ended at %.6f",
              e2[0], e1[k1 - 1]);
    cr_assert(e2[k2 - 1] < e2[0], "night 2 did not train further (%.6f -> %.6f)", e2[0],
              e2[k2 - 1]);

    /* the chain: night 2's parent checksum is night 1's adapter checksum */
    json_t *m1 = manifest(n1), *m2 = manifest(n2);
    const char *a1 = jstr(m1, "adapter", "sha256"), *p2 = jstr(m2, "init_from", "adapter_sha256");
    cr_assert(a1 && p2 && !strcmp(a1, p2), "night 2's parent %s is not night 1's adapter %s",
              p2 ? p2 : "(none)", a1 ? a1 : "(none)");
    cr_assert(jstr(m2, "init_from", "parent_manifest") &&
              strstr(jstr(m2, "init_from", "parent_manifest"), "night1"));
    cr_assert(json_is_null(json_object_get(m1, "init_from")) ||
              !json_object_get(m1, "init_from"), "night 1 has no parent");
    json_decref(m1);
    json_decref(m2);
}

Test(nightly, init_from_refuses_another_layout_or_base, .init = setup, .fini = teardown,
     .timeout = 200) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char n1[400], bad[400], extra[1200], cmd[3000], *out;
    snprintf(n1, sizeof n1, "%s/night1", tmp);
    cr_assert_eq(train(n1, "", &out), 0, "%s", out);
    free(out);

    /* another rank */
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter --set lora.r=4", n1);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "lora.init_from") && strstr(out, "r=8") && strstr(out, "r=4"), "%s",
              out);
    free(out);
    ts_rmtree(bad);

    /* another target list */
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter "
             "--set 'lora.target_modules=[q_proj, k_proj, v_proj]'", n1);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "k_proj"), "%s", out);
    free(out);
    ts_rmtree(bad);

    /* a parent whose run manifest names another base */
    char par[400];
    snprintf(par, sizeof par, "%s/other", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s/adapter' '%s/adapter' && sed "
             "'s/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"%064d\"/' '%s/manifest.json' > "
             "'%s/manifest.json'", par, n1, par, 0, n1, par);
    cr_assert_eq(system(cmd), 0);
    snprintf(extra, sizeof extra, "--set lora.init_from=%s/adapter", par);
    cr_assert_eq(train(bad, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "SHA-256") && strstr(out, "0000000000"), "%s", out);
    free(out);
    ts_rmtree(bad);

    /* not an adapter directory */
    snprintf(extra, sizeof extra, "--set lora.init_from=%s", tmp);
    cr_assert_eq(train(bad, extra, &out), 3, "%s", out);
    cr_assert(strstr(out, "adapter_config.json"), "%s", out);
    free(out);
}

/* version directory names under pub (not hidden, not `current`), sorted; returns the count */
static int versions(const char *pub, char names[][128], int cap) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -1 '%s' | grep -v '^current$' | sort", pub);
    FILE *p = popen(cmd, "r");
    int n = 0;
    while (n < cap && fgets(names[n], 128, p)) {
        names[n][strcspn(names[n], "\n")] = 0;
        n++;
    }
    pclose(p);
    return n;
}

static void current_target(const char *pub, char *out, size_t cap) {
    char link[700];
    snprintf(link, sizeof link, "%s/current", pub);
    ssize_t n = readlink(link, out, cap - 1);
    cr_assert_gt(n, 0, "%s is not a symlink", link);
    out[n] = 0;
}

static void write_jsonl(const char *path, int n, const char *w, bool bad);

/* The nightly flow on raw JSONL: each night new records (another animal in the same sentences)
 * and the same eval file. Nights 1..3 pass the gate and are published (keep 2: night 1's
 * version goes); night 4 is forced to fail the gate: exit 4, `current` unchanged, its adapter
 * still in its run. The eval file is tokenized once and reused by nights 2..4. */
Test(nightly, gate_publish_switch_and_keep, .init = setup, .fini = teardown, .timeout = 300) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char pub[400], run[400], prev[400], extra[3000], day[400], evf[400], *out;
    static const char *const animal[] = {"cat", "dog", "fox", "owl"};
    snprintf(pub, sizeof pub, "%s/serve", tmp);
    snprintf(evf, sizeof evf, "%s/eval.jsonl", tmp);
    write_jsonl(evf, 24, "bird", false);
    char names[8][128], cur[256], cur_before[256];
    for (int night = 1; night <= 4; night++) {
        snprintf(run, sizeof run, "%s/night%d", tmp, night);
        snprintf(day, sizeof day, "%s/day%d.jsonl", tmp, night);
        write_jsonl(day, 60, animal[night - 1], false);
        int n = snprintf(extra, sizeof extra, "--set output.publish=%s --set output.keep=2 "
                         "--set output.gate.metric=eval_loss --set output.exports=[gguf-adapter] "
                         "--set 'data.train=[%s]' --set 'data.eval=[%s]' "
                         "--set data.cache_dir=%s/cache", pub, day, evf, tmp);
        if (night > 1)
            n += snprintf(extra + n, sizeof extra - (size_t)n, " --set lora.init_from=%s/adapter",
                          prev);
        if (night == 4) /* demand a 90% drop of the eval loss: refused */
            snprintf(extra + n, sizeof extra - (size_t)n, " --set output.gate.min_improvement=0.9");
        if (night == 4) current_target(pub, cur_before, sizeof cur_before);
        int rc = train(run, extra, &out);
        cr_assert(strstr(out, night == 1 ? "data.eval[1]: tokenizing" : "data.eval[1]: 1 raw file "
                         "unchanged"), "night %d: eval cache: %s", night, out);
        cr_assert(strstr(out, "data.train[1]: tokenizing"), "night %d: new data: %s", night, out);
        json_t *m = manifest(run);
        json_t *g = json_object_get(m, "gate");
        cr_assert(json_is_object(g), "night %d: no gate in the manifest", night);
        double base = json_real_value(json_object_get(g, "baseline"));
        double cand = json_real_value(json_object_get(g, "candidate"));
        cr_log_info("night %d: gate baseline %.6f, candidate %.6f, %s (exit %d)", night, base,
                    cand, json_is_true(json_object_get(g, "passed")) ? "passed" : "refused", rc);
        if (night < 4) {
            cr_assert_eq(rc, 0, "night %d: exit %d\n%s", night, rc, out);
            cr_assert(json_is_true(json_object_get(g, "passed")));
            current_target(pub, cur, sizeof cur);
            const char *v = jstr(m, "published", "version");
            cr_assert(v && !strcmp(v, cur), "night %d: current -> %s, manifest says %s", night,
                      cur, v ? v : "(none)");
            /* the version holds the PEFT files at its root, the export and the manifest */
            const char *files[] = {"adapter_config.json", "adapter_model.safetensors",
                                   "exports/gguf-adapter/adapter.gguf", "manifest.json"};
            for (int i = 0; i < 4; i++) {
                char p[900];
                snprintf(p, sizeof p, "%s/current/%s", pub, files[i]);
                cr_assert(ts_exists(p), "night %d: missing %s", night, p);
            }
            /* night 1's baseline is the bare base; later ones start at the parent's last eval */
            if (night > 1) {
                double e[8];
                int k = eval_losses(prev, e, 8);
                cr_assert(fabs(base - e[k - 1]) < 1e-6, "night %d: baseline %.6f, parent ended "
                          "at %.6f", night, base, e[k - 1]);
            }
        } else {
            cr_assert_eq(rc, 4, "night 4: expected exit 4, got %d\n%s", rc, out);
            cr_assert(strstr(out, "gate refused"), "%s", out);
            cr_assert(!json_is_true(json_object_get(g, "passed")));
            current_target(pub, cur, sizeof cur);
            cr_assert_str_eq(cur, cur_before, "a refused adapter was published");
            char p[700];
            snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", run);
            cr_assert(ts_exists(p), "the refused adapter stays in its run");
        }
        json_decref(m);
        free(out);
        snprintf(prev, sizeof prev, "%s", run);
    }
    /* keep 2: nights 2 and 3 remain, night 1's version was removed; no temporary left */
    int n = versions(pub, names, 8);
    cr_assert_eq(n, 2, "%d versions kept (expected 2)", n);
    cr_assert_str_eq(names[1], cur);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep tmp)\"", pub);
    cr_assert_eq(system(cmd), 0, "temporary entries left in %s", pub);

    /* `lathe report` over the four nights: one self-contained page */
    char args[3000], html[600], *text;
    size_t len;
    snprintf(html, sizeof html, "%s/week.html", tmp);
    snprintf(args, sizeof args, "report %s/night1 %s/night2 %s/night3 %s/night4 --out %s", tmp,
             tmp, tmp, tmp, html);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    cr_assert_eq(lt_read_file(html, &text, &len), LT_OK);
    int svgs = 0;
    for (char *p = strstr(text, "<svg"); p; p = strstr(p + 1, "<svg")) svgs++;
    cr_assert_eq(svgs, 5, "%d charts (train loss, eval loss, lr, grad norm, tokens/s)", svgs);
    for (int night = 1; night <= 4; night++) {
        char name[16];
        snprintf(name, sizeof name, ">night%d<", night);
        cr_assert(strstr(text, name), "night %d missing from the report", night);
    }
    cr_assert(strstr(text, ">refused<") && strstr(text, ">passed<"), "gate decisions shown");
    cr_assert(!strstr(text, "<script") && !strstr(text, "http:") && !strstr(text, "https:") &&
              !strstr(text, "@import") && !strstr(text, "url("), "the page loads nothing");
    free(text);
    /* each run wrote its own report too */
    snprintf(html, sizeof html, "%s/night4/report.html", tmp);
    cr_assert(ts_exists(html), "%s missing", html);
    /* a directory that is not a run */
    snprintf(args, sizeof args, "report %s/cache --out %s/x.html", tmp, tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 3, "%s", out);
    cr_assert(strstr(out, "manifest.json"), "%s", out);
    free(out);
}

Test(nightly, unwritable_publish_fails_before_training, .init = setup, .fini = teardown,
     .timeout = 120) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char run[400], extra[1000], *out;
    snprintf(run, sizeof run, "%s/run", tmp);
    /* a path below a regular file cannot be created, even by root */
    snprintf(extra, sizeof extra, "--set output.publish=%s/data/train-00000.h5/serve", tmp);
    cr_assert_eq(train(run, extra, &out), 1, "%s", out);
    cr_assert(strstr(out, "output.publish"), "%s", out);
    cr_assert(!strstr(out, "step 1"), "it trained before failing:\n%s", out);
    cr_assert(!ts_exists(run), "a run directory was made");
    free(out);
}

Test(nightly, lock_stops_an_overlapping_run_and_a_dead_one_is_taken_over, .init = setup,
     .fini = teardown, .timeout = 120) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char cache[400], pub[400], run[400], extra[1000], *out;
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    setenv("XDG_CACHE_HOME", cache, 1); /* inherited by the lathe processes below */
    snprintf(pub, sizeof pub, "%s/serve", tmp);
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(extra, sizeof extra, "--set output.publish=%s", pub);

    /* another process holds the lock for this publish directory */
    int up[2], down[2]; /* holder -> test: "locked"; test -> holder: "exit now" */
    cr_assert_eq(pipe(up), 0);
    cr_assert_eq(pipe(down), 0);
    pid_t holder = fork();
    if (holder == 0) {
        int fd;
        if (lt_run_lock(pub, "holder.yaml", &fd) != LT_OK) _exit(1);
        char c;
        ssize_t w = write(up[1], "x", 1);
        ssize_t r = read(down[0], &c, 1);
        (void)w, (void)r;
        _exit(0); /* dies holding it: the kernel drops the flock, the file keeps the PID */
    }
    char c;
    cr_assert_eq(read(up[0], &c, 1), 1);
    cr_assert_eq(train(run, extra, &out), 2, "%s", out);
    cr_assert(strstr(out, "another lathe is training into") && strstr(out, "holder.yaml") == NULL,
              "%s", out);
    char pidtxt[32];
    snprintf(pidtxt, sizeof pidtxt, "pid %ld", (long)holder);
    cr_assert(strstr(out, pidtxt), "the message names the holder (%s): %s", pidtxt, out);
    free(out);
    cr_assert(!ts_exists(run), "the refused run made its directory");
    cr_assert_eq(write(down[1], "x", 1), 1);
    int ws;
    waitpid(holder, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* the holder is gone: the next run takes the lock over and says so */
    cr_assert_eq(train(run, extra, &out), 0, "%s", out);
    cr_assert(strstr(out, "taking over the run lock") && strstr(out, pidtxt), "%s", out);
    free(out);
}

/* write n alpaca records (record i mentions word w) to path as JSONL; `bad` adds a broken line */
static void write_jsonl(const char *path, int n, const char *w, bool bad) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    for (int i = 0; i < n; i++) {
        fprintf(fp, "{\"instruction\": \"Say %s number %d.\", \"output\": \"%s %d is here, "
                "once upon a time.\"}\n", w, i, w, i);
        if (bad && i == 3) fputs("{\"instruction\": \"unterminated\n", fp);
    }
    fclose(fp);
}

static int train_raw(const char *run, const char *train_file, const char *extra, char **out) {
    char args[8192];
    snprintf(args, sizeof args, "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=[%s]' --set 'data.eval=[%s]' --set data.cache_dir=%s/cache "
             "--set output.dir=%s --set train.max_steps=3 --set schedule.warmup_steps=1 "
             "--set train.save_every=0 "
             "--set train.eval_every=0 --set train.micro_batch_size=2 %s", model, train_file,
             train_file, tmp, run, extra);
    return ts_run(tmp, args, out);
}

/* Raw JSONL in the recipe: tokenized into the cache once, reused while the file, tokenizer and
 * options stay the same, tokenized again when one changes; malformed records per on_error. */
Test(nightly, raw_data_in_the_recipe_cache, .init = setup, .fini = teardown, .timeout = 200) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char f[400], run[400], *out;
    snprintf(f, sizeof f, "%s/day.jsonl", tmp);
    write_jsonl(f, 40, "cat", false);
    for (int k = 0; k < 2; k++) { /* the second run reuses */
        snprintf(run, sizeof run, "%s/r%d", tmp, k);
        cr_assert_eq(train_raw(run, f, "", &out), 0, "%s", out);
        cr_assert(strstr(out, k ? "reusing the shards" : "tokenizing 1 raw file"), "run %d: %s",
                  k, out);
        free(out);
    }
    json_t *m = manifest(run);
    json_t *tk = json_object_get(m, "tokenized");
    cr_assert_eq(json_array_size(tk), 2, "train and eval entries");
    json_t *in0 = json_array_get(json_object_get(json_array_get(tk, 0), "inputs"), 0);
    char sha[65];
    cr_assert_eq(lt_sha256_file(f, sha), LT_OK);
    cr_assert_str_eq(json_string_value(json_object_get(in0, "sha256")), sha);
    cr_assert(json_is_true(json_object_get(json_array_get(tk, 0), "reused")));
    json_decref(m);

    /* a changed file, then changed options: tokenized again */
    write_jsonl(f, 41, "cat", false);
    snprintf(run, sizeof run, "%s/r2", tmp);
    cr_assert_eq(train_raw(run, f, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "tokenizing 1 raw file"), "changed file reused: %s", out);
    free(out);
    snprintf(run, sizeof run, "%s/r3", tmp);
    cr_assert_eq(train_raw(run, f, "--set data.template=chatml", &out), 0, "%s", out);
    cr_assert(strstr(out, "tokenizing 1 raw file"), "changed template reused: %s", out);
    free(out);

    /* another tokenizer (SmolLM2's, when fetched): not the cached shards */
    char smol[1024];
    const char *s = getenv("LATHE_SMOLLM2_GGUF");
    snprintf(smol, sizeof smol, "%s", s ? s : "");
    if (!smol[0]) {
        const char *h = getenv("HOME");
        snprintf(smol, sizeof smol, "%s/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                 h ? h : "");
    }
    if (ts_exists(smol)) {
        char extra[1200];
        snprintf(run, sizeof run, "%s/r4", tmp);
        snprintf(extra, sizeof extra, "--set model.path=%s --set data.seq_len=64 "
                 "--set 'lora.target_modules=[q_proj]'", smol);
        cr_assert_eq(train_raw(run, f, extra, &out), 0, "%s", out);
        cr_assert(strstr(out, "tokenizing 1 raw file"), "another tokenizer reused: %s", out);
        free(out);
    } else {
        cr_log_warn("SmolLM2 GGUF not found at %s: the changed-tokenizer case is not run", smol);
    }

    /* data.eval_fraction: raw training records held out for evaluation, no data.eval */
    char args[8192];
    snprintf(run, sizeof run, "%s/r7", tmp);
    snprintf(args, sizeof args, "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=[%s]' --set 'data.eval=[]' --set data.eval_fraction=0.25 "
             "--set data.cache_dir=%s/cache --set output.dir=%s --set train.max_steps=3 "
             "--set schedule.warmup_steps=1 --set train.save_every=0 --set train.eval_every=0 "
             "--set train.micro_batch_size=2 --set output.gate.metric=eval_loss", model, f, tmp, run);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    cr_assert(strstr(out, "gate: eval loss"), "the held-out part was evaluated: %s", out);
    free(out);
    double e[8];
    cr_assert_geq(eval_losses(run, e, 8), 2, "step 0 and final evaluations");

    /* malformed records: skipped with file:line, or fatal with on_error fail */
    snprintf(f, sizeof f, "%s/bad.jsonl", tmp);
    write_jsonl(f, 30, "dog", true);
    snprintf(run, sizeof run, "%s/r5", tmp);
    cr_assert_eq(train_raw(run, f, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "bad.jsonl:5") && strstr(out, "1 malformed"), "%s", out);
    free(out);
    snprintf(run, sizeof run, "%s/r6", tmp);
    cr_assert_eq(train_raw(run, f, "--set data.on_error=fail", &out), 3, "%s", out);
    cr_assert(strstr(out, "bad.jsonl:5"), "%s", out);
    free(out);
}

/* data.train entries as mappings: per-entry raw-file options (each entry its own cache entry)
 * and weights (the log and the manifest record them; the run's recipe.yaml keeps them, so a
 * resume mixes as the run did); raw-file options on a shard entry are refused. */
static int train_mix(const char *run, const char *entries, const char *eval, const char *extra,
                     char **out) {
    char args[8192];
    snprintf(args, sizeof args, "train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=[%s]' --set 'data.eval=[%s]' --set data.cache_dir=%s/cache "
             "--set output.dir=%s --set train.max_steps=3 --set schedule.warmup_steps=1 "
             "--set train.save_every=0 --set train.eval_every=0 --set train.micro_batch_size=2 "
             "%s", model, entries, eval, tmp, run, extra);
    return ts_run(tmp, args, out);
}

Test(nightly, weighted_entries_with_their_own_options, .init = setup, .fini = teardown,
     .timeout = 200) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char a[400], b[400], run[400], entries[2000], *out;
    snprintf(a, sizeof a, "%s/a.jsonl", tmp);
    snprintf(b, sizeof b, "%s/b.jsonl", tmp);
    write_jsonl(a, 40, "cat", false);
    write_jsonl(b, 30, "dog", true);
    snprintf(run, sizeof run, "%s/mix", tmp);
    snprintf(entries, sizeof entries, "{path: %s, weight: 3, max_len: 200}, "
             "{path: %s, weight: 1, template: chatml, on_error: skip}", a, b);
    cr_assert_eq(train_mix(run, entries, a, "--set data.on_error=fail", &out), 0, "%s", out);
    /* b's own on_error: skip overrides data.on_error: fail */
    cr_assert(strstr(out, "b.jsonl:5") && strstr(out, "1 malformed"), "%s", out);
    cr_assert(strstr(out, "data.train[1]: weight 3, 75.0% of the documents drawn") &&
              strstr(out, "data.train[2]: weight 1, 25.0%"), "%s", out);
    free(out);
    json_t *m = manifest(run);
    json_t *tk = json_object_get(m, "tokenized");
    cr_assert_eq(json_array_size(tk), 3, "two train entries and one eval entry: %s",
                 json_dumps(tk, 0));
    json_t *t0 = json_array_get(tk, 0), *t1 = json_array_get(tk, 1);
    cr_assert_eq(json_real_value(json_object_get(t0, "weight")), 3.0);
    cr_assert_eq(json_real_value(json_object_get(t1, "weight")), 1.0);
    cr_assert_str_neq(json_string_value(json_object_get(t0, "cache")),
                      json_string_value(json_object_get(t1, "cache")));
    json_decref(m);
    char path[600], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/recipe.yaml", run);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    cr_assert(strstr(text, "weight: 3, max_len: 200}") &&
              strstr(text, "weight: 1, template: \"chatml\", on_error: skip}"),
              "the run's recipe keeps the entries:\n%s", text);
    free(text);

    /* another max_len for a is another cache entry; b's is reused */
    snprintf(run, sizeof run, "%s/mix2", tmp);
    snprintf(entries, sizeof entries, "{path: %s, weight: 3, max_len: 256}, "
             "{path: %s, weight: 1, template: chatml, on_error: skip}", a, b);
    cr_assert_eq(train_mix(run, entries, a, "", &out), 0, "%s", out);
    cr_assert(strstr(out, "data.train[1]: tokenizing 1 raw file") &&
              strstr(out, "data.train[2]: 1 raw file unchanged"), "%s", out);
    free(out);

    /* raw-file options on shards */
    snprintf(run, sizeof run, "%s/bad", tmp);
    snprintf(entries, sizeof entries, "{path: %s/x-*.h5, format: alpaca}", tmp);
    cr_assert_eq(train_mix(run, entries, a, "", &out), 2, "%s", out);
    cr_assert(strstr(out, "names shards") && strstr(out, "keep path and weight"), "%s", out);
    free(out);
}
