/* `lathe train RECIPE [--set section.key=value ...] [--resume]`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dist/dist.h"
#include "recipe/recipe.h"
#include "train/train.h"

static const char usage_text[] =
    "usage: lathe train RECIPE.yaml [--set section.key=value ...] [--resume]\n"
    "\n"
    "Fine-tune LoRA adapters on a frozen base model as the recipe says (docs/recipe.md lists\n"
    "every key). Writes the run directory output.dir: recipe.yaml, manifest.json,\n"
    "metrics.jsonl, checkpoints/, and the final PEFT adapter in adapter/.\n"
    "\n"
    "  --set KEY=VALUE   override a recipe key, e.g. --set optim.lr=1e-4 (repeatable)\n"
    "  --resume          continue from the newest checkpoint in output.dir\n"
    "  -h, --help        this help\n"
    "\n"
    "Data-parallel: `mpirun -np N lathe train RECIPE` or `srun lathe train RECIPE` runs N ranks\n"
    "that train as one job (docs/distributed.md); rank 0 writes the run directory.\n"
    "\n"
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage or recipe, 3 bad data or model file,\n"
    "130 interrupted (a checkpoint was written first; continue with --resume).\n";

int lt_cmd_train(int argc, char **argv) {
    static const struct option longopts[] = {{"set", required_argument, 0, 's'},
                                             {"resume", no_argument, 0, 'r'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *sets[256];
    int n_sets = 0;
    lt_train_opts o = {0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (n_sets == (int)(sizeof sets / sizeof *sets)) {
                fprintf(stderr, "lathe train: too many --set options\n");
                return 2;
            }
            sets[n_sets++] = optarg;
            break;
        case 'r': o.resume = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "lathe train: expected exactly one recipe file\n%s", usage_text);
        return 2;
    }
    /* ranks from the launcher; MPI only when one started us (a plain run is one rank) */
    lt_status st = lt_dist_init();
    const lt_dist *d = lt_dist_self();
    if (st) {
        if (d->mpi) lt_dist_abort(lt_status_exit_code(st), lt_error_message());
        return lt_cli_fail(st);
    }
    if (d->rank != 0) lt_log_set_level(LT_LOG_WARN); /* rank 0 tells the story once */
    lt_recipe r;
    st = lt_recipe_load(&r, argv[optind]);
    for (int i = 0; !st && i < n_sets; i++) st = lt_recipe_set(&r, sets[i]);
    if (!st) st = lt_recipe_validate(&r);
    if (!st) st = lt_train_run(&r, &o);
    lt_recipe_free(&r);
    /* an interruption and a gate decision are reached by every rank together; any other error
     * may be this rank's alone while the others wait in a collective: end the whole job */
    if (d->world > 1 && st && st != LT_ERR_INTERRUPTED && st != LT_ERR_GATE)
        lt_dist_abort(lt_status_exit_code(st), lt_error_message());
    /* every rank exits with the code; rank 0 alone says why */
    int code = !st ? 0 : d->rank == 0 ? lt_cli_fail(st) : lt_status_exit_code(st);
    lt_dist_finalize();
    return code;
}
