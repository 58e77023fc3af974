/*
 * gpu_bundle_main — the one executable of `make gpu-bundle`: lathe's CLI, every tests/cuda
 * program and bench_gpu linked together, run by the name it is called as (argv[0]'s basename),
 * like busybox. The bundle's bin/test_cuda_ops and bin/bench_gpu are symbolic links to bin/lathe.
 *
 * Why: the bundle links the Debian libraries statically (DESIGN.md §9) and OpenBLAS alone is
 * ~30 MB of kernels for every x86 CPU; three separate executables would not fit in 64 MiB, and
 * libhdf5.a is not position-independent, so a shared liblathe cannot hold it either.
 *
 * The Makefile compiles each program's main source with -Dmain=lt_mc_<name>_main and passes the
 * list as LT_MC_PROGS = X(lathe) X(test_cuda_ops) X(bench_gpu) ...; every such main takes
 * (int argc, char **argv). A name that is not in the list runs lathe (so a renamed copy of the
 * binary still behaves as lathe). LATHE_MULTICALL=<name> in the environment overrides argv[0], for
 * launchers that may not keep the link's name (gpu_check.sh sets it under compute-sanitizer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LT_MC_PROGS
#error "LT_MC_PROGS (the program list) comes from the Makefile's gpu-bundle rules"
#endif

#define X(name) int lt_mc_##name##_main(int argc, char **argv);
LT_MC_PROGS
#undef X

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
} progs[] = {
#define X(name) {#name, lt_mc_##name##_main},
    LT_MC_PROGS
#undef X
};

int main(int argc, char **argv) {
    const char *base = argc > 0 && argv[0] ? argv[0] : "lathe", *slash = strrchr(base, '/');
    if (slash) base = slash + 1;
    const char *forced = getenv("LATHE_MULTICALL");
    if (forced && *forced) base = forced;
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++)
        if (!strcmp(base, progs[i].name)) return progs[i].main(argc, argv);
    return lt_mc_lathe_main(argc, argv);
}
