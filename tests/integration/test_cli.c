/* Bad input through the command line: each case gives one clear message naming the file, key or
 * tensor and the documented exit code (2 usage/recipe, 3 model/data), never a crash. */
#include "../support.h"
#include "io/io.h"

static char tmp[256];
static void setup(void) { ts_tmpdir(tmp, sizeof tmp, "cli"); }
static void teardown(void) { ts_rmtree(tmp); }

static void expect(int want_rc, const char *args, const char *needle1, const char *needle2) {
    char *out;
    int rc = ts_run(tmp, args, &out);
    cr_assert_eq(rc, want_rc, "lathe %s: exit %d, expected %d:\n%s", args, rc, want_rc, out);
    cr_assert(strstr(out, needle1) != NULL, "lathe %s: no '%s' in:\n%s", args, needle1, out);
    if (needle2) cr_assert(strstr(out, needle2) != NULL, "lathe %s: no '%s' in:\n%s", args, needle2, out);
    cr_assert(strstr(out, "internal error") == NULL, "%s", out);
    free(out);
}

static void write_file(const char *name, const char *text, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", tmp, name);
    cr_assert_eq(lt_write_file_atomic(path, text, strlen(text)), LT_OK);
}

Test(cli, usage_errors, .init = setup, .fini = teardown) {
    expect(2, "frobnicate", "unknown command", NULL);
    expect(2, "generate", "--model FILE is required", NULL);
    expect(2, "generate --model x --max-tokens -3", "bad value", NULL);
    expect(2, "train", "exactly one recipe", NULL);
    expect(0, "train --help", "usage: lathe train", NULL);
    expect(0, "generate --help", "usage: lathe generate", NULL);
}

Test(cli, missing_and_truncated_model, .init = setup, .fini = teardown) {
    expect(3, "generate --model /nonexistent/model.gguf", "/nonexistent/model.gguf", "cannot open");
    char model[1024], path[600], args[1024];
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    char *bytes;
    size_t n;
    cr_assert_eq(lt_read_file(model, &bytes, &n), LT_OK);
    size_t cuts[] = {3, 20, 400, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        snprintf(path, sizeof path, "%s/trunc-%zu.gguf", tmp, i);
        cr_assert_eq(lt_write_file_atomic(path, bytes, cuts[i]), LT_OK);
        snprintf(args, sizeof args, "generate --model %s --max-tokens 4", path);
        expect(3, args, path, NULL);
    }
    free(bytes);
}

Test(cli, unsupported_tensor_type, .init = setup, .fini = teardown) {
    char path[600], args[700];
    snprintf(path, sizeof path, "%s/q2k.gguf", tmp);
    lt_gguf_writer *w = lt_gguf_writer_new();
    lt_gguf_writer_set_str(w, "general.architecture", "llama");
    static uint8_t raw[84]; /* one Q2_K block of 256 elements */
    int64_t ne[2] = {256, 1};
    lt_gguf_writer_add_raw(w, "blk.0.attn_q.weight", 10, 2, ne, raw, sizeof raw);
    cr_assert_eq(lt_gguf_writer_write(w, path), LT_OK, "%s", lt_error_message());
    lt_gguf_writer_free(w);
    snprintf(args, sizeof args, "generate --model %s", path);
    expect(3, args, "blk.0.attn_q.weight", "Q2_K");
}

Test(cli, recipe_errors, .init = setup, .fini = teardown) {
    char path[600], args[800];
    write_file("unknown.yaml", "model:\n  path: m.gguf\nlora:\n  alpah: 16\n", path, sizeof path);
    snprintf(args, sizeof args, "train %s", path);
    expect(2, args, "unknown.yaml:4:3", "did you mean 'lora.alpha'");

    write_file("type.yaml", "train:\n  micro_batch_size: four\n", path, sizeof path);
    snprintf(args, sizeof args, "train %s", path);
    expect(2, args, "type.yaml:2:21", "train.micro_batch_size");

    write_file("neg.yaml", "optim:\n  lr: -0.001\n", path, sizeof path);
    snprintf(args, sizeof args, "train %s", path);
    expect(2, args, "neg.yaml:2:7", "optim.lr");

    write_file("ok.yaml", "model:\n  path: m.gguf\ndata:\n  train: [x.h5]\noutput:\n  dir: run\n",
               path, sizeof path);
    snprintf(args, sizeof args, "train %s --set optim.lr=-1", path);
    expect(2, args, "--set optim.lr=-1", NULL);
    snprintf(args, sizeof args, "train %s --set optim.lrr=1", path);
    expect(2, args, "optim.lrr", "did you mean");
}

Test(cli, bad_data_for_train, .init = setup, .fini = teardown) {
    char model[1024], path[600], bad[600], args[4096];
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    write_file("not-a-shard.h5", "this is not HDF5\n", bad, sizeof bad);
    write_file("r.yaml", "lora:\n  r: 4\n", path, sizeof path);
    snprintf(args, sizeof args,
             "train %s --set model.path=%s --set data.train=%s --set output.dir=%s/run", path,
             model, bad, tmp);
    expect(3, args, "not-a-shard.h5", NULL);
    snprintf(args, sizeof args,
             "train %s --set model.path=%s --set 'data.train=%s/nothing-*.h5' --set output.dir=%s/run2",
             path, model, tmp, tmp);
    expect(3, args, "nothing-*.h5", NULL);
}

Test(cli, quantized_base_options, .init = setup, .fini = teardown) {
    char model[1024], args[2048];
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    snprintf(args, sizeof args, "eval --model %s --quant nf5 --prompt hi", model);
    expect(2, args, "--quant takes none, nf4, nf4-nodq or q8_0", NULL);
    /* stories260K's down_proj rows (172) hold no whole NF4 block: refused, tensor named */
    snprintf(args, sizeof args, "generate --model %s --quant nf4 --max-tokens 2", model);
    expect(2, args, "blk.0.ffn_down.weight", "172");
}
