/* `lathe export`: write a trained adapter in a serving format (src/export/export.h) — from a run
 * directory (RUN_DIR/adapter on the base named by RUN_DIR/recipe.yaml) or from --adapter and
 * --model directly. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "export/export.h"
#include "recipe/recipe.h"

static const char usage_text[] =
    "usage: lathe export RUN_DIR --format FORMAT [options]\n"
    "       lathe export --adapter DIR --model PATH --format FORMAT --out DIR [options]\n"
    "\n"
    "Write the adapter of a run (RUN_DIR/adapter on the base model of RUN_DIR/recipe.yaml) in a\n"
    "format an inference server loads (docs/exports.md):\n"
    "  peft                 PEFT adapter (vLLM, TGI, PEFT): adapter_config.json + safetensors\n"
    "  gguf-adapter         llama.cpp LoRA adapter: adapter.gguf (llama-server --lora)\n"
    "  merged-safetensors   the base with the adapter merged in, HF directory (sharded)\n"
    "  merged-gguf          the base with the adapter merged in, model.gguf\n"
    "\n"
    "  --format FORMAT        one of the above (required)\n"
    "  --out DIR              output directory (default RUN_DIR/exports/FORMAT)\n"
    "  --dtype T              f32, f16, bf16, q8_0 (defaults: peft f32, gguf-adapter f16,\n"
    "                         merged-safetensors bf16, merged-gguf f16; q8_0 only for GGUF)\n"
    "  --max-shard-size SIZE  merged-safetensors shard budget, e.g. 2GB (default), 500MB\n"
    "  --max-rank N           peft: refuse ranks above N (default 16, vLLM's --max-lora-rank\n"
    "                         default; 0 = no check)\n"
    "  --name STEM            file name stem of GGUF outputs (default adapter / model)\n"
    "  --force                replace an existing output directory\n"
    "  --adapter DIR          PEFT adapter to export (instead of RUN_DIR)\n"
    "  --model PATH           its base model: GGUF file or HF directory (with --adapter)\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage, 3 bad model or adapter file.\n";

/* Absolute, symlink-free form of `path` when it or its parent exists, else `path` itself (then
 * it cannot hold an existing input anyway). */
static void resolve(const char *path, char *out) {
    if (realpath(path, out)) return;
    char dir[PATH_MAX], parent[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash) *slash = 0;
    size_t np, nb = strlen(base);
    if (realpath(slash ? (dir[0] ? dir : "/") : ".", parent) &&
        (np = strlen(parent)) + nb + 2 <= PATH_MAX) {
        memcpy(out, parent, np);
        out[np] = '/';
        memcpy(out + np + 1, base, nb + 1);
        return;
    }
    snprintf(out, PATH_MAX, "%s", path);
}

/* `inner` is `outer` or lies below it. */
static bool within(const char *inner, const char *outer) {
    size_t n = strlen(outer);
    return !strncmp(inner, outer, n) && (inner[n] == 0 || inner[n] == '/' || !strcmp(outer, "/"));
}

int lt_cmd_export(int argc, char **argv) {
    static const struct option longopts[] = {
        {"format", required_argument, 0, 'f'},  {"out", required_argument, 0, 'o'},
        {"dtype", required_argument, 0, 'd'},   {"max-shard-size", required_argument, 0, 's'},
        {"max-rank", required_argument, 0, 'r'}, {"name", required_argument, 0, 'n'},
        {"force", no_argument, 0, 'F'},          {"adapter", required_argument, 0, 'a'},
        {"model", required_argument, 0, 'm'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *format = NULL, *out = NULL, *adapter = NULL, *model = NULL;
    lt_export_opts o = lt_export_defaults(LT_EXPORT_PEFT);
    lt_status st;
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'o': out = optarg; break;
        case 'd':
            if ((st = lt_export_dtype_from_name(&o.dtype, optarg))) return lt_cli_fail(st);
            break;
        case 's':
            if ((st = lt_export_parse_size(optarg, &o.max_shard_bytes))) return lt_cli_fail(st);
            break;
        case 'r': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 1 << 20) {
                fprintf(stderr, "lathe export: --max-rank '%s' is not a rank >= 0\n", optarg);
                return 2;
            }
            o.max_rank = (int)v;
            break;
        }
        case 'n': o.name = optarg; break;
        case 'F': o.force = true; break;
        case 'a': adapter = optarg; break;
        case 'm': model = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    const char *run_dir = optind < argc ? argv[optind] : NULL;
    if (optind + (run_dir ? 1 : 0) != argc) {
        fprintf(stderr, "lathe export: expected one run directory\n%s", usage_text);
        return 2;
    }
    if (!format) {
        fprintf(stderr, "lathe export: --format is required\n%s", usage_text);
        return 2;
    }
    if ((st = lt_export_format_from_name(&o.format, format))) return lt_cli_fail(st);
    if (!run_dir == !(adapter && model) || (!run_dir && !out) || (run_dir && (adapter || model))) {
        fprintf(stderr, "lathe export: give either RUN_DIR, or --adapter, --model and --out\n%s",
                usage_text);
        return 2;
    }

    char adapter_buf[PATH_MAX], out_buf[PATH_MAX + 64], path[PATH_MAX + 64];
    /* zeroed, not lt_recipe_defaults: lt_recipe_load sets the defaults itself (without freeing
     * what is there), and a zeroed recipe frees as nothing when there is no RUN_DIR */
    lt_recipe r;
    memset(&r, 0, sizeof r);
    if (run_dir) {
        snprintf(path, sizeof path, "%s/recipe.yaml", run_dir);
        if ((st = lt_recipe_load(&r, path))) {
            lt_recipe_free(&r);
            lt_error_wrap(LT_ERR_USAGE, "'%s' is not a run directory of lathe train", run_dir);
            return lt_cli_fail(LT_ERR_USAGE);
        }
        model = r.model.path;
        snprintf(adapter_buf, sizeof adapter_buf, "%s/adapter", run_dir);
        adapter = adapter_buf;
        if (!out) {
            snprintf(out_buf, sizeof out_buf, "%s/exports/%s", run_dir, format);
            out = out_buf;
        }
    }
    /* --force replaces the output directory: it must not hold what this export reads */
    char out_real[PATH_MAX], in_real[PATH_MAX];
    resolve(out, out_real);
    const char *inputs[3] = {adapter, model, run_dir};
    for (int i = 0; i < 3; i++) {
        if (!inputs[i]) continue;
        resolve(inputs[i], in_real);
        if (within(in_real, out_real)) {
            st = lt_error_set(LT_ERR_USAGE, "output '%s' is or contains the input '%s'; "
                              "exporting there would overwrite what it reads; hint: --out "
                              "another path", out, inputs[i]);
            lt_recipe_free(&r);
            return lt_cli_fail(st);
        }
    }
    struct stat sb;
    if (!o.force && stat(out, &sb) == 0) {
        lt_recipe_free(&r);
        st = lt_error_set(LT_ERR_USAGE, "output '%s' already exists; hint: pass --force to "
                          "replace it, or --out another path", out);
        return lt_cli_fail(st);
    }

    lt_export_src src;
    lt_model *m = NULL;
    /* a run's base loads as training loaded it: a QLoRA adapter merges onto deq(NF4 base) */
    lt_model_opts qo = lt_recipe_model_opts(&r);
    if (!(st = lt_export_src_load(&src, &m, model, run_dir ? &qo : NULL))) {
        src.base_name = model;
        if (!(st = lt_peft_load(m, adapter))) st = lt_export_write(&src, out, &o);
        lt_export_src_close(&src);
        lt_model_free(m);
    }
    lt_recipe_free(&r);
    if (st) return lt_cli_fail(st);
    printf("%s\n", out);
    return 0;
}
