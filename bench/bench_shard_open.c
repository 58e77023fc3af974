/* What the shard integrity check costs at load (issue 9 §3): for each shard given, the best of
 * R opens (page cache warm) of
 *   hdf5_only  lt_shard_open_hdf5: HDF5 open + full validation in this process, no check
 *              (what lathe did before the check existed)
 *   sidecar    lt_shard_open with the NAME.h5.sha256 that `lathe tokenize` writes: SHA-256 of the
 *              file, then the in-process open
 *   child      lt_shard_open without a sidecar (a foreign shard): validation in a forked child,
 *              then again in this process
 * printed as one JSON line per shard with the file size and MB/s.
 * usage: bench_shard_open SHARD.h5... [--repeat R]   (default R = 5; sidecars are moved aside
 * and restored for the `child` figure) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data/shard_impl.h"

typedef lt_status (*open_fn)(lt_shard **, const char *, const lt_shard_expect *);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best time of r opens, or -1 when an open fails (the message is printed). */
static double best_of(open_fn f, const char *path, int r) {
    double best = 1e30;
    for (int i = 0; i < r; i++) {
        lt_shard *s;
        double t0 = now();
        lt_status st = f(&s, path, NULL);
        double t = now() - t0;
        if (st) {
            fprintf(stderr, "%s\n", lt_error_message());
            return -1;
        }
        lt_shard_close(s);
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int r = 5, n = 0;
    const char *paths[256];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc) r = atoi(argv[++i]);
        else if (n < 256) paths[n++] = argv[i];
    }
    if (n == 0 || r < 1) {
        fprintf(stderr, "usage: bench_shard_open SHARD.h5... [--repeat R]\n");
        return 2;
    }
    lt_log_set_level(LT_LOG_ERROR);
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0) {
            perror(paths[i]);
            return 1;
        }
        char side[4200], aside[4210];
        snprintf(side, sizeof side, "%s" LT_SHARD_SIDECAR_EXT, paths[i]);
        snprintf(aside, sizeof aside, "%s.aside", side);
        bool has_side = stat(side, &sb) == 0;
        stat(paths[i], &sb);
        double plain = best_of(lt_shard_open_hdf5, paths[i], r);
        double with_side = has_side ? best_of(lt_shard_open, paths[i], r) : -1;
        if (has_side && rename(side, aside) != 0) return 1;
        double child = best_of(lt_shard_open, paths[i], r);
        if (has_side && rename(aside, side) != 0) return 1;
        double mb = (double)sb.st_size / 1e6;
        printf("{\"bench\": \"shard_open\", \"shard\": \"%s\", \"bytes\": %lld, \"repeat\": %d, "
               "\"hdf5_only_s\": %.4f, \"sidecar_s\": %.4f, \"child_s\": %.4f, "
               "\"hdf5_only_MB_per_s\": %.0f, \"sidecar_MB_per_s\": %.0f, "
               "\"child_MB_per_s\": %.0f}\n",
               paths[i], (long long)sb.st_size, r, plain, with_side, child, mb / plain,
               with_side > 0 ? mb / with_side : -1, mb / child);
    }
    return 0;
}
