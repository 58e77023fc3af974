/*
 * Data-parallel training over MPI (src/dist/), with CPU ranks started by OpenMPI's mpirun on the
 * CI recipe (stories260K), shortened and with LoRA dropout on so that the dropout seeds of the
 * global micro-batches are exercised too:
 *  - 2 ranks x grad_accum 1 end with the adapter of 1 rank x grad_accum 2 byte for byte (each
 *    micro-batch's gradient is made whole, then a two-term sum, exact in either order), and with
 *    the same checkpoints and logged losses; only rank 0 writes the run directory and the
 *    manifest names the world size;
 *  - 3 ranks x 1 against 1 x 3 within TOL_3_RANKS (a three-term sum in MPI's order);
 *  - one rank SIGKILLed mid-run ends the job non-zero (before a 10 s watchdog), naming the rank;
 *    --resume with 2 ranks then ends with the adapter of an uninterrupted 2-rank run;
 *  - a bad shard seen by one rank only (an MPMD launch gives rank 1 a damaged copy) ends the job
 *    with exit 3 and a message naming the rank and the file;
 *  - SIGTERM to every rank (what Slurm sends at the time limit) checkpoints once and exits 130;
 *    a resume with another world size is then refused, saying why.
 * Every run: OMP_NUM_THREADS=1 and train.threads=1 per rank (2-3 ranks share 2 cores),
 * --oversubscribe, and OpenMPI's run-as-root consent when the tests run as root. Skips, saying
 * so, when mpirun is not installed or lathe was built without MPI.
 */
#include <math.h>
#include <signal.h>
#include <time.h>

#include "../support.h"
#include "io/io.h"

static char tmp[256], model[1024];

static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "dist"); }
static void teardown(void) { ts_rmtree(tmp); }

/* Relative tolerance of 3 ranks against 1 rank x 3, on the largest |parameter|: the only
 * difference is the order of each step's three-term gradient sum (MPI's reduction order against
 * the sequential one), i.e. at most an ulp or two per gradient element per step; AdamW's update
 * lr·m/(sqrt(v)+eps) scales a relative gradient change of ~1e-7 into a parameter change of about
 * lr·1e-7 per step, which later steps carry forward. Measured over the 10 steps below: 3.4e-7
 * (4.5e-8 absolute on a largest |parameter| of 0.13). 1e-5 leaves a 30x margin, and a wrong split
 * of the data (other documents per step) moves parameters by ~1e-2. */
#define TOL_3_RANKS 1e-5

#define SHORT "--set train.max_steps=10 --set train.save_every=5 --set train.eval_every=5 " \
              "--set train.log_every=5 --set train.micro_batch_size=4 --set train.threads=1 " \
              "--set lora.dropout=0.1"

static const char *mpirun_or_skip(void) {
    if (system("command -v mpirun > /dev/null 2>&1") != 0)
        cr_skip_test("mpirun not found: the distributed tests need OpenMPI (make deps installs "
                     "openmpi-bin)");
    /* OpenMPI refuses root without both; 3 ranks on 2 cores need --oversubscribe */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    /* Under `make test SANITIZE=1` the ranks keep AddressSanitizer and UBSan but not the leak
     * check: OpenMPI's plugins (dlopen'ed mca_*.so, closed again at MPI_Finalize) leave
     * allocations that LeakSanitizer can only attribute to "<unknown module>", so no suppression
     * can name them. The single-rank runs of these tests keep the leak check. */
    static char launcher[1024];
    const char *lsan = getenv("LSAN_OPTIONS");
    snprintf(launcher, sizeof launcher, "env 'LSAN_OPTIONS=%s%sdetect_leaks=0' mpirun "
             "--oversubscribe", lsan ? lsan : "", lsan && *lsan ? ":" : "");
    return launcher;
}

/* The command line of `lathe train` on the CI recipe into run (np = 0: no launcher). */
static void train_cmd(char *cmd, size_t cap, int np, const char *run, const char *extra) {
    char pre[1200] = "";
    if (np > 0) snprintf(pre, sizeof pre, "%s -np %d ", mpirun_or_skip(), np);
    snprintf(cmd, cap, "%s%s train recipes/ci-stories260k.yaml --set model.path=%s "
             "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
             "--set output.dir=%s " SHORT " %s", pre, ts_lathe_bin(), model, tmp, tmp, run,
             extra);
}

/* Run a command with output in log; exit status (128 + signal when killed). */
static int sh(const char *cmd, const char *log, char **out) {
    char full[24576];
    snprintf(full, sizeof full, "%s > '%s' 2>&1 < /dev/null", cmd, log);
    int rc = system(full);
    if (out) {
        size_t n;
        cr_assert_eq(lt_read_file(log, out, &n), LT_OK);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : WIFSIGNALED(rc) ? 128 + WTERMSIG(rc) : -1;
}

static int train(int np, const char *run, const char *extra, char **out) {
    char cmd[8192], log[600];
    train_cmd(cmd, sizeof cmd, np, run, extra);
    snprintf(log, sizeof log, "%s.log", run);
    return sh(cmd, log, out);
}

/* The tokenized CI data; a skip when there is no MPI (the tests are built with lathe's flags). */
static void prepare(void) {
#ifndef LATHE_MPI
    cr_skip_test("lathe was built without MPI (LATHE_MPI=0: libopenmpi-dev missing, or a static "
                 "bundle build)");
#endif
    mpirun_or_skip();
    ts_tokenize_ci_data(tmp, model, sizeof model);
}

static void path_of(char *buf, size_t cap, const char *run, const char *rel) {
    snprintf(buf, cap, "%s/%s", run, rel);
}

static void assert_same(const char *a_run, const char *b_run, const char *rel) {
    char a[1024], b[1024];
    path_of(a, sizeof a, a_run, rel);
    path_of(b, sizeof b, b_run, rel);
    cr_assert(ts_exists(a) && ts_exists(b), "missing %s or %s", a, b);
    cr_assert(ts_same_file(a, b), "%s and %s differ", a, b);
}

/* metrics.jsonl without its tokens_per_s values (the only field that may differ). */
static char *metrics_sans_speed(const char *run) {
    char p[1024], *text;
    size_t n;
    path_of(p, sizeof p, run, "metrics.jsonl");
    cr_assert_eq(lt_read_file(p, &text, &n), LT_OK);
    char *w = text;
    for (const char *q = text; *q;) {
        if (!strncmp(q, "\"tokens_per_s\": ", 16)) {
            q += 16;
            while (*q && *q != ',') q++; /* the value is dropped, its key kept */
            continue;
        }
        *w++ = *q++;
    }
    *w = 0;
    return text;
}

/* The names in dir, sorted, one per line (the run directory's inventory). */
static char *listing(const char *dir) {
    char cmd[1200], log[600], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && find . | LC_ALL=C sort", dir);
    snprintf(log, sizeof log, "%s/listing.txt", tmp);
    cr_assert_eq(sh(cmd, log, &out), 0);
    return out;
}

Test(dist, two_ranks_equal_one_rank_accum2, .init = setup, .fini = teardown, .timeout = 240) {
    prepare();
    char one[512], two[512], *out;
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(two, sizeof two, "%s/two", tmp);
    int rc = train(0, one, "--set train.grad_accum=2", &out);
    cr_assert_eq(rc, 0, "1 rank x 2 failed (exit %d):\n%s", rc, out);
    free(out);
    rc = train(2, two, "--set train.grad_accum=1", &out);
    cr_assert_eq(rc, 0, "2 ranks x 1 failed (exit %d):\n%s", rc, out);
    cr_assert_not_null(strstr(out, "data-parallel: 2 ranks x grad_accum 1 x micro_batch_size 4 "
                                   "= global batch of 8 sequences, 1024 tokens per step"),
                       "no global batch line:\n%s", out);
    free(out);

    assert_same(one, two, "adapter/adapter_model.safetensors");
    assert_same(one, two, "checkpoints/step-0000005/adapter_model.safetensors");
    assert_same(one, two, "checkpoints/step-0000005/optimizer.safetensors");
    char *m1 = metrics_sans_speed(one), *m2 = metrics_sans_speed(two);
    cr_assert_str_eq(m1, m2, "losses differ:\n%s\n---\n%s", m1, m2);
    free(m1);
    free(m2);

    /* one writer: the same inventory as the single-rank run (no second metrics stream, no
     * temporary file of another process), and the manifest names the world size */
    char *l1 = listing(one), *l2 = listing(two);
    cr_assert_str_eq(l1, l2, "run directories differ:\n%s\n---\n%s", l1, l2);
    free(l1);
    free(l2);
    char p[1024], *man;
    size_t n;
    path_of(p, sizeof p, two, "manifest.json");
    cr_assert_eq(lt_read_file(p, &man, &n), LT_OK);
    cr_assert_not_null(strstr(man, "\"world_size\": 2"), "%s", man);
    cr_assert_not_null(strstr(man, "\"status\": \"completed\""), "%s", man);
    free(man);
    path_of(p, sizeof p, one, "manifest.json");
    cr_assert_eq(lt_read_file(p, &man, &n), LT_OK);
    cr_assert_not_null(strstr(man, "\"world_size\": 1"), "%s", man);
    free(man);
    path_of(p, sizeof p, two, "checkpoints/step-0000010/trainer_state.json");
    cr_assert_eq(lt_read_file(p, &man, &n), LT_OK);
    cr_assert_not_null(strstr(man, "\"world_size\": 2"), "%s", man);
    free(man);
}

/* Largest |a - b| over the F32 tensors of two PEFT adapter files, and the largest |a|. */
static void adapter_diff(const char *a_path, const char *b_path, double *maxdiff, double *maxabs) {
    lt_safetensors *a, *b;
    cr_assert_eq(lt_safetensors_open(&a, a_path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(lt_safetensors_open(&b, b_path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(a->n_tensors, b->n_tensors);
    *maxdiff = *maxabs = 0;
    for (int i = 0; i < a->n_tensors; i++) {
        const lt_st_tensor *ta = &a->tensors[i];
        const lt_st_tensor *tb = lt_safetensors_find(b, ta->name);
        cr_assert_not_null(tb, "%s lacks %s", b_path, ta->name);
        cr_assert(ta->dtype == LT_F32 && tb->dtype == LT_F32 && ta->nbytes == tb->nbytes);
        const float *x = (const float *)ta->data, *y = (const float *)tb->data;
        for (size_t k = 0; k < ta->nbytes / 4; k++) {
            cr_assert(isfinite(x[k]) && isfinite(y[k]));
            double d = fabs((double)x[k] - y[k]);
            if (d > *maxdiff) *maxdiff = d;
            if (fabs(x[k]) > *maxabs) *maxabs = fabs(x[k]);
        }
    }
    lt_safetensors_close(a);
    lt_safetensors_close(b);
}

Test(dist, three_ranks_match_one_rank_accum3, .init = setup, .fini = teardown, .timeout = 240) {
    prepare();
    char one[512], three[512], *out, a[1024], b[1024];
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(three, sizeof three, "%s/three", tmp);
    int rc = train(0, one, "--set train.grad_accum=3", &out);
    cr_assert_eq(rc, 0, "1 rank x 3 failed (exit %d):\n%s", rc, out);
    free(out);
    rc = train(3, three, "--set train.grad_accum=1", &out);
    cr_assert_eq(rc, 0, "3 ranks x 1 failed (exit %d):\n%s", rc, out);
    free(out);
    path_of(a, sizeof a, one, "adapter/adapter_model.safetensors");
    path_of(b, sizeof b, three, "adapter/adapter_model.safetensors");
    double d, mx;
    adapter_diff(a, b, &d, &mx);
    cr_log_info("3 ranks vs 1 rank x 3: max |diff| %.3g, max |param| %.3g, relative %.3g", d, mx,
                d / mx);
    cr_assert(mx > 0.01, "the adapter barely trained (max |param| %g)", mx);
    cr_assert(d <= TOL_3_RANKS * mx, "3 ranks differ from 1 rank x 3 by %g (> %g x %g)", d,
              TOL_3_RANKS, mx);
}

/* Start a command in the background; its pid (the launcher's: sh execs it). */
static pid_t spawn(const char *cmd, const char *log) {
    char full[24576];
    snprintf(full, sizeof full, "exec %s > '%s' 2>&1 < /dev/null", cmd, log);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Wait until run/metrics.jsonl has a line for `step`, or the launcher exited (fails then). */
static void wait_step(pid_t launcher, const char *run, int step) {
    char p[1024], want[64];
    path_of(p, sizeof p, run, "metrics.jsonl");
    snprintf(want, sizeof want, "{\"step\": %d, \"loss\"", step);
    for (;;) {
        char *text;
        size_t n;
        if (lt_read_file(p, &text, &n) == LT_OK) {
            bool found = strstr(text, want) != NULL;
            free(text);
            if (found) return;
        }
        int status;
        cr_assert_eq(waitpid(launcher, &status, WNOHANG), 0, "the job ended before step %d",
                     step);
        usleep(20000);
    }
}

/* A /proc file (its size reads as 0, so lt_read_file does not fit): malloc'ed, NUL-terminated
 * after *n bytes; NULL when it cannot be opened. */
static char *read_proc(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap + 1);
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[len] = 0;
    *n = len;
    return buf;
}

/* The pids of the launcher's children (the ranks, with a local mpirun), at most cap, in rank
 * order (OMPI_COMM_WORLD_RANK in each one's environment). */
static int ranks_of(pid_t launcher, pid_t *pids, int cap) {
    char p[128], *text;
    size_t n;
    snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)launcher, (int)launcher);
    if (!(text = read_proc(p, &n)))
        cr_skip_test("cannot read %s: the kernel lacks CONFIG_PROC_CHILDREN", p);
    int k = 0;
    for (char *q = text; k < cap && *q;) {
        char *end;
        long v = strtol(q, &end, 10);
        if (end == q) break;
        q = end;
        char env[128], *e;
        size_t en;
        snprintf(env, sizeof env, "/proc/%ld/environ", v);
        if (!(e = read_proc(env, &en))) continue;
        long rank = -1;
        for (size_t i = 0; i < en; i += strlen(e + i) + 1)
            if (!strncmp(e + i, "OMPI_COMM_WORLD_RANK=", 21)) rank = strtol(e + i + 21, NULL, 10);
        free(e);
        if (rank >= 0 && rank < cap) {
            pids[rank] = (pid_t)v;
            k++;
        }
    }
    free(text);
    return k;
}

/* Wait for the launcher; a watchdog of `limit` seconds turns a hang into a failure (this is a
 * bound on "no rank left hanging", not a speed measurement). Exit status as sh() gives it. */
static int wait_bounded(pid_t pid, double limit) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) > limit) {
            kill(-pid, SIGKILL); /* the launcher's process group: ours, started by spawn */
            waitpid(pid, &status, 0);
            cr_assert_fail("the job did not end within %.0f s: a rank hangs", limit);
        }
        usleep(20000);
    }
}

Test(dist, killed_rank_ends_job_and_resume_matches, .init = setup, .fini = teardown,
     .timeout = 240) {
    prepare();
    char full[512], run[512], cmd[8192], log[600], *out;
    snprintf(full, sizeof full, "%s/full", tmp);
    snprintf(run, sizeof run, "%s/killed", tmp);
    int rc = train(2, full, "--set train.max_steps=15", &out);
    cr_assert_eq(rc, 0, "uninterrupted 2-rank run failed (exit %d):\n%s", rc, out);
    free(out);

    /* SIGKILL rank 1 after step 10 (step 5's checkpoint is complete before step 6 starts): the
     * job ends non-zero and the launcher names the rank */
    train_cmd(cmd, sizeof cmd, 2, run, "--set train.max_steps=15");
    snprintf(log, sizeof log, "%s.log", run);
    pid_t job = spawn(cmd, log);
    wait_step(job, run, 10);
    pid_t ranks[4];
    int nr = ranks_of(job, ranks, 4);
    cr_assert_eq(nr, 2, "expected 2 rank processes under mpirun, found %d", nr);
    kill(ranks[1], SIGKILL);
    rc = wait_bounded(job, 10.0);
    size_t n;
    cr_assert_eq(lt_read_file(log, &out, &n), LT_OK);
    cr_assert_neq(rc, 0, "the job exited 0 after a rank was killed:\n%s", out);
    cr_assert(strstr(out, "rank 1") != NULL, "no message names rank 1:\n%s", out);
    free(out);
    char ck[1024];
    path_of(ck, sizeof ck, run, "checkpoints/step-0000005/trainer_state.json");
    cr_assert(ts_exists(ck), "the checkpoint of step 5 did not survive");

    /* resumed with 2 ranks: the adapter of the uninterrupted run */
    snprintf(cmd, sizeof cmd, "%s -np 2 %s train %s/recipe.yaml --resume", mpirun_or_skip(),
             ts_lathe_bin(), run);
    rc = sh(cmd, log, &out);
    cr_assert_eq(rc, 0, "resume with 2 ranks failed (exit %d):\n%s", rc, out);
    free(out);
    assert_same(full, run, "adapter/adapter_model.safetensors");
}

Test(dist, sigterm_checkpoints_and_exits_130, .init = setup, .fini = teardown, .timeout = 240) {
    prepare();
    char run[512], cmd[8192], log[600], *out;
    snprintf(run, sizeof run, "%s/term", tmp);
    /* long enough that the signal lands mid-run */
    train_cmd(cmd, sizeof cmd, 2, run, "--set train.max_steps=200 --set train.save_every=0");
    snprintf(log, sizeof log, "%s.log", run);
    pid_t job = spawn(cmd, log);
    wait_step(job, run, 5);
    pid_t ranks[4];
    int nr = ranks_of(job, ranks, 4);
    cr_assert_eq(nr, 2, "expected 2 rank processes under mpirun, found %d", nr);
    /* as Slurm at the time limit: every task gets SIGTERM (here a moment apart) */
    kill(ranks[1], SIGTERM);
    usleep(50000);
    kill(ranks[0], SIGTERM);
    int rc = wait_bounded(job, 60.0);
    size_t n;
    cr_assert_eq(lt_read_file(log, &out, &n), LT_OK);
    cr_assert_eq(rc, 130, "exit %d, want 130:\n%s", rc, out);
    cr_assert(strstr(out, "interrupted at step"), "%s", out);
    free(out);
    /* one checkpoint, at the step where every rank stopped, and the manifest says so */
    char cmd2[1200], *ls;
    snprintf(cmd2, sizeof cmd2, "ls '%s/checkpoints'", run);
    cr_assert_eq(sh(cmd2, log, &ls), 0);
    int count = 0;
    for (char *q = strstr(ls, "step-"); q; q = strstr(q + 1, "step-")) count++;
    cr_assert_eq(count, 1, "expected one checkpoint:\n%s", ls);
    free(ls);
    char p[1024], *man;
    path_of(p, sizeof p, run, "manifest.json");
    cr_assert_eq(lt_read_file(p, &man, &n), LT_OK);
    cr_assert_not_null(strstr(man, "\"status\": \"interrupted\""), "%s", man);
    free(man);

    /* a resume with another world size (here a plain single-rank run) is refused, saying why */
    snprintf(cmd, sizeof cmd, "%s train %s/recipe.yaml --resume", ts_lathe_bin(), run);
    rc = sh(cmd, log, &out);
    cr_assert_eq(rc, 2, "resume with 1 rank: exit %d, want 2:\n%s", rc, out);
    cr_assert(strstr(out, "written by a job of 2 ranks but this job has 1") &&
              strstr(out, "data cursor"), "no reason given:\n%s", out);
    free(out);
}

Test(dist, bad_shard_on_one_rank_ends_job_naming_it, .init = setup, .fini = teardown,
     .timeout = 120) {
    prepare();
    /* rank 1's data.train: a copy of the shard with one byte changed (its checksum sidecar then
     * disagrees), as a node with a damaged copy would have */
    char bad[512], cmd[20000], a[8192], b[8192], log[600], *out; /* cmd: a, b and mpirun */
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp %s/data/train-00000.h5* '%s/'", bad, tmp,
             bad);
    snprintf(log, sizeof log, "%s/cp.log", tmp);
    cr_assert_eq(sh(cmd, log, NULL), 0);
    char shard[600];
    snprintf(shard, sizeof shard, "%s/train-00000.h5", bad);
    FILE *f = fopen(shard, "r+b");
    cr_assert_not_null(f, "%s", shard);
    cr_assert_eq(fseek(f, 4000, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_eq(fseek(f, 4000, SEEK_SET), 0);
    fputc(c ^ 0x55, f);
    cr_assert_eq(fclose(f), 0);
    char run[512], extra[700];
    snprintf(run, sizeof run, "%s/run", tmp);
    train_cmd(a, sizeof a, 0, run, "");
    snprintf(extra, sizeof extra, "--set 'data.train=%s/train-*.h5'", bad);
    train_cmd(b, sizeof b, 0, run, extra);
    snprintf(cmd, sizeof cmd, "%s -np 1 %s : -np 1 %s", mpirun_or_skip(), a, b);
    snprintf(log, sizeof log, "%s.log", run);
    pid_t job = spawn(cmd, log);
    int rc = wait_bounded(job, 60.0);
    size_t n;
    cr_assert_eq(lt_read_file(log, &out, &n), LT_OK);
    cr_assert_eq(rc, 3, "exit %d, want 3 (bad data):\n%s", rc, out);
    cr_assert(strstr(out, "rank 1 of 2") && strstr(out, "train-00000.h5"),
              "no message naming rank 1 and the shard:\n%s", out);
    free(out);
}
