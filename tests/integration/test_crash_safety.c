/*
 * A run survives the two ways a machine ends it (issue 9 §4, §5), on the CI recipe shortened to
 * 12 steps with a checkpoint every 3:
 *  - kill -9 at 6 moments of a run's progress (loading and checkpoint writes included): `--resume`
 *    (or, killed before the first checkpoint, a fresh start) ends with an adapter byte-identical
 *    to an uninterrupted run's;
 *  - a full disk (a tmpfs of a few sizes mounted under the test directory; the test skips when it
 *    cannot mount) under `lathe train`, `lathe export` and `lathe tokenize`: exit 1 with the
 *    OS's reason, no crash, no temporary file or partial output under a final name, every shard
 *    and checkpoint left behind complete — the run copied to a roomy disk resumes to the same
 *    adapter.
 */
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <signal.h>

#include "../support.h"
#include "data/data.h"

static char tmp[256], model[1024], mnt[300];
static bool mounted;

static void setup(void) {
    ts_tmpdir(tmp, sizeof tmp, "crash");
    snprintf(mnt, sizeof mnt, "%s/mnt", tmp);
    mounted = false;
}
static void teardown(void) {
    if (mounted) umount2(mnt, MNT_DETACH);
    ts_rmtree(tmp);
}

/* A fresh tmpfs of `kib` KiB at mnt; skips the test when mounting is not allowed here. */
static void remount(int kib) {
    if (mounted) cr_assert_eq(umount2(mnt, MNT_DETACH), 0, "umount %s", mnt);
    mounted = false;
    mkdir(mnt, 0700);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%dk", kib);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0)
        cr_skip_test("cannot mount a tmpfs at %s (%s): the disk-full test needs root or "
                     "CAP_SYS_ADMIN", mnt, strerror(errno));
    mounted = true;
}

#define SHORT "--set train.max_steps=12 --set train.save_every=3 --set train.eval_every=6 " \
              "--set train.log_every=3"

/* `lathe train` of the shortened CI recipe into run_dir; `prefix` goes before the binary
 * (e.g. "timeout -s KILL 1.5"). Output in tmp/out.txt; returns the exit status, 128+signal when
 * killed. */
static int train(const char *run_dir, const char *prefix, const char *extra, char **out) {
    char cmd[8192], log[512];
    snprintf(log, sizeof log, "%s/out.txt", tmp);
    snprintf(cmd, sizeof cmd, "%s %s train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s " SHORT " %s > '%s' 2>&1 < /dev/null", prefix, ts_lathe_bin(),
             model, tmp, tmp, run_dir, extra, log);
    int rc = system(cmd);
    if (out) {
        size_t n;
        cr_assert_eq(lt_read_file(log, out, &n), LT_OK);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

/* Nothing under dir is named like a temporary file ("*.tmp.*"). */
static void expect_no_tmp(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '*.tmp.*' 2>/dev/null)\"", dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "find '%s' -name '*.tmp.*' >&2", dir);
        cr_assert_eq(system(cmd), 0);
        cr_assert_fail("temporary files left under %s (listed above)", dir);
    }
}

/* Finish the interrupted run `run` (resume, or start afresh when it never reached a
 * checkpoint) and compare its adapter with the reference run's. */
static void finish_and_compare(const char *run, const char *ref, const char *what) {
    char *out, p[700], q[700];
    int rc = train(run, "", "--resume", &out);
    if (rc == 2 && strstr(out, "holds no checkpoint")) {
        free(out);
        ts_rmtree(run);
        rc = train(run, "", "", &out);
    }
    cr_assert_eq(rc, 0, "%s: finishing the run failed (exit %d):\n%s", what, rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", run);
    snprintf(q, sizeof q, "%s/adapter/adapter_model.safetensors", ref);
    cr_assert(ts_same_file(p, q), "%s: the adapter differs from the uninterrupted run's", what);
}

/* Lines in run/metrics.jsonl (-1 while it does not exist). */
static int metric_lines(const char *run) {
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    int n = 0, c;
    while ((c = fgetc(fp)) != EOF) n += c == '\n';
    fclose(fp);
    return n;
}

/* `lathe train` of the shortened recipe into run, killed with SIGKILL `delay_ms` after its
 * metrics.jsonl first holds `lines` lines (-1: after the process started). Progress, not wall
 * time, picks the moment, so a slow machine (or a sanitizer build) kills at the same places.
 * Returns the exit status, 128 + 9 when the kill came first. */
static int train_kill_at(const char *run, int lines, int delay_ms) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s " SHORT " > '%s/kill.log' 2>&1 < /dev/null", ts_lathe_bin(),
             model, tmp, tmp, run, tmp);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int ws;
    for (;;) {
        if (waitpid(pid, &ws, WNOHANG) == pid) return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (metric_lines(run) >= lines) break;
        usleep(2000);
    }
    usleep((useconds_t)delay_ms * 1000);
    kill(pid, SIGKILL);
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

Test(crash, kill_9_at_six_moments_resumes_identically, .init = setup, .fini = teardown,
     .timeout = 400) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char ref[400], run[400], *out;
    snprintf(ref, sizeof ref, "%s/ref", tmp);
    cr_assert_eq(train(ref, "", "", &out), 0, "%s", out);
    free(out);
    /* metrics.jsonl of the shortened run: eval@0, step 3, step 6, eval@6, step 9, step 12,
     * eval@12; checkpoints follow steps 3, 6 and 9 at once, the final one and the export follow
     * eval@12. The moments: model loading; steps 1-3; the step-3 checkpoint; the step-6
     * checkpoint; steps 10-12; the final checkpoint / export. */
    static const struct { int lines, delay_ms; } at[6] = {{-1, 30}, {1, 0}, {2, 0},
                                                          {4, 0},  {5, 15}, {7, 0}};
    int killed = 0;
    for (int k = 0; k < 6; k++) {
        char what[128];
        snprintf(run, sizeof run, "%s/kill%d", tmp, k);
        int rc = train_kill_at(run, at[k].lines, at[k].delay_ms);
        killed += rc == 128 + SIGKILL;
        snprintf(what, sizeof what, "kill -9 %d ms after metrics line %d (exit %d)",
                 at[k].delay_ms, at[k].lines, rc);
        cr_log_info("%s", what);
        finish_and_compare(run, ref, what);
        expect_no_tmp(run);
        ts_rmtree(run);
    }
    cr_assert_geq(killed, 5, "only %d of 6 runs were killed before they finished", killed);
}

Test(crash, disk_full_at_every_writer, .init = setup, .fini = teardown, .timeout = 400) {
    ts_tokenize_ci_data(tmp, model, sizeof model);
    char ref[400], run[400], copy[400], cmd[4096], *out;
    snprintf(ref, sizeof ref, "%s/ref", tmp);
    cr_assert_eq(train(ref, "", "", &out), 0, "%s", out);
    free(out);
    remount(64); /* skip early when mounting is not possible */

    /* training: the run directory is ~600 KiB (4 checkpoints); fill it at the start, during
     * the first checkpoints, mid-run and at the end (export of the final adapter) */
    const int train_kib[] = {8, 120, 300, 520};
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        remount(train_kib[i]);
        snprintf(run, sizeof run, "%s/run", mnt);
        int rc = train(run, "", "", &out);
        char what[96];
        snprintf(what, sizeof what, "train on a %d KiB disk", train_kib[i]);
        cr_assert(rc == 0 || rc == 1, "%s: exit %d (expected 1):\n%s", what, rc, out);
        if (rc == 1) {
            failed++;
            cr_assert(strstr(out, "No space left on device"), "%s: %s", what, out);
            const char *last = strstr(out, "lathe: ");
            cr_log_info("%s: %.160s", what, last ? last : out);
        }
        free(out);
        expect_no_tmp(mnt);
        if (!ts_exists(run)) continue; /* nothing could be written at all */
        snprintf(copy, sizeof copy, "%s/copy%d", tmp, i);
        snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", run, copy);
        cr_assert_eq(system(cmd), 0);
        finish_and_compare(copy, ref, what);
        ts_rmtree(copy);
    }
    cr_assert_geq(failed, 3, "only %d of 4 disk sizes made training fail", failed);

    /* export: nothing partial under the output name */
    const char *formats[] = {"peft", "gguf-adapter", "merged-gguf"};
    for (int i = 0; i < 3; i++) {
        remount(i == 2 ? 256 : 16);
        char dest[400];
        snprintf(dest, sizeof dest, "%s/export", mnt);
        snprintf(cmd, sizeof cmd, "export %s --format %s --out %s", ref, formats[i], dest);
        int rc = ts_run(tmp, cmd, &out);
        cr_assert_eq(rc, 1, "export %s on a full disk: exit %d\n%s", formats[i], rc, out);
        cr_assert(strstr(out, "No space left on device"), "%s", out);
        cr_assert(!ts_exists(dest), "a partial export %s was left", dest);
        expect_no_tmp(mnt);
        free(out);
    }

    /* tokenize: the shards left behind are whole (checksum verified) */
    remount(48);
    char c4[1024];
    ts_fixture(c4, sizeof c4, "data/c4_demo.jsonl");
    snprintf(cmd, sizeof cmd, "tokenize --model %s --input %s --output %s/shards "
             "--shard-tokens 4000", model, c4, mnt);
    cr_assert_eq(ts_run(tmp, cmd, &out), 1, "%s", out);
    cr_assert(strstr(out, "No space left on device"), "%s", out);
    free(out);
    expect_no_tmp(mnt);
    char pat[400];
    snprintf(pat, sizeof pat, "%s/shards/train-*.h5", mnt);
    const char *pats[1] = {pat};
    char **paths;
    size_t n;
    cr_assert_eq(lt_shard_glob(&paths, &n, pats, 1), LT_OK, "no shard at all was written");
    for (size_t i = 0; i < n; i++) {
        char side[520];
        snprintf(side, sizeof side, "%s.sha256", paths[i]);
        cr_assert(ts_exists(side), "%s has no checksum", paths[i]);
        lt_shard *s;
        cr_assert_eq(lt_shard_open(&s, paths[i], NULL), LT_OK, "%s", lt_error_message());
        lt_shard_close(s);
    }
    lt_paths_free(paths, n);
}
