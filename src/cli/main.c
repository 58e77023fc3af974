/* lathe — command-line entry point: dispatches to the subcommands in the table below. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "dist/dist.h"

static const lt_command commands[] = {
    /* {"name", lt_cmd_name, "one-line summary"}, one row per subcommand */
    {"train", lt_cmd_train, "fine-tune LoRA adapters as a YAML recipe says"},
    {"generate", lt_cmd_generate, "generate text from a GGUF model (+ optional PEFT adapter)"},
    {"eval", lt_cmd_eval, "score a model (+ adapter) on token shards, or dump prompt logits"},
    {"tokenize", lt_cmd_tokenize, "tokenize datasets into HDF5 token shards"},
    {"export", lt_cmd_export, "write an adapter as PEFT, GGUF adapter, merged safetensors or GGUF"},
    {"convert", lt_cmd_convert, "convert a base model between GGUF and a Hugging Face directory"},
    {"quantize", lt_cmd_quantize, "quantize a base to NF4 and save it as a bitsandbytes 4-bit directory"},
    {"chat-render", lt_cmd_chat_render, "render a chat template for a conversation, as transformers does"},
    {"inspect", lt_cmd_inspect, "summarize a GGUF, safetensors, shard, model, adapter or run"},
    {"report", lt_cmd_report, "one self-contained HTML page of runs: charts, manifests, gates"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
    fprintf(out, "usage: lathe <command> [options]   (lathe <command> --help for details)\n\n"
                 "commands:\n");
    for (const lt_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
}

int lt_cli_fail(int status) {
    fprintf(stderr, "lathe: %s\n", lt_error_message());
    return lt_status_exit_code((lt_status)status);
}

int main(int argc, char **argv) {
    lt_tune_thread_env(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* only `train` is data-parallel: any other command started as several ranks would do the
     * same work N times and write the same outputs */
    if (strcmp(argv[1], "train") && lt_dist_announced_world() > 1) {
        fprintf(stderr, "lathe %s: started by a launcher as one of %ld ranks, but only `lathe "
                "train` runs data-parallel; hint: run `lathe %s` as one process (without "
                "mpirun/srun)\n", argv[1], lt_dist_announced_world(), argv[1]);
        return 2;
    }
    for (const lt_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "lathe: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
