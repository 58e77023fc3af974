/* Option parsing shared by several subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

int lt_cli_parse_quant(const char *cmd, const char *arg, lt_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->double_quant = true; /* QLoRA's setting, and the recipe's default */
    o->block_size = 64;
    o->progress = true;
    if (!strcmp(arg, "none")) o->type = LT_QUANT_NONE;
    else if (!strcmp(arg, "nf4")) o->type = LT_QUANT_NF4;
    else if (!strcmp(arg, "nf4-nodq")) o->type = LT_QUANT_NF4, o->double_quant = false;
    else if (!strcmp(arg, "q8_0")) o->type = LT_QUANT_Q8_0;
    else {
        fprintf(stderr, "lathe %s: --quant takes none, nf4, nf4-nodq or q8_0, not '%s'\n", cmd,
                arg);
        return -1;
    }
    return 0;
}

int lt_cli_parse_device(const char *cmd, const char *arg, lt_device_choice *out) {
    for (int k = 0; lt_device_choice_names[k]; k++)
        if (!strcmp(lt_device_choice_names[k], arg)) {
            *out = (lt_device_choice)k;
            return 0;
        }
    fprintf(stderr, "lathe %s: --device takes auto, cpu or cuda, not '%s'\n", cmd, arg);
    return -1;
}
