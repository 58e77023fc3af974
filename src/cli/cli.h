/*
 * cli — `lathe` subcommands. Each takes the arguments after its name (argv[0] is the
 * subcommand) and returns the process exit code (DESIGN.md §7: 0 done, 1 runtime failure,
 * 2 bad usage or recipe, 3 bad data or model file, 130 interrupted).
 */
#ifndef LATHE_CLI_H
#define LATHE_CLI_H

#include "core/device.h"
#include "model/model.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} lt_command;

int lt_cmd_train(int argc, char **argv);
int lt_cmd_tokenize(int argc, char **argv);
int lt_cmd_generate(int argc, char **argv);
int lt_cmd_eval(int argc, char **argv);
int lt_cmd_export(int argc, char **argv);
int lt_cmd_convert(int argc, char **argv);
int lt_cmd_inspect(int argc, char **argv);
int lt_cmd_report(int argc, char **argv);
int lt_cmd_quantize(int argc, char **argv);
int lt_cmd_chat_render(int argc, char **argv);

/* --quant TYPE for commands that load a base as a QLoRA run did: none, nf4 (double quant,
 * blocks of 64: the recipe defaults), nf4-nodq, q8_0; all seven projections. An unknown TYPE
 * prints "lathe CMD: ..." on stderr and returns -1 (exit 2). */
int lt_cli_parse_quant(const char *cmd, const char *arg, lt_model_opts *o);
/* --device auto|cpu|cuda into *out; -1 after printing the accepted values. */
int lt_cli_parse_device(const char *cmd, const char *arg, lt_device_choice *out);
/* The usage lines of --device, as eval and generate print them. */
#define LT_CLI_DEVICE_HELP                                                                       \
    "  --device D          cpu (default), cuda (exit 2 with the driver's reason when no GPU\n"   \
    "                      is usable) or auto (cuda when a GPU is visible)\n"

/* Print "lathe: <message>" for the current error and return its exit code. */
int lt_cli_fail(int status);

#endif
