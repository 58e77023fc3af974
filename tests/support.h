/* Shared helpers for Criterion tests: a per-test temporary directory, fixture lookup through
 * LATHE_FIXTURES (skipping with a clear line when absent) and running the CLI (LATHE_BIN). */
#ifndef LATHE_TESTS_SUPPORT_H
#define LATHE_TESTS_SUPPORT_H

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

/* mkdtemp under /tmp; returns the path in buf. */
static inline void ts_tmpdir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/lathe_test_%s_XXXXXX", tag);
    cr_assert_not_null(mkdtemp(buf));
}

static inline void ts_rmtree(const char *dir) { lt_remove_tree(dir); }

/* $LATHE_FIXTURES/rel into buf as an absolute path (tests hand it to recipes in other
 * directories), or skip the test naming what is missing. */
static inline void ts_fixture(char *buf, size_t cap, const char *rel) {
    const char *f = getenv("LATHE_FIXTURES");
    char rel_path[4096], abs_path[PATH_MAX];
    snprintf(rel_path, sizeof rel_path, "%s/%s", f ? f : "../shared/fixtures", rel);
    if (access(rel_path, R_OK) != 0 || !realpath(rel_path, abs_path) || strlen(abs_path) >= cap)
        cr_skip_test("fixture %s not found (set LATHE_FIXTURES to the fixtures directory)",
                     rel_path);
    memcpy(buf, abs_path, strlen(abs_path) + 1);
}

/* The SmolLM2-135M-Instruct GGUF: $LATHE_SMOLLM2_GGUF, else the cache tools/fetch_model.sh
 * fills ($LATHE_CACHE or ~/.cache/lathe); skips the test when it is absent. */
static inline void ts_smollm2(char *buf, size_t cap) {
    const char *p = getenv("LATHE_SMOLLM2_GGUF"), *cache = getenv("LATHE_CACHE");
    const char *home = getenv("HOME");
    if (p) snprintf(buf, cap, "%s", p);
    else if (cache) snprintf(buf, cap, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else snprintf(buf, cap, "%s/.cache/lathe/models/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
    if (access(buf, R_OK) != 0)
        cr_skip_test("SmolLM2 GGUF not found at %s (run tools/fetch_model.sh or set "
                     "LATHE_SMOLLM2_GGUF)", buf);
}

static inline const char *ts_lathe_bin(void) {
    const char *b = getenv("LATHE_BIN");
    if (!b) b = "bin/lathe";
    if (access(b, X_OK) != 0) cr_skip_test("lathe binary %s not found (set LATHE_BIN)", b);
    return b;
}

/* Run `lathe <args>` with stdout and stderr captured into dir/out.txt; returns the exit code and
 * (when out != NULL) the captured text, malloc'ed. */
static inline int ts_run(const char *dir, const char *args, char **out) {
    char cmd[20480], log[512];
    snprintf(log, sizeof log, "%s/out.txt", dir);
    int w = snprintf(cmd, sizeof cmd, "%s %s > '%s' 2>&1 < /dev/null", ts_lathe_bin(), args, log);
    cr_assert(w > 0 && (size_t)w < sizeof cmd, "command line too long for ts_run");
    int rc = system(cmd);
    if (out) {
        size_t n;
        cr_assert_eq(lt_read_file(log, out, &n), LT_OK);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static inline bool ts_exists(const char *path) { return access(path, F_OK) == 0; }

/* Whether two files hold the same bytes (false when either cannot be read). */
static inline bool ts_same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (lt_read_file(a, &x, &nx) != LT_OK) return false;
    if (lt_read_file(b, &y, &ny) != LT_OK) {
        free(x);
        return false;
    }
    bool same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

/* The CI data: `lathe tokenize` of the identity fixture with stories260K's tokenizer into
 * dir/data (train-*.h5 and a 10% eval split eval-*.h5); model receives the GGUF's absolute path.
 * Skips the test when the fixtures are absent; fails it when tokenize fails. */
static inline void ts_tokenize_ci_data(const char *dir, char *model, size_t cap) {
    char data[PATH_MAX], args[3 * PATH_MAX], *out;
    ts_fixture(model, cap, "stories260K/stories260K.gguf");
    ts_fixture(data, sizeof data, "data/identity.json");
    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/data "
             "--eval-fraction 0.1", model, data, dir);
    int rc = ts_run(dir, args, &out);
    cr_assert_eq(rc, 0, "tokenize failed: %s", out);
    free(out);
}

#endif
