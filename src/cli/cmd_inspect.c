/* `lathe inspect PATH...`: readable summaries (export/ lt_inspect) on stdout. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "export/export.h"

static const char usage_text[] =
    "usage: lathe inspect PATH [PATH ...]\n"
    "\n"
    "Summarize a GGUF file (architecture, metadata, tensors, parameters, tokenizer), a\n"
    "safetensors file (tensors, dtypes, metadata), an HDF5 token shard (attributes, counts),\n"
    "a Hugging Face model directory (config, index, tokenizer), a PEFT adapter directory\n"
    "(config, rank, targets) or a run directory (manifest, last metrics, checkpoints), with\n"
    "the SHA-256 of every file described.\n"
    "\n"
    "Exit codes: 0 done, 2 bad usage or unknown kind of file, 3 unreadable model or data file.\n";

int lt_cmd_inspect(int argc, char **argv) {
    static const struct option longopts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 0;
        }
        fputs(usage_text, stderr);
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "lathe inspect: expected a path\n%s", usage_text);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        if (i > optind) putchar('\n');
        lt_status st = lt_inspect(argv[i], stdout);
        if (st) return lt_cli_fail(st);
    }
    return 0;
}
