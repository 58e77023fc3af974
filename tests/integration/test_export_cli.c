/* `lathe export`, `lathe convert`, `lathe inspect` and output.exports through the binary: a run
 * directory (recipe.yaml + adapter/) is made from stories260K with a random-B adapter, then each
 * format is exported; bad requests must exit 2 and change nothing. */
#include "../support.h"
#include "export/export.h"

static char tmp[256], run[512], model[1024];

/* RUN = tmp/run: recipe.yaml naming the model and adapter/ with rank r. */
static void make_run(int r) {
    ts_fixture(model, sizeof model, "stories260K/stories260K.gguf");
    snprintf(run, sizeof run, "%s/run", tmp);
    cr_assert_eq(lt_mkdir_p(run), LT_OK);
    char path[700], text[2048];
    snprintf(path, sizeof path, "%s/recipe.yaml", run);
    snprintf(text, sizeof text, "model:\n  path: %s\ndata:\n  train: [shards/train-*.h5]\n"
             "output:\n  dir: %s\n", model, run);
    cr_assert_eq(lt_write_file_atomic(path, text, strlen(text)), LT_OK);
    lt_gguf *g;
    lt_model *m;
    cr_assert_eq(lt_gguf_open(&g, model), LT_OK);
    cr_assert_eq(lt_model_load_gguf(&m, g), LT_OK);
    lt_lora_config lc = {.r = r, .alpha = 16, .targets = 0x7f};
    lt_model_add_lora(m, &lc, 1);
    lt_rng rng = {5};
    for (int64_t i = 0; i < m->n_lora; i++) m->lora_params[i] += 0.01f * lt_rng_uniform(&rng);
    snprintf(path, sizeof path, "%s/adapter", run);
    cr_assert_eq(lt_peft_save(m, path, model, false), LT_OK);
    lt_model_free(m);
    lt_gguf_close(g);
}

static void setup(void) {
    ts_tmpdir(tmp, sizeof tmp, "export_cli");
    make_run(8);
}
static void teardown(void) { ts_rmtree(tmp); }

static int run_cli(const char *fmt, const char *a, char **out) {
    char args[4096];
    snprintf(args, sizeof args, fmt, a);
    return ts_run(tmp, args, out);
}

Test(export_cli, every_format_from_a_run_dir, .init = setup, .fini = teardown) {
    char *out, args[2048], path[1024];
    const char *files[] = {"peft/adapter_model.safetensors", "gguf-adapter/adapter.gguf",
                           "merged-safetensors/model.safetensors", "merged-gguf/model.gguf"};
    for (int f = 0; f < LT_EXPORT_FORMAT_COUNT; f++) {
        snprintf(args, sizeof args, "export %s --format %s", run, lt_export_format_names[f]);
        int rc = ts_run(tmp, args, &out);
        cr_assert_eq(rc, 0, "%s: %s", args, out);
        free(out);
        snprintf(path, sizeof path, "%s/exports/%s", run, files[f]);
        cr_assert(ts_exists(path), "%s missing", path);
    }
    snprintf(path, sizeof path, "%s/exports/merged-safetensors/config.json", run);
    cr_assert(ts_exists(path));
    snprintf(path, sizeof path, "%s/exports/merged-safetensors/tokenizer.json", run);
    cr_assert(ts_exists(path));
    /* the merged GGUF is a model `lathe generate` runs */
    snprintf(args, sizeof args, "generate --model %s/exports/merged-gguf/model.gguf "
             "--temperature 0 --max-tokens 8", run);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    /* inspect reads every kind of path it made */
    const char *paths[] = {"", "/adapter", "/exports/gguf-adapter/adapter.gguf",
                           "/exports/merged-safetensors",
                           "/exports/merged-safetensors/model.safetensors"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        snprintf(args, sizeof args, "inspect %s%s", run, paths[i]);
        cr_assert_eq(ts_run(tmp, args, &out), 0, "%s: %s", args, out);
        cr_assert(strstr(out, "sha256"), "%s: %s", args, out);
        free(out);
    }
    snprintf(args, sizeof args, "inspect %s", model);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    cr_assert(strstr(out, "arch       llama") && strstr(out, "tokenizer  llama, 512 tokens") &&
              strstr(out, "blk.0.attn_q.weight"), "%s", out);
    free(out);
}

Test(export_cli, existing_output_refused_without_force, .init = setup, .fini = teardown) {
    char *out, outdir[700], keep[800];
    snprintf(outdir, sizeof outdir, "%s/exports/gguf-adapter", run);
    snprintf(keep, sizeof keep, "%s/mine.txt", outdir);
    cr_assert_eq(lt_mkdir_p(outdir), LT_OK);
    cr_assert_eq(lt_write_file_atomic(keep, "keep", 4), LT_OK);
    cr_assert_eq(run_cli("export %s --format gguf-adapter", run, &out), 2, "%s", out);
    cr_assert(strstr(out, "already exists") && strstr(out, "--force"), "%s", out);
    free(out);
    cr_assert(ts_exists(keep));
    snprintf(keep, sizeof keep, "%s/adapter.gguf", outdir);
    cr_assert(!ts_exists(keep), "something was written into the refused directory");
}

Test(export_cli, path_escaping_the_output_is_refused, .init = setup, .fini = teardown) {
    char *out, evil[700];
    cr_assert_eq(run_cli("export %s --format merged-gguf --name ../evil", run, &out), 2, "%s",
                 out);
    cr_assert(strstr(out, "not a plain file name"), "%s", out);
    free(out);
    snprintf(evil, sizeof evil, "%s/exports/evil.gguf", run);
    cr_assert(!ts_exists(evil));
    snprintf(evil, sizeof evil, "%s/exports", run);
    cr_assert(!ts_exists(evil), "nothing may be created for a refused export");
    /* an output directory holding the adapter would be replaced by --force: refused */
    char args[2048];
    snprintf(args, sizeof args, "export %s --format peft --force --out %s", run, run);
    cr_assert_eq(ts_run(tmp, args, &out), 2, "%s", out);
    cr_assert(strstr(out, "overwrite what it reads"), "%s", out);
    free(out);
    snprintf(evil, sizeof evil, "%s/adapter/adapter_config.json", run);
    cr_assert(ts_exists(evil));
}

Test(export_cli, rank_above_limit_refused, .init = setup, .fini = teardown) {
    char *out, dir[700];
    ts_rmtree(run);
    make_run(32);
    cr_assert_eq(run_cli("export %s --format peft", run, &out), 2, "%s", out);
    cr_assert(strstr(out, "rank r = 32") && strstr(out, "--max-lora-rank"), "%s", out);
    free(out);
    snprintf(dir, sizeof dir, "%s/exports/peft", run);
    cr_assert(!ts_exists(dir));
    cr_assert_eq(run_cli("export %s --format peft --max-rank 64", run, &out), 0, "%s", out);
    free(out);
    cr_assert(ts_exists(dir));
}

Test(export_cli, unknown_format_and_bad_usage, .init = setup, .fini = teardown) {
    char *out;
    cr_assert_eq(run_cli("export %s --format onnx", run, &out), 2, "%s", out);
    cr_assert(strstr(out, "unknown export format 'onnx'"), "%s", out);
    free(out);
    cr_assert_eq(run_cli("export %s", run, &out), 2);
    free(out);
    cr_assert_eq(run_cli("export %s --format merged-safetensors --dtype q8_0", run, &out), 2);
    cr_assert(strstr(out, "cannot be written as Q8_0"), "%s", out);
    free(out);
    cr_assert_eq(run_cli("export %s/nonexistent --format peft", tmp, &out), 2, "%s", out);
    free(out);
    cr_assert_eq(run_cli("inspect %s/recipe.yaml", run, &out), 2, "%s", out);
    free(out);
}

Test(export_cli, convert_both_ways, .init = setup, .fini = teardown) {
    char *out, args[2048], path[700];
    snprintf(args, sizeof args, "convert %s --to hf --out %s/hf --dtype f32 --max-shard-size 400KB",
             model, tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/hf/model.safetensors.index.json", tmp);
    cr_assert(ts_exists(path));
    snprintf(args, sizeof args, "convert %s/hf --to gguf --out %s/back.gguf --dtype q8_0", tmp, tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    /* existing output: refused without --force */
    cr_assert_eq(ts_run(tmp, args, &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "generate --model %s/back.gguf --temperature 0 --max-tokens 8",
             tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "inspect %s/hf", tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    cr_assert(strstr(out, "index:") && strstr(out, "tokenizer:"), "%s", out);
    free(out);
    /* transformers writes model_max_length as 10^30, beyond int64: still read */
    snprintf(path, sizeof path, "%s/hf/tokenizer_config.json", tmp);
    const char *cfg = "{\"model_max_length\": 1000000000000000019884624838656, "
                      "\"chat_template\": \"{{ messages }}\"}";
    cr_assert_eq(lt_write_file_atomic(path, cfg, strlen(cfg)), LT_OK);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    cr_assert(strstr(out, "chat_template present"), "%s", out);
    free(out);
}

/* output.exports: `lathe train` writes each listed format into OUTPUT/exports/<format>/ after
 * adapter/; an unknown format is a recipe error (exit 2) before any work. */
Test(export_cli, train_writes_output_exports, .init = setup, .fini = teardown) {
    char data[1024], args[4096], path[1024], *out;
    ts_fixture(data, sizeof data, "data/identity.json");
    snprintf(args, sizeof args, "tokenize --model %s --input %s --output %s/data --eval-fraction 0.1",
             model, data, tmp);
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    const char *common = "train recipes/ci-stories260k.yaml --set model.path=%s "
                         "--set 'data.train=%s/data/train-*.h5' --set 'data.eval=%s/data/eval-*.h5' "
                         "--set output.dir=%s/trained --set train.max_steps=4 "
                         "--set schedule.warmup_steps=1 --set train.eval_every=0 "
                         "--set train.save_every=0 --set 'output.exports=%s'";
    snprintf(args, sizeof args, common, model, tmp, tmp, tmp, "[gguf-adapter, merged-gguf, pdf]");
    cr_assert_eq(ts_run(tmp, args, &out), 2, "%s", out);
    cr_assert(strstr(out, "pdf"), "%s", out);
    free(out);
    snprintf(args, sizeof args, common, model, tmp, tmp, tmp, "[gguf-adapter, merged-gguf]");
    cr_assert_eq(ts_run(tmp, args, &out), 0, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/trained/exports/gguf-adapter/adapter.gguf", tmp);
    cr_assert(ts_exists(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/trained/exports/merged-gguf/model.gguf", tmp);
    cr_assert(ts_exists(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/trained/adapter/adapter_config.json", tmp);
    cr_assert(ts_exists(path));
}
