/* `lathe generate`: sample text from a GGUF model, optionally with a PEFT adapter, using the
 * KV-cached forward. Only the generated text goes to stdout (followed by one newline), so the
 * output can be piped; everything else goes to stderr. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "generate/generate.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static const char usage_text[] =
    "usage: lathe generate --model PATH [options]\n"
    "\n"
    "Generate text from a base model. Prints only the generated text on stdout.\n"
    "\n"
    "  --model PATH        GGUF file or Hugging Face model directory\n"
    "  --adapter DIR       PEFT LoRA adapter directory (adapter_config.json + safetensors)\n"
    "  --prompt TEXT       prompt (default: empty; generation starts from BOS)\n"
    "  --chat              wrap the prompt as a user turn in the model's chat template\n"
    "  --template NAME     chat template to use with --chat (chatml, alpaca; default: detect)\n"
    "  --system TEXT       system message for --chat\n"
    "  --max-tokens N      tokens to generate (default 256)\n"
    "  --temperature T     0 = greedy (default 0.8)\n"
    "  --top-p P           nucleus sampling mass (default 0.9; 1 = off)\n"
    "  --seed S            sampling seed (default 42)\n"
    "  --quant TYPE        load the base quantized as a QLoRA run did: nf4 (double quant,\n"
    "                      blocks of 64), nf4-nodq, q8_0 or none (default)\n"
    LT_CLI_DEVICE_HELP
    "  -h, --help          this help\n";

int lt_cmd_generate(int argc, char **argv) {
    lt_generate_opts o = lt_generate_defaults();
    const char *model_path = NULL, *adapter = NULL, *template_name = NULL;
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},      {"adapter", required_argument, 0, 'a'},
        {"prompt", required_argument, 0, 'p'},     {"chat", no_argument, 0, 'c'},
        {"template", required_argument, 0, 'T'},   {"system", required_argument, 0, 'S'},
        {"max-tokens", required_argument, 0, 'n'}, {"temperature", required_argument, 0, 't'},
        {"top-p", required_argument, 0, 'P'},      {"seed", required_argument, 0, 's'},
        {"quant", required_argument, 0, 'Q'},      {"device", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    lt_model_opts quant;
    bool quant_set = false;
    lt_device_choice device = LT_DEVICE_CPU;
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'a': adapter = optarg; break;
        case 'p': o.prompt = optarg; break;
        case 'c': o.chat = true; break;
        case 'T': template_name = optarg; break;
        case 'S': o.system = optarg; break;
        case 'n':
            o.max_tokens = (int)strtol(optarg, &end, 10);
            if (*end || o.max_tokens < 1) goto bad_value;
            break;
        case 't':
            o.temperature = strtof(optarg, &end);
            if (*end || !(o.temperature >= 0)) goto bad_value;
            break;
        case 'P':
            o.top_p = strtof(optarg, &end);
            if (*end || !(o.top_p > 0 && o.top_p <= 1)) goto bad_value;
            break;
        case 's':
            o.seed = strtoull(optarg, &end, 10);
            if (*end) goto bad_value;
            break;
        case 'Q':
            if (lt_cli_parse_quant("generate", optarg, &quant)) return 2;
            quant_set = true;
            break;
        case 'D':
            if (lt_cli_parse_device("generate", optarg, &device)) return 2;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!model_path || optind < argc) {
        fprintf(stderr, "lathe generate: %s\n%s",
                !model_path ? "--model FILE is required" : "unexpected argument", usage_text);
        return 2;
    }
    if (template_name) {
        lt_status st = lt_template_from_name(&o.tpl, template_name);
        if (st) return lt_cli_fail(st);
        o.tpl_set = true;
    }

    lt_device dev;
    lt_status st = lt_device_open(device, 0, &dev);
    if (st) return lt_cli_fail(st);
    lt_model *m = NULL;
    lt_tokenizer *tok = NULL;
    st = lt_model_load_opts(&m, &tok, model_path, quant_set ? &quant : NULL);
    if (!st && adapter) st = lt_peft_load(m, adapter);
    if (!st) st = lt_model_to_device(m, dev);
    if (!st) st = lt_generate(m, tok, &o, stdout);
    lt_tokenizer_free(tok);
    lt_model_free(m);
    return st ? lt_cli_fail(st) : 0;
bad_value:
    fprintf(stderr, "lathe generate: bad value '%s' for --%s\n", optarg,
            longopts[0].name ? argv[optind - 1] + 2 : "");
    return 2;
}
