/* End-to-end training on real fixtures: recipes/ci-stories260k.yaml trains stories260K on the
 * identity dataset; eval loss must fall by >= 10%, the exported PEFT adapter must reload and
 * change the logits, and a run resumed from its middle checkpoint must end bit-identical. */
#include <math.h>
#include <signal.h>
#include <sys/stat.h>

#include "../support.h"
#include "core/device.h"
#include "model/model.h"

static char tmp[256], model[1024];

static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "train"); }
static void teardown(void) { ts_rmtree(tmp); }

/* First and last eval_loss in metrics.jsonl. */
static void eval_losses(const char *run, double *first, double *last) {
    char path[1024], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    *first = *last = NAN;
    for (char *p = strstr(text, "\"eval_loss\": "); p; p = strstr(p + 1, "\"eval_loss\": ")) {
        double v = strtod(p + 13, NULL);
        if (isnan(*first)) *first = v;
        *last = v;
    }
    free(text);
    cr_assert(!isnan(*first), "no eval_loss in %s", path);
}

static int train(const char *run, const char *extra, char **out) {
    char args[4096];
    snprintf(args, sizeof args,
             "train recipes/ci-stories260k.yaml --set model.path=%s --set 'data.train=%s/data/train-*.h5' "
             "--set 'data.eval=%s/data/eval-*.h5' --set output.dir=%s --set lora.dropout=0.1 %s",
             model, tmp, tmp, run, extra);
    return ts_run(tmp, args, out);
}

/* Max |logit difference| between the base and base + adapter on a fixed prompt. */
static float adapter_logit_change(const char *adapter_dir) {
    lt_gguf *g;
    lt_model *m;
    cr_assert_eq(lt_gguf_open(&g, model), LT_OK);
    cr_assert_eq(lt_model_load_gguf(&m, g), LT_OK);
    lt_gguf_close(g);
    int32_t tok[6] = {1, 403, 407, 261, 378, 365}, pos[6] = {0, 1, 2, 3, 4, 5}, doc[6] = {0};
    lt_arena a;
    lt_arena_init(&a, 0);
    lt_graph gr;
    lt_graph_init(&gr, &a);
    gr.record = false;
    lt_tensor *base = lt_model_forward(&gr, m, 1, 6, tok, pos, doc, 0);
    cr_assert_eq(lt_peft_load(m, adapter_dir), LT_OK, "%s", lt_error_message());
    lt_tensor *adapted = lt_model_forward(&gr, m, 1, 6, tok, pos, doc, 0);
    float maxd = 0;
    for (int64_t i = 0; i < lt_tensor_numel(base); i++) {
        float d = fabsf(lt_f32(base)[i] - lt_f32(adapted)[i]);
        cr_assert(isfinite(d));
        if (d > maxd) maxd = d;
    }
    lt_graph_free(&gr);
    lt_arena_free(&a);
    lt_model_free(m);
    return maxd;
}

Test(train, ci_recipe_learns_exports_and_resumes, .init = setup, .fini = teardown,
     .timeout = 300) {
    ts_tokenize_ci_data(tmp, model, sizeof model);

    char runA[512], runB[512], *out, cmd_eval[4096];
    snprintf(runA, sizeof runA, "%s/runA", tmp);
    int rc = train(runA, "", &out);
    cr_assert_eq(rc, 0, "train failed (exit %d):\n%s", rc, out);
    free(out);

    /* the model learned: eval loss fell by at least 10% */
    double first, last;
    eval_losses(runA, &first, &last);
    cr_log_info("stories260K CI recipe: eval loss %.4f -> %.4f", first, last);
    cr_assert(last <= 0.9 * first, "eval loss %.4f -> %.4f did not fall by 10%%", first, last);

    /* the run directory is complete */
    const char *files[] = {"recipe.yaml", "manifest.json", "metrics.jsonl",
                           "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                           "checkpoints/step-0000020/trainer_state.json",
                           "checkpoints/step-0000040/optimizer.safetensors"};
    char p[1024], q[1024];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", runA, files[i]);
        cr_assert(ts_exists(p), "missing %s", p);
    }

    /* the exported adapter reloads and changes the logits */
    snprintf(p, sizeof p, "%s/adapter", runA);
    float change = adapter_logit_change(p);
    cr_log_info("max |logit change| from the adapter: %g", change);
    cr_assert(change > 1e-2f, "adapter barely changes the logits (%g)", change);

    /* `lathe generate --adapter` loads the export: greedy text differs from the base model's */
    char *gen_base, *gen_tuned;
    snprintf(cmd_eval, sizeof cmd_eval, "generate --model %s --temperature 0 --max-tokens 24", model);
    cr_assert_eq(ts_run(tmp, cmd_eval, &gen_base), 0, "%s", gen_base);
    snprintf(cmd_eval, sizeof cmd_eval, "generate --model %s --adapter %s/adapter --temperature 0 "
             "--max-tokens 24", model, runA);
    cr_assert_eq(ts_run(tmp, cmd_eval, &gen_tuned), 0, "%s", gen_tuned);
    cr_assert_str_neq(gen_base, gen_tuned, "the adapter did not change the generated text");
    free(gen_base);
    free(gen_tuned);

    /* `lathe eval` with the exported adapter scores the eval shards as training's last eval did
     * (same forward, same fixed-order pass; the recipe's eval_batches=4 covers the whole set) */
    snprintf(cmd_eval, sizeof cmd_eval, "eval --model %s --adapter %s/adapter --data '%s/data/eval-*.h5' "
             "--seq-len 128 --batch 8", model, runA, tmp);
    rc = ts_run(tmp, cmd_eval, &out);
    cr_assert_eq(rc, 0, "eval failed: %s", out);
    char *el = strstr(out, "\"eval_loss\": ");
    cr_assert_not_null(el, "%s", out);
    double ev = strtod(el + 13, NULL);
    cr_assert(fabs(ev - last) < 1e-4, "lathe eval gives %.6f, training's last eval %.6f", ev, last);
    free(out);

    /* resume from the middle checkpoint: the end state must be bit-identical */
    snprintf(runB, sizeof runB, "%s/runB", tmp);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && rm -rf '%s/adapter' '%s/checkpoints/step-0000040'",
             runA, runB, runB, runB);
    cr_assert_eq(system(cmd), 0);
    rc = train(runB, "--resume", &out);
    cr_assert_eq(rc, 0, "resume failed (exit %d):\n%s", rc, out);
    cr_assert(strstr(out, "resumed from") != NULL, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", runA);
    snprintf(q, sizeof q, "%s/adapter/adapter_model.safetensors", runB);
    cr_assert(ts_same_file(p, q), "resumed run's adapter differs from the uninterrupted run's");

    /* a finished run directory is not overwritten by accident */
    rc = train(runA, "", &out);
    cr_assert_eq(rc, 2, "expected exit 2, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "already holds a run") != NULL, "%s", out);
    free(out);
}

/* seq_len beyond the model's context: exit 2 naming the key, and no adapter left behind. */
Test(train, seq_len_beyond_context, .init = setup, .fini = teardown) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char run[512], *out, p[600];
    snprintf(run, sizeof run, "%s/run", tmp);
    int rc = train(run, "--set data.seq_len=100000", &out);
    cr_assert_eq(rc, 2, "expected exit 2, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "data.seq_len") && strstr(out, "context length"), "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/adapter", run);
    cr_assert(!ts_exists(p), "a failed run left %s", p);
}

/* train.device: cuda where no GPU is usable is exit 2 naming the key and the driver's reason,
 * before any training; auto there trains on the CPU, exactly as cpu does. (On a GPU machine the
 * CUDA run is tools/gpu_check.sh's ci_recipe_cuda.) */
Test(train, device_choice_without_a_gpu, .init = setup, .fini = teardown, .timeout = 120) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    if (lt_cuda_device_count() > 0) cr_skip_test("a GPU is visible: gpu_check.sh covers cuda");
    char run[512], cpu[512], *out, p[600], q[600];
    snprintf(run, sizeof run, "%s/cuda", tmp);
    int rc = train(run, "--set train.device=cuda --set train.max_steps=3 --set schedule.warmup_steps=1", &out);
    cr_assert_eq(rc, 2, "expected exit 2, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "train.device") && strstr(out, "cuda") && strstr(out, "hint:"), "%s",
              out);
    free(out);
    snprintf(p, sizeof p, "%s/adapter", run);
    cr_assert(!ts_exists(p), "a refused run left %s", p);
    snprintf(run, sizeof run, "%s/auto", tmp);
    snprintf(cpu, sizeof cpu, "%s/cpu", tmp);
    cr_assert_eq(train(run, "--set train.device=auto --set train.max_steps=3 --set schedule.warmup_steps=1", &out), 0, "%s",
                 out);
    free(out);
    cr_assert_eq(train(cpu, "--set train.device=cpu --set train.max_steps=3 --set schedule.warmup_steps=1", &out), 0, "%s",
                 out);
    free(out);
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", run);
    snprintf(q, sizeof q, "%s/adapter/adapter_model.safetensors", cpu);
    cr_assert(ts_same_file(p, q), "auto without a GPU must train exactly as cpu");
}

/* SIGINT mid-run: a checkpoint is written, exit 130, no adapter presented as finished, the
 * manifest says "interrupted", and the run resumes from its own resolved recipe.yaml. */
Test(train, interrupt_checkpoints_and_resumes, .init = setup, .fini = teardown, .timeout = 120) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char run[512], cmd[8192], path[1024], *text;
    size_t n;
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(cmd, sizeof cmd,
             "(%s train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s --set train.max_steps=100000 --set train.save_every=0 "
             "> %s/log.txt 2>&1; echo $? > %s/rc.txt) &",
             ts_lathe_bin(), model, tmp, tmp, run, tmp, tmp);
    cr_assert_eq(system(cmd), 0);
    /* wait until a few steps are logged, then interrupt */
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    bool started = false;
    for (int i = 0; i < 600 && !started; i++) {
        usleep(50000);
        if (lt_read_file(path, &text, &n) == LT_OK) {
            started = strstr(text, "\"loss\"") != NULL;
            free(text);
        }
    }
    cr_assert(started, "training never logged a step");
    /* anchored at the binary so neither this shell nor the wrapper shell matches */
    snprintf(cmd, sizeof cmd, "pkill -INT -f '^%s train .*output.dir=%s '", ts_lathe_bin(), run);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/rc.txt", tmp);
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        usleep(50000);
        if (lt_read_file(path, &text, &n) == LT_OK) {
            done = n > 0;
            if (done) cr_assert_eq(atoi(text), 130, "exit code %s", text);
            free(text);
        }
    }
    cr_assert(done, "training did not stop after SIGINT");
    snprintf(path, sizeof path, "%s/log.txt", tmp);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    cr_assert(strstr(text, "interrupted at step") && strstr(text, "recipe.yaml --resume"), "%s",
              text);
    free(text);
    snprintf(path, sizeof path, "%s/adapter", run);
    cr_assert(!ts_exists(path), "an interrupted run left %s", path);
    snprintf(path, sizeof path, "%s/manifest.json", run);
    cr_assert_eq(lt_read_file(path, &text, &n), LT_OK);
    cr_assert(strstr(text, "\"interrupted\""), "%s", text);
    free(text);

    char *out;
    snprintf(cmd, sizeof cmd, "train %s/recipe.yaml --resume --set train.max_steps=60", run);
    int rc = ts_run(tmp, cmd, &out);
    cr_assert_eq(rc, 0, "resume failed (exit %d):\n%s", rc, out);
    cr_assert(strstr(out, "resumed from"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", run);
    cr_assert(ts_exists(path));
}

/* Replace every match of the extended regex `re` by `to` in each file matching the glob. */
static void sed_files(const char *glob_path, const char *re, const char *to) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sed -i -E 's/%s/%s/' %s", re, to, glob_path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Resume with damaged checkpoints (issue 9, finding 8): a newest checkpoint whose
 * trainer_state.json says step -3 is skipped with a warning naming it and the previous complete
 * one is used; a stale step-N.tmp.PID directory (a kill mid-write) is not counted by `lathe
 * inspect` and is removed by --resume; a step of 2^63-1 in every checkpoint is exit 3. */
Test(train, resume_validates_state_and_falls_back, .init = setup, .fini = teardown,
     .timeout = 180) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char run[512], p[1024], *out;
    snprintf(run, sizeof run, "%s/run", tmp);
    const char *opts = "--set train.max_steps=4 --set train.save_every=2 "
                       "--set schedule.warmup_steps=0 --set train.eval_every=0";
    int rc = train(run, opts, &out);
    cr_assert_eq(rc, 0, "train failed (exit %d):\n%s", rc, out);
    free(out);

    /* a stale temporary checkpoint of a process that is gone (no pid is above 2^22) */
    char stale[700];
    snprintf(stale, sizeof stale, "%s/checkpoints/step-0000006.tmp.99999999", run);
    cr_assert_eq(lt_mkdir_p(stale), LT_OK);
    snprintf(p, sizeof p, "inspect %s", run);
    cr_assert_eq(ts_run(tmp, p, &out), 0, "%s", out);
    cr_assert(strstr(out, "checkpoints 2:") && !strstr(out, "step-0000006"),
              "inspect counts only complete checkpoints:\n%s", out);
    free(out);

    snprintf(p, sizeof p, "%s/checkpoints/step-0000004/trainer_state.json", run);
    sed_files(p, "\"step\": 4,", "\"step\": -3,");
    char args[1024];
    snprintf(args, sizeof args, "%s --set train.max_steps=6 --resume", opts);
    rc = train(run, args, &out);
    cr_assert_eq(rc, 0, "resume failed (exit %d):\n%s", rc, out);
    cr_assert(strstr(out, "cannot resume from") && strstr(out, "step-0000004") &&
                  strstr(out, "'step' is -3"),
              "the damaged checkpoint is named:\n%s", out);
    cr_assert(strstr(out, "resumed from") && strstr(out, "step-0000002 at step 2"), "%s", out);
    free(out);
    cr_assert(!ts_exists(stale), "--resume left %s", stale);
    snprintf(p, sizeof p, "%s/checkpoints/step-0000006/trainer_state.json", run);
    cr_assert(ts_exists(p), "the resumed run did not finish: no %s", p);

    /* every checkpoint damaged: exit 3 naming the file and the field */
    snprintf(p, sizeof p, "%s/checkpoints/step-*/trainer_state.json", run);
    sed_files(p, "\"step\": [0-9]+,", "\"step\": 9223372036854775807,");
    rc = train(run, args, &out);
    cr_assert_eq(rc, 3, "expected exit 3, got %d:\n%s", rc, out);
    cr_assert(strstr(out, "trainer_state.json") && strstr(out, "'step' is 9223372036854775807"),
              "%s", out);
    free(out);
}

/* data.train naming a FIFO (issue 9, finding 5): exit 3 at once naming it, instead of blocking
 * for ever while the manifest hashes it. */
Test(train, fifo_shard_refused, .init = setup, .fini = teardown, .timeout = 60) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char fifo_dir[512], fifo[600], run[512], args[2048], *out;
    snprintf(fifo_dir, sizeof fifo_dir, "%s/data", tmp);
    cr_assert_eq(lt_mkdir_p(fifo_dir), LT_OK);
    snprintf(fifo, sizeof fifo, "%s/train-00000.h5", fifo_dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(args, sizeof args, "--set data.eval= --set train.eval_every=0");
    int rc = train(run, args, &out);
    cr_assert_eq(rc, 3, "expected exit 3, got %d:\n%s", rc, out);
    cr_assert(strstr(out, fifo) && strstr(out, "FIFO"), "%s", out);
    free(out);
}

/* SIGTERM while the base model loads (issue 9, finding 9): a clean exit 130 saying nothing was
 * trained, not death by the signal (143). SmolLM2 with NF4 quantization loads for seconds, so the
 * signal, sent once manifest.json exists (just before the load), lands inside the load. */
Test(train, signal_while_loading_exits_130, .init = setup, .fini = teardown, .timeout = 120) {
    ts_smollm2(model, sizeof model);
    char shard[600], run[512], log[600], manifest[700], cmd[8192];
    snprintf(shard, sizeof shard, "%s/train-00000.h5", tmp);
    cr_assert_eq(lt_write_file_atomic(shard, "x", 1), LT_OK); /* never opened: the load comes first */
    snprintf(run, sizeof run, "%s/run", tmp);
    snprintf(log, sizeof log, "%s/log.txt", tmp);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", run);
    snprintf(cmd, sizeof cmd,
             "exec %s train recipes/ci-stories260k.yaml --set model.path=%s --set data.train=%s "
             "--set data.eval= --set train.eval_every=0 --set quantization.type=nf4 "
             "--set output.dir=%s > %s 2>&1",
             ts_lathe_bin(), model, shard, run, log);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000 && !ts_exists(manifest); i++) usleep(5000);
    cr_assert(ts_exists(manifest), "the run never started");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char *text;
    size_t n;
    cr_assert_eq(lt_read_file(log, &text, &n), LT_OK);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 130,
              "expected exit 130, got %s %d:\n%s", WIFEXITED(status) ? "exit" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text);
    cr_assert(strstr(text, "interrupted while loading"), "%s", text);
    free(text);
}
