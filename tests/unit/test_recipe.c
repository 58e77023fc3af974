/*
 * Tests for src/recipe: defaults, the example recipes, every error class (with file:line:col and
 * the hint asserted), --set overrides, cross-field validation, the write -> load round trip, and
 * docs/recipe.md being the output of lt_recipe_docs().
 *
 * Each test writes its YAML into its own mkdtemp directory, removed by the suite's .fini.
 * Regenerate docs/recipe.md:
 *   LATHE_UPDATE_DOCS=1 build/lathe_tests --filter 'recipe/docs_up_to_date'
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "data/data.h"
#include "recipe/recipe.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char tmpdir[PATH_MAX];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lathe_recipe_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    /* mkdtemp may hand back a path under a symlinked /tmp: compare against the real one */
    char real[PATH_MAX];
    cr_assert_not_null(realpath(tmpdir, real));
    snprintf(tmpdir, sizeof tmpdir, "%s", real);
}

static void teardown(void) {
    if (tmpdir[0]) nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(recipe, .init = setup, .fini = teardown);

/* Write text to tmpdir/name; returns a static path buffer (one at a time). */
static const char *put(const char *name, const char *text) {
    static char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The repository root, from this file's compiled path ("" when compiled relative to it). */
static const char *repo_root(void) {
    static char root[1024];
    const char *suffix = "tests/unit/test_recipe.c";
    size_t n = strlen(__FILE__), s = strlen(suffix);
    snprintf(root, sizeof root, "%.*s", (int)(n >= s ? n - s : 0), __FILE__);
    if (!root[0]) snprintf(root, sizeof root, ".");
    return root;
}

#define MODEL_OUT "model:\n  path: m.gguf\noutput:\n  dir: out\n"
#define MINIMAL "model:\n  path: m.gguf\ndata:\n  train: [t-*.h5]\noutput:\n  dir: out\n"
/* MINIMAL with eval data, ending inside output: (add its keys) */
#define MINIMAL_EVAL                                                                            \
    "model:\n  path: m.gguf\ndata:\n  train: [t-*.h5]\n  eval: [e-*.h5]\noutput:\n  dir: out\n"

static void assert_has(const char *msg, const char *part) {
    cr_assert(strstr(msg, part), "message\n  %s\nlacks\n  %s", msg, part);
}

/* Load `text` as bad.yaml, expect LT_ERR_RECIPE whose message has "bad.yaml:line:col: ",
 * `what` and `hint` (either may be NULL). */
static void expect_load_error(const char *text, int line, int col, const char *what,
                              const char *hint) {
    const char *path = put("bad.yaml", text);
    lt_recipe r;
    lt_status st = lt_recipe_load(&r, path);
    cr_assert_eq(st, LT_ERR_RECIPE, "expected a recipe error for:\n%s", text);
    const char *msg = lt_error_message();
    char loc[3 * PATH_MAX];
    snprintf(loc, sizeof loc, "%s:%d:%d: ", path, line, col);
    assert_has(msg, loc);
    if (what) assert_has(msg, what);
    if (hint) assert_has(msg, hint);
    lt_recipe_free(&r);
}

/* The resolved YAML of r, malloc'ed. */
static char *printed(const lt_recipe *r) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    lt_recipe_print(r, f);
    fclose(f);
    return buf;
}

/* Expect --set `assignment` to fail with `what` and `hint`, leaving r unchanged. */
static void expect_set_error(lt_recipe *r, const char *assignment, const char *what,
                             const char *hint) {
    char *before = printed(r);
    lt_status st = lt_recipe_set(r, assignment);
    cr_assert_eq(st, LT_ERR_RECIPE, "expected an error for --set %s", assignment);
    const char *msg = lt_error_message();
    char prefix[512];
    snprintf(prefix, sizeof prefix, "--set %s: ", assignment);
    assert_has(msg, prefix);
    if (what) assert_has(msg, what);
    if (hint) assert_has(msg, hint);
    char *after = printed(r);
    cr_assert_str_eq(before, after, "--set %s changed the recipe despite failing", assignment);
    free(before);
    free(after);
}

static lt_recipe load_ok(const char *text) {
    lt_recipe r;
    lt_status st = lt_recipe_load(&r, put("ok.yaml", text));
    cr_assert_eq(st, LT_OK, "load failed: %s", lt_error_message());
    return r;
}

/* ---- defaults and loading ----------------------------------------------------------------- */

Test(recipe, defaults) {
    lt_recipe r;
    lt_recipe_defaults(&r);
    cr_assert_null(r.model.path);
    cr_assert_null(r.output.dir);
    cr_assert_eq(r.data.train.n, 0);
    cr_assert_eq(r.data.eval.n, 0);
    cr_assert_eq(r.lora.r, 16);
    cr_assert_eq(r.lora.alpha, 32.0);
    cr_assert_eq(r.lora.dropout, 0.05);
    cr_assert_eq(r.lora.target_modules.n, 7);
    cr_assert_str_eq(r.lora.target_modules.items[0], "q_proj");
    cr_assert_str_eq(r.lora.target_modules.items[6], "down_proj");
    cr_assert(!r.lora.rslora);
    cr_assert_eq(r.data.seq_len, 512);
    cr_assert(r.data.packing);
    cr_assert_eq(r.optim.lr, 2e-4);
    cr_assert_eq(r.optim.beta1, 0.9);
    cr_assert_eq(r.optim.beta2, 0.999);
    cr_assert_eq(r.optim.eps, 1e-8);
    cr_assert_eq(r.optim.weight_decay, 0.0);
    cr_assert_eq(r.schedule.type, LT_SCHEDULE_COSINE);
    cr_assert_eq(r.schedule.warmup_steps, 0);
    cr_assert_eq(r.schedule.min_lr, 0.0);
    cr_assert_eq(r.train.micro_batch_size, 4);
    cr_assert_eq(r.train.grad_accum, 1);
    cr_assert_eq(r.train.max_steps, 0);
    cr_assert_eq(r.train.epochs, 1.0);
    cr_assert_eq(r.train.grad_clip, 1.0);
    cr_assert_eq(r.train.seed, 42);
    cr_assert_eq(r.train.log_every, 1);
    cr_assert_eq(r.train.eval_every, 0);
    cr_assert_eq(r.train.eval_batches, 0);
    cr_assert_eq(r.train.save_every, 0);
    cr_assert_eq(r.train.threads, 0);
    cr_assert_eq(lt_recipe_origin_of(&r, "lora.r"), LT_RECIPE_DEFAULT);
    cr_assert_eq(lt_recipe_validate(&r), LT_ERR_RECIPE);
    assert_has(lt_error_message(), "model.path is required");
    lt_recipe_free(&r);
    lt_recipe_free(NULL);
}

Test(recipe, minimal_paths_relative_to_recipe_dir) {
    lt_recipe r = load_ok(MINIMAL "lora:\n" /* a section with no keys is fine */);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s/m.gguf", tmpdir);
    cr_assert_str_eq(r.model.path, want);
    snprintf(want, sizeof want, "%s/t-*.h5", tmpdir);
    cr_assert_eq(r.data.train.n, 1);
    cr_assert_str_eq(r.data.train.items[0], want);
    snprintf(want, sizeof want, "%s/out", tmpdir);
    cr_assert_str_eq(r.output.dir, want);
    cr_assert_eq(lt_recipe_origin_of(&r, "model.path"), LT_RECIPE_FROM_FILE);
    cr_assert_eq(lt_recipe_origin_of(&r, "lora.r"), LT_RECIPE_DEFAULT);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);
}

Test(recipe, path_forms) {
    setenv("HOME", "/home/tester", 1);
    lt_recipe r = load_ok("model:\n  path: ~/models/./a/../b.gguf\n"
                          "data:\n  train: /abs//x/*.h5\n  eval: ../up/e-*.h5\n"
                          "output:\n  dir: runs/one/\n");
    cr_assert_str_eq(r.model.path, "/home/tester/models/b.gguf");
    cr_assert_eq(r.data.train.n, 1); /* a single value is a list of one */
    cr_assert_str_eq(r.data.train.items[0], "/abs/x/*.h5");
    char want[PATH_MAX + 32], parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", tmpdir);
    snprintf(want, sizeof want, "%s/up/e-*.h5", dirname(parent));
    cr_assert_str_eq(r.data.eval.items[0], want);
    snprintf(want, sizeof want, "%s/runs/one", tmpdir);
    cr_assert_str_eq(r.output.dir, want);
    lt_recipe_free(&r);
}

Test(recipe, full_load_and_types) {
    lt_recipe r = load_ok("# comment\n"
                          "model: {path: 'm.gguf'}\n"
                          "lora:\n  r: 64\n  alpha: 128\n  dropout: 0\n  rslora: yes\n"
                          "  target_modules:\n    - q_proj\n    - v_proj\n"
                          "data:\n  train: [a/*.h5, b/*.h5]\n  eval: []\n  seq_len: 2048\n"
                          "  packing: False\n"
                          "optim:\n  lr: 1e-4\n  beta1: 0.85\n  beta2: 0.95\n  eps: 1.0e-6\n"
                          "  weight_decay: 0.01\n"
                          "schedule:\n  type: linear\n  warmup_steps: 10\n  min_lr: 1e-5\n"
                          "train:\n  micro_batch_size: 2\n  grad_accum: 8\n  max_steps: 100\n"
                          "  grad_clip: 0\n  seed: 7\n  log_every: 5\n  eval_every: 0\n"
                          "  eval_batches: 3\n  save_every: 50\n  threads: 4\n"
                          "output:\n  dir: out\n");
    cr_assert_eq(r.lora.r, 64);
    cr_assert_eq(r.lora.alpha, 128.0);
    cr_assert_eq(r.lora.dropout, 0.0);
    cr_assert(r.lora.rslora);
    cr_assert_eq(r.lora.target_modules.n, 2);
    cr_assert_str_eq(r.lora.target_modules.items[1], "v_proj");
    cr_assert_eq(r.data.train.n, 2);
    cr_assert_eq(r.data.eval.n, 0);
    cr_assert_eq(r.data.seq_len, 2048);
    cr_assert(!r.data.packing);
    cr_assert_eq(r.optim.lr, 1e-4);
    cr_assert_eq(r.optim.beta1, 0.85);
    cr_assert_eq(r.optim.beta2, 0.95);
    cr_assert_eq(r.optim.eps, 1e-6);
    cr_assert_eq(r.optim.weight_decay, 0.01);
    cr_assert_eq(r.schedule.type, LT_SCHEDULE_LINEAR);
    cr_assert_eq(r.schedule.warmup_steps, 10);
    cr_assert_eq(r.schedule.min_lr, 1e-5);
    cr_assert_eq(r.train.micro_batch_size, 2);
    cr_assert_eq(r.train.grad_accum, 8);
    cr_assert_eq(r.train.max_steps, 100);
    cr_assert_eq(r.train.grad_clip, 0.0);
    cr_assert_eq(r.train.seed, 7);
    cr_assert_eq(r.train.eval_batches, 3);
    cr_assert_eq(r.train.save_every, 50);
    cr_assert_eq(r.train.threads, 4);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);
}

Test(recipe, betas_synonym) {
    lt_recipe r = load_ok(MINIMAL "optim:\n  betas: [0.8, 0.99]\n");
    cr_assert_eq(r.optim.beta1, 0.8);
    cr_assert_eq(r.optim.beta2, 0.99);
    cr_assert_eq(lt_recipe_origin_of(&r, "optim.beta2"), LT_RECIPE_FROM_FILE);
    lt_recipe_free(&r);
    expect_load_error(MINIMAL "optim:\n  betas: [0.9]\n", 8, 10, "list of two numbers", NULL);
    expect_load_error(MINIMAL "optim:\n  betas: [0.9, 1.5]\n", 8, 16,
                      "optim.beta2 must be >= 0 and < 1, got 1.5", NULL);
    expect_load_error(MINIMAL "optim:\n  beta1: 0.9\n  betas: [0.9, 0.99]\n", 9, 3,
                      "optim.betas repeats optim.beta1 set at line 8", "hint: keep one");
}

Test(recipe, examples_load_and_validate) {
    char pat[PATH_MAX];
    snprintf(pat, sizeof pat, "%s/recipes/*.yaml", repo_root());
    glob_t g;
    cr_assert_eq(glob(pat, 0, NULL, &g), 0, "no recipes under %s", pat);
    cr_assert_geq(g.gl_pathc, 2);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        lt_recipe r;
        cr_assert_eq(lt_recipe_load(&r, g.gl_pathv[i]), LT_OK, "%s", lt_error_message());
        cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
        lt_recipe_free(&r);
    }
    globfree(&g);
}

Test(recipe, example_ci_stories260k) {
    char path[PATH_MAX], root[PATH_MAX], want[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/recipes/ci-stories260k.yaml", repo_root());
    cr_assert_not_null(realpath(repo_root(), root));
    lt_recipe r;
    cr_assert_eq(lt_recipe_load(&r, path), LT_OK, "%s", lt_error_message());
    /* recipes/ is one level down: ../../shared is the fixtures beside the repository */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", root);
    snprintf(want, sizeof want, "%s/shared/fixtures/stories260K/stories260K.gguf",
             dirname(parent));
    cr_assert_str_eq(r.model.path, want);
    snprintf(want, sizeof want, "%s/build/ci-data/train-*.h5", root);
    cr_assert_str_eq(r.data.train.items[0], want);
    snprintf(want, sizeof want, "%s/runs/ci-stories260k", root);
    cr_assert_str_eq(r.output.dir, want);
    cr_assert_eq(r.train.max_steps, 40);
    cr_assert_eq(r.lora.target_modules.n, 2);
    lt_recipe_free(&r);
}

Test(recipe, example_smollm2_jargon) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/recipes/smollm2-jargon.yaml", repo_root());
    lt_recipe r;
    cr_assert_eq(lt_recipe_load(&r, path), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.train.max_steps, 0);
    cr_assert_eq(r.train.epochs, 3.0);
    cr_assert_eq(r.optim.beta2, 0.999);
    cr_assert_eq(r.lora.target_modules.n, 7);
    cr_assert_eq(r.train.grad_accum, 2);
    /* make demo passes the model on the command line, relative to the current directory */
    cr_assert_eq(lt_recipe_set(&r, "model.path=build/demo/base.gguf"), LT_OK);
    char cwd[PATH_MAX], want[PATH_MAX + 32];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/build/demo/base.gguf", cwd);
    cr_assert_str_eq(r.model.path, want);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);
}

/* ---- load errors -------------------------------------------------------------------------- */

Test(recipe, error_unknown_key) {
    expect_load_error(MINIMAL "lora:\n  r: 8\n  alpah: 16\n", 9, 3, "unknown key 'lora.alpah'",
                      "did you mean 'lora.alpha'?");
    expect_load_error(MINIMAL "train:\n  lr: 0.1\n", 8, 3, "unknown key 'train.lr'",
                      "did you mean 'optim.lr'?");
    expect_load_error("model:\n  path: m\n  lora:\n    r: 3\n", 3, 3,
                      "unknown key 'model.lora': 'lora' is a section", "to the top level");
    expect_load_error(MINIMAL "lora:\n  zzzzzzzz: 1\n", 8, 3, "unknown key 'lora.zzzzzzzz'",
                      "keys in 'lora' are r, alpha, dropout");
}

Test(recipe, error_unknown_section) {
    expect_load_error(MINIMAL "lorra:\n  r: 8\n", 7, 1, "unknown section 'lorra'",
                      "did you mean 'lora'?");
    expect_load_error(MINIMAL "seq_len: 8\n", 7, 1, "unknown section 'seq_len'",
                      "did you mean 'data.seq_len'");
}

Test(recipe, error_wrong_type) {
    expect_load_error(MINIMAL "lora:\n  r: abc\n", 8, 6, "lora.r: expected an integer, got 'abc'",
                      "hint: lora.r takes a whole number 1 to 4096");
    expect_load_error(MINIMAL "lora:\n  r: 16.5\n", 8, 6, "expected an integer, got '16.5'", NULL);
    expect_load_error(MINIMAL "train:\n  seed: 99999999999999999999\n", 8, 9,
                      "expected an integer", NULL);
    expect_load_error(MINIMAL "optim:\n  lr: fast\n", 8, 7, "expected a number, got 'fast'",
                      "hint: write e.g.");
    expect_load_error(MINIMAL "optim:\n  lr: nan\n", 8, 7, "expected a number, got 'nan'", NULL);
    expect_load_error(MINIMAL "optim:\n  lr: 0x10\n", 8, 7, "expected a number", NULL);
    expect_load_error(MODEL_OUT "data:\n  train: t\n  packing: maybe\n", 7, 12,
                      "expected true or false, got 'maybe'", NULL);
    expect_load_error(MINIMAL "lora:\n  r: [1, 2]\n", 8, 6, "expected a single value, got a list",
                      NULL);
    expect_load_error(MINIMAL "lora:\n  r:\n", 8, 5, "lora.r has no value",
                      "remove the line to use the default (16)");
    expect_load_error(MINIMAL "lora:\n  target_modules: {a: 1}\n", 8, 19,
                      "expected a list, got a mapping", NULL);
    expect_load_error(MINIMAL "lora:\n  target_modules: [[q_proj]]\n", 8, 20,
                      "item 1 is a list", NULL);
    expect_load_error("model:\n  path: ''\n", 2, 9, "model.path is empty", NULL);
}

Test(recipe, error_out_of_range) {
    expect_load_error(MINIMAL "optim:\n  lr: -0.001\n", 8, 7, "optim.lr must be > 0, got -0.001",
                      "the default is 0.0002");
    expect_load_error(MINIMAL "optim:\n  lr: 0\n", 8, 7, "optim.lr must be > 0, got 0", NULL);
    expect_load_error(MINIMAL "lora:\n  dropout: 1\n", 8, 12,
                      "lora.dropout must be >= 0 and < 1, got 1", NULL);
    expect_load_error(MINIMAL "lora:\n  r: 0\n", 8, 6, "lora.r must be 1 to 4096, got 0", NULL);
    expect_load_error(MODEL_OUT "data:\n  train: t\n  seq_len: 4\n", 7, 12,
                      "data.seq_len must be 8 to 1048576",
                      NULL);
    expect_load_error(MINIMAL "train:\n  micro_batch_size: 0\n", 8, 21,
                      "train.micro_batch_size must be 1 to 65536, got 0", NULL);
    expect_load_error(MINIMAL "optim:\n  weight_decay: -1\n", 8, 17,
                      "optim.weight_decay must be >= 0", NULL);
}

Test(recipe, error_choices) {
    expect_load_error(MINIMAL "schedule:\n  type: cosin\n", 8, 9,
                      "schedule.type: unknown value 'cosin'", "did you mean 'cosine'?");
    expect_load_error(MINIMAL "lora:\n  target_modules: [q_proj, q_prj]\n", 8, 28,
                      "lora.target_modules: unknown item 'q_prj'", "did you mean 'q_proj'?");
    expect_load_error(MINIMAL "lora:\n  target_modules: [q_proj, q_proj]\n", 8, 28,
                      "'q_proj' is listed twice", NULL);
}

Test(recipe, error_duplicates) {
    expect_load_error(MINIMAL "lora:\n  r: 8\n  r: 16\n", 9, 3,
                      "duplicate key 'lora.r' (first set at line 8)", "hint: keep one");
    expect_load_error(MINIMAL "lora:\n  r: 8\nlora:\n  alpha: 1\n", 9, 1,
                      "duplicate section 'lora' (first at line 7)", "hint: merge");
}

Test(recipe, error_structure) {
    expect_load_error(MINIMAL "lora: 5\n", 7, 7, "section 'lora' must be a mapping of keys, got a "
                                                 "single value", "indented under 'lora:'");
    expect_load_error(MINIMAL "lora:\n  - r\n", 8, 3, "section 'lora' must be a mapping of keys, "
                                                      "got a list", NULL);
    expect_load_error("- model\n- lora\n", 1, 1, "expected a mapping of sections", NULL);
    expect_load_error(MINIMAL "---\nlora: {}\n", 7, 1, "a second YAML document", "'---'");
}

Test(recipe, error_yaml_syntax) {
    expect_load_error(MINIMAL "lora:\n  r: [1, 2\n", 9, 1, "YAML syntax error", "hint:");
    expect_load_error("model:\n  path: a\n bad: x\n", 3, 2, "YAML syntax error", NULL);
    expect_load_error("lora:\n\tr: 8\n", 2, 1, "YAML syntax error", "tabs");
    expect_load_error("model:\n  path: \"\xff\xfe\"\n", 2, 10, "YAML syntax error",
                      NULL); /* invalid UTF-8: a reader error with a byte offset */
}

Test(recipe, error_unreadable) {
    lt_recipe r;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
    cr_assert_eq(lt_recipe_load(&r, path), LT_ERR_RECIPE);
    assert_has(lt_error_message(), path);
    assert_has(lt_error_message(), "cannot read recipe");
    lt_recipe_free(&r);
    cr_assert_eq(lt_recipe_load(&r, tmpdir), LT_ERR_RECIPE);
    assert_has(lt_error_message(), "is a directory");
    lt_recipe_free(&r);
}

Test(recipe, empty_file_needs_required_keys) {
    lt_recipe r = load_ok("# nothing yet\n");
    cr_assert_eq(lt_recipe_validate(&r), LT_ERR_RECIPE);
    assert_has(lt_error_message(), "model.path is required");
    assert_has(lt_error_message(), "--set model.path=");
    lt_recipe_free(&r);
}

/* ---- validation --------------------------------------------------------------------------- */

static void expect_invalid(const char *text, const char *what, const char *hint) {
    lt_recipe r = load_ok(text);
    cr_assert_eq(lt_recipe_validate(&r), LT_ERR_RECIPE, "expected invalid:\n%s", text);
    assert_has(lt_error_message(), what);
    if (hint) assert_has(lt_error_message(), hint);
    lt_recipe_free(&r);
}

Test(recipe, validate_cross_field) {
    char loc[3 * PATH_MAX];
    snprintf(loc, sizeof loc, "%s/ok.yaml:9:3: train.epochs and train.max_steps (%s/ok.yaml:8:3)",
             tmpdir, tmpdir);
    expect_invalid(MINIMAL "train:\n  max_steps: 100\n  epochs: 3\n", loc, "keep one");
    expect_invalid("model:\n  path: m\ndata:\n  train: t\n", "output.dir is required",
                   "add 'dir:' under 'output:'");
    expect_invalid("model:\n  path: m\noutput:\n  dir: o\ndata:\n  train: []\n",
                   "data.train is required", NULL);
    expect_invalid(MINIMAL "optim:\n  lr: 1e-4\nschedule:\n  min_lr: 1e-3\n",
                   "schedule.min_lr (0.001) is above optim.lr (0.0001)", NULL);
    expect_invalid(MINIMAL "train:\n  max_steps: 10\nschedule:\n  warmup_steps: 11\n",
                   "schedule.warmup_steps (11) exceeds train.max_steps (10)", NULL);
    expect_invalid(MINIMAL "lora:\n  target_modules: []\n", "lora.target_modules is empty", NULL);
    expect_invalid(MINIMAL "train:\n  eval_every: 10\n", "data.eval is empty",
                   "train.eval_every: 0");
    /* max_steps: 0 explicitly with epochs is consistent */
    lt_recipe r = load_ok(MINIMAL "train:\n  max_steps: 0\n  epochs: 2.5\n");
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.train.epochs, 2.5);
    lt_recipe_free(&r);
}

/* ---- --set -------------------------------------------------------------------------------- */

Test(recipe, set_overrides) {
    lt_recipe r = load_ok("model:\n  path: m.gguf\ndata:\n  train: [t-*.h5]\n  eval: [e-*.h5]\n"
                "output:\n  dir: out\n");
    cr_assert_eq(lt_recipe_set(&r, "lora.r=32"), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.lora.r, 32);
    cr_assert_eq(lt_recipe_origin_of(&r, "lora.r"), LT_RECIPE_FROM_SET);
    cr_assert_eq(lt_recipe_set(&r, " optim.lr = 1e-4 "), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.optim.lr, 1e-4);
    cr_assert_eq(lt_recipe_set(&r, "lora.rslora=true"), LT_OK);
    cr_assert(r.lora.rslora);
    cr_assert_eq(lt_recipe_set(&r, "data.packing=off"), LT_OK);
    cr_assert(!r.data.packing);
    cr_assert_eq(lt_recipe_set(&r, "schedule.type=constant"), LT_OK);
    cr_assert_eq(r.schedule.type, LT_SCHEDULE_CONSTANT);
    cr_assert_eq(lt_recipe_set(&r, "lora.target_modules=[q_proj, v_proj]"), LT_OK);
    cr_assert_eq(r.lora.target_modules.n, 2);
    cr_assert_str_eq(r.lora.target_modules.items[1], "v_proj");
    cr_assert_eq(lt_recipe_set(&r, "lora.target_modules=o_proj"), LT_OK);
    cr_assert_eq(r.lora.target_modules.n, 1);
    cr_assert_eq(lt_recipe_set(&r, "optim.betas=[0.5, 0.6]"), LT_OK);
    cr_assert_eq(r.optim.beta1, 0.5);
    cr_assert_eq(r.optim.beta2, 0.6);
    cr_assert_eq(lt_recipe_set(&r, "data.eval="), LT_OK); /* empty clears a list */
    cr_assert_eq(r.data.eval.n, 0);
    /* paths from --set are relative to the current directory, taken literally */
    char cwd[PATH_MAX], want[PATH_MAX + 64];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(lt_recipe_set(&r, "data.train=*.h5"), LT_OK, "%s", lt_error_message());
    snprintf(want, sizeof want, "%s/*.h5", cwd);
    cr_assert_str_eq(r.data.train.items[0], want);
    cr_assert_eq(lt_recipe_set(&r, "output.dir=runs/a b #1"), LT_OK);
    snprintf(want, sizeof want, "%s/runs/a b #1", cwd);
    cr_assert_str_eq(r.output.dir, want);
    cr_assert_eq(lt_recipe_set(&r, "output.dir='/q/x y'"), LT_OK);
    cr_assert_str_eq(r.output.dir, "/q/x y");
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);
}

Test(recipe, set_errors) {
    lt_recipe r = load_ok(MINIMAL);
    expect_set_error(&r, "optim.lr=abc", "optim.lr: expected a number, got 'abc'", NULL);
    cr_assert_eq(r.optim.lr, 2e-4); /* unchanged */
    expect_set_error(&r, "optim.lr=-1", "optim.lr must be > 0, got -1", NULL);
    expect_set_error(&r, "lora.alpah=3", "unknown key 'lora.alpah'", "did you mean 'lora.alpha'?");
    expect_set_error(&r, "schedule.warmup=3", "unknown key 'schedule.warmup'",
                     "did you mean 'schedule.warmup_steps'?");
    expect_set_error(&r, "lorra.r=3", "unknown section 'lorra'", "did you mean 'lora.r'?");
    expect_set_error(&r, "lr=3", "expected section.key", "did you mean 'optim.lr'?");
    expect_set_error(&r, "lora.r", "expected section.key=value", NULL);
    expect_set_error(&r, "lora.r=", "lora.r has no value", NULL);
    expect_set_error(&r, "lora.r=[1, 2]", "expected a single value, got a list", NULL);
    expect_set_error(&r, "schedule.type=cosin", "unknown value 'cosin'", "did you mean 'cosine'?");
    expect_set_error(&r, "lora.target_modules=[q_proj, qq_proj]", "unknown item 'qq_proj'",
                     "did you mean 'q_proj'?");
    expect_set_error(&r, "lora.target_modules=[q_proj", "bad value", NULL);
    expect_set_error(&r, "data.packing=maybe", "expected true or false", NULL);
    cr_assert_eq(r.lora.target_modules.n, 7);
    lt_recipe_free(&r);
}

Test(recipe, set_run_length_replaces_file_value) {
    lt_recipe r = load_ok(MINIMAL "train:\n  epochs: 3\n");
    cr_assert_eq(lt_recipe_set(&r, "train.max_steps=10"), LT_OK);
    cr_assert_eq(lt_recipe_origin_of(&r, "train.epochs"), LT_RECIPE_DEFAULT);
    cr_assert_eq(r.train.epochs, 1.0);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);

    r = load_ok(MINIMAL "train:\n  max_steps: 500\n");
    cr_assert_eq(lt_recipe_set(&r, "train.epochs=0.5"), LT_OK);
    cr_assert_eq(r.train.max_steps, 0);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);

    /* both with --set is an error naming the overrides */
    r = load_ok(MINIMAL);
    cr_assert_eq(lt_recipe_set(&r, "train.max_steps=10"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "train.epochs=2"), LT_OK);
    cr_assert_eq(lt_recipe_validate(&r), LT_ERR_RECIPE);
    assert_has(lt_error_message(), "--set train.epochs: train.epochs and train.max_steps "
                                   "(--set train.max_steps) are both set");
    lt_recipe_free(&r);
}

/* ---- write -> load ------------------------------------------------------------------------ */

static void round_trip(lt_recipe *r) {
    char out[PATH_MAX + 32];
    snprintf(out, sizeof out, "%s/resolved.yaml", tmpdir);
    cr_assert_eq(lt_recipe_write(r, out), LT_OK, "%s", lt_error_message());
    lt_recipe back;
    cr_assert_eq(lt_recipe_load(&back, out), LT_OK, "%s", lt_error_message());
    cr_assert(lt_recipe_equal(r, &back), "resolved copy differs after reload");
    cr_assert_eq(lt_recipe_validate(&back), LT_OK, "%s", lt_error_message());
    /* every written key was read from the file */
    cr_assert_eq(lt_recipe_origin_of(&back, "lora.dropout"), LT_RECIPE_FROM_FILE);
    lt_recipe_free(&back);
}

Test(recipe, write_load_round_trip) {
    char path[PATH_MAX];
    const char *names[] = {"ci-stories260k.yaml", "smollm2-jargon.yaml"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/recipes/%s", repo_root(), names[i]);
        lt_recipe r;
        cr_assert_eq(lt_recipe_load(&r, path), LT_OK, "%s", lt_error_message());
        round_trip(&r);
        lt_recipe_free(&r);
    }
    /* awkward values: quotes, backslashes, '#', unicode, tabs, long floats */
    lt_recipe r = load_ok(MINIMAL);
    cr_assert_eq(lt_recipe_set(&r, "output.dir=/tmp/a \"b\" \\c #d: é\te"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "optim.lr=0.00012345678901234567"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "train.epochs=0.1"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "train.seed=9223372036854775807"), LT_OK);
    cr_assert_eq(lt_recipe_set(&r, "data.eval=[x,y]"), LT_OK);
    round_trip(&r);
    /* the copy differs when a value differs */
    lt_recipe other = load_ok(MINIMAL);
    cr_assert(!lt_recipe_equal(&r, &other));
    lt_recipe_free(&other);
    lt_recipe_free(&r);
}

Test(recipe, write_comments_and_epochs) {
    lt_recipe r = load_ok(MINIMAL "train:\n  max_steps: 7\n");
    char *buf = printed(&r);
    assert_has(buf, "  # epochs: 1   (not used: train.max_steps decides the run length)\n");
    assert_has(buf, "  max_steps: 7\n");
    assert_has(buf, "  # Adapter rank");
    assert_has(buf, "  target_modules: [\"q_proj\", \"k_proj\"");
    cr_assert_null(strstr(buf, "betas"));
    free(buf);
    lt_recipe_free(&r);
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/no/such/dir/recipe.yaml", tmpdir);
    lt_recipe_defaults(&r);
    cr_assert_eq(lt_recipe_write(&r, bad), LT_ERR_IO);
    lt_recipe_free(&r);
}

/* ---- docs --------------------------------------------------------------------------------- */

Test(recipe, docs_up_to_date) {
    char *gen = NULL;
    size_t gn = 0;
    FILE *f = open_memstream(&gen, &gn);
    lt_recipe_docs(f);
    fclose(f);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/docs/recipe.md", repo_root());
    if (getenv("LATHE_UPDATE_DOCS")) {
        cr_assert_eq(lt_write_file_atomic(path, gen, gn), LT_OK, "%s", lt_error_message());
        cr_log_info("wrote %s", path);
    }
    char *have = NULL;
    size_t hn = 0;
    cr_assert_eq(lt_read_file(path, &have, &hn), LT_OK, "%s", lt_error_message());
    cr_assert(hn == gn && !memcmp(have, gen, gn),
              "%s is out of date with the key table; regenerate with LATHE_UPDATE_DOCS=1 "
              "build/lathe_tests --filter 'recipe/docs_up_to_date'",
              path);
    /* every key is documented */
    assert_has(gen, "`model.path`");
    assert_has(gen, "`train.threads`");
    free(gen);
    free(have);
}

/* ---- data entries: {path, weight, raw-file options} ---------------------------------------- */

Test(recipe, data_entries) {
    lt_recipe r = load_ok(MODEL_OUT
                          "data:\n"
                          "  train:\n"
                          "    - {path: a/*.jsonl, weight: 0.7, format: alpaca, max_len: 256}\n"
                          "    - path: b.json\n"
                          "      weight: 0.3\n"
                          "      template: chatml\n"
                          "      eval_fraction: 0.1\n"
                          "      on_error: fail\n"
                          "  eval: [e-*.h5]\n");
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    cr_assert_eq(r.data.train.n, 2);
    cr_assert_not_null(r.data.train.entries);
    char want[2 * PATH_MAX];
    snprintf(want, sizeof want, "%s/a/*.jsonl", tmpdir);
    cr_assert_str_eq(r.data.train.items[0], want, "entry paths resolve like plain items");
    const lt_data_entry *e = r.data.train.entries;
    cr_assert(e[0].weight == 0.7 && e[0].format == LT_FORMAT_ALPACA && e[0].max_len == 256);
    cr_assert(!e[0].template_name && e[0].eval_fraction < 0 && e[0].on_error < 0, "unset");
    cr_assert(e[1].weight == 0.3 && e[1].format < 0 && e[1].max_len < 0);
    cr_assert_str_eq(e[1].template_name, "chatml");
    cr_assert(e[1].eval_fraction == 0.1 && e[1].on_error == LT_ON_ERROR_FAIL);
    cr_assert_null(r.data.eval.entries, "a list of plain globs has no entries");
    round_trip(&r);
    /* --set takes the same flow mappings; a plain item beside them has an unset entry */
    cr_assert_eq(lt_recipe_set(&r, "data.train=[x.h5, {path: y.jsonl, max_len: 64}]"), LT_OK,
                 "%s", lt_error_message());
    cr_assert(r.data.train.n == 2 && !lt_data_entry_is_set(&r.data.train.entries[0]));
    cr_assert_eq(r.data.train.entries[1].max_len, 64);
    round_trip(&r);
    lt_recipe_free(&r);

    /* errors name the entry and the field */
    expect_load_error(MODEL_OUT "data:\n  train: [{path: a.jsonl, weigth: 2}]\n", 6, 27,
                      "data.train[1].weigth: unknown field", "did you mean 'weight'?");
    expect_load_error(MODEL_OUT "data:\n  train: [{path: a.jsonl, weight: 0}]\n", 6, 35,
                      "data.train[1].weight must be > 0", NULL);
    expect_load_error(MODEL_OUT "data:\n  train: [{path: a.jsonl, format: yaml}]\n", 6, 35,
                      "data.train[1].format: unknown value 'yaml'", "expected one of");
    expect_load_error(MODEL_OUT "data:\n  train: [{weight: 1}]\n", 6, 11,
                      "data.train: item 1 has no path", "{path: data/*.jsonl, weight: 0.5}");
    expect_load_error(MODEL_OUT "data:\n  train: [{path: [a, b]}]\n", 6, 18, "holds a list",
                      NULL);
    expect_load_error(MODEL_OUT "data:\n  train: [a.h5]\nlora:\n  target_modules: [{a: 1}]\n",
                      8, 20, "lora.target_modules: item 1 is a mapping", NULL);
    expect_invalid(MODEL_OUT "data:\n  train: [{path: a.jsonl, weight: 1}, b.jsonl]\n",
                   "data.train[1] has a weight but data.train[2] has none", "give every entry");
    expect_invalid(MODEL_OUT "data:\n  train: [a.h5]\n  eval: [{path: e.jsonl, weight: 1}]\n",
                   "data.eval[1] sets weight", NULL);
    /* an entry's eval_fraction is a held-out evaluation set for the gate / eval_every */
    r = load_ok(MODEL_OUT "data:\n  train: [{path: a.jsonl, eval_fraction: 0.2}]\n"
                "train:\n  eval_every: 5\n");
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    lt_recipe_free(&r);
}

/* output.gate: a subsection, block or flow; --set by its full name; the resolved copy writes it
 * nested and reads back; a top-level gate: section says where it belongs. */
Test(recipe, output_gate_subsection) {
    lt_recipe r = load_ok(MINIMAL_EVAL "  gate:\n    metric: eval_loss\n    max_regression: 0.05\n");
    cr_assert_eq(r.output.gate.metric, LT_GATE_EVAL_LOSS);
    cr_assert_eq(r.output.gate.max_regression, 0.05);
    cr_assert_eq(lt_recipe_validate(&r), LT_OK, "%s", lt_error_message());
    char *text = printed(&r);
    cr_assert(strstr(text, "\n  gate:\n    # ") && strstr(text, "\n    metric: eval_loss\n"),
              "%s", text);
    free(text);
    round_trip(&r);
    cr_assert_eq(lt_recipe_set(&r, "output.gate.min_improvement=0.01"), LT_OK, "%s",
                 lt_error_message());
    cr_assert_eq(r.output.gate.min_improvement, 0.01);
    lt_recipe_free(&r);
    r = load_ok(MINIMAL_EVAL "  gate: {metric: eval_loss, min_improvement: 0.02}\n");
    cr_assert(r.output.gate.metric == LT_GATE_EVAL_LOSS && r.output.gate.min_improvement == 0.02);
    lt_recipe_free(&r);
    expect_load_error(MINIMAL_EVAL "  gate: eval_loss\n", 8, 9, "'output.gate' must be a mapping",
                      "{metric: eval_loss}");
    expect_load_error(MINIMAL_EVAL "  gate: {metrik: eval_loss}\n", 8, 10,
                      "unknown key 'output.gate.metrik'", "metric");
    expect_load_error(MINIMAL "gate:\n  metric: eval_loss\n", 7, 1, "unknown section 'gate'",
                      "'gate:' belongs under 'output:'");
}
