/* `lathe convert SRC --to hf|gguf --out PATH`: model format conversion (export/ lt_convert). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "export/export.h"

static const char usage_text[] =
    "usage: lathe convert SRC --to hf|gguf --out PATH [options]\n"
    "\n"
    "Convert a base model between a GGUF file and a Hugging Face directory (config.json,\n"
    "safetensors, tokenizer.json). GGUF -> HF dequantizes the weights and un-permutes Q/K rows;\n"
    "HF -> GGUF permutes them back for llama.cpp. SRC may be either kind for either target.\n"
    "\n"
    "  --to hf|gguf           target format (required)\n"
    "  --out PATH             output directory (hf) or file (gguf) (required)\n"
    "  --dtype T              hf: f32, f16, bf16 (default bf16); gguf: f32, f16, bf16, q8_0\n"
    "                         (default f16; norms stay f32)\n"
    "  --max-shard-size SIZE  hf shard budget, e.g. 2GB (default), 500MB\n"
    "  --force                replace an existing output\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage, 3 bad model file.\n";

int lt_cmd_convert(int argc, char **argv) {
    static const struct option longopts[] = {
        {"to", required_argument, 0, 't'},    {"out", required_argument, 0, 'o'},
        {"dtype", required_argument, 0, 'd'}, {"max-shard-size", required_argument, 0, 's'},
        {"force", no_argument, 0, 'F'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *to_name = NULL, *out = NULL;
    lt_dtype dtype = LT_DTYPE_COUNT;
    int64_t shard = LT_EXPORT_DEFAULT_SHARD_BYTES;
    bool force = false;
    lt_status st;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': to_name = optarg; break;
        case 'o': out = optarg; break;
        case 'd':
            if ((st = lt_export_dtype_from_name(&dtype, optarg))) return lt_cli_fail(st);
            break;
        case 's':
            if ((st = lt_export_parse_size(optarg, &shard))) return lt_cli_fail(st);
            break;
        case 'F': force = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc - 1 || !to_name || !out) {
        fprintf(stderr, "lathe convert: expected SRC, --to and --out\n%s", usage_text);
        return 2;
    }
    lt_convert_to to;
    if (!strcmp(to_name, "hf")) to = LT_CONVERT_TO_HF;
    else if (!strcmp(to_name, "gguf")) to = LT_CONVERT_TO_GGUF;
    else {
        fprintf(stderr, "lathe convert: --to '%s' is not hf or gguf\n", to_name);
        return 2;
    }
    if (dtype == LT_DTYPE_COUNT) dtype = to == LT_CONVERT_TO_HF ? LT_BF16 : LT_F16;
    if ((st = lt_convert(argv[optind], to, out, dtype, shard, force))) return lt_cli_fail(st);
    printf("%s\n", out);
    return 0;
}
