/* Gradient all-reduce benchmark: the time of lt_dist_allreduce_grads (the one all-reduce a
 * data-parallel training step makes) on buffers of the sizes that matter, one JSON line each.
 *
 * usage: mpirun -np N bench_dist [FLOATS ...]   (default: 8960 = the CI recipe's stories260K
 *        adapter, 4,587,520 = SmolLM2-135M r=16 on all seven projections, 41,943,040 =
 *        Llama-3-8B r=16 on all seven projections)
 *
 * Each size: 2 warm-up calls, then REPS timed calls, each after a barrier so that the figure is
 * the all-reduce itself and not the wait for a slower rank (inside `lathe train` the all-reduce
 * also absorbs that wait). Figures from rank 0: mean and min ms, and the algorithm bandwidth
 * bytes / time (NCCL's "algbw"; a ring moves 2 (N-1)/N times that per rank). Without a launcher
 * it is one rank and the all-reduce is the identity (near 0 ms, bandwidth printed as 0). */
#include <stdio.h>
#include <stdlib.h>

#include "dist/dist.h"

#define REPS 10

int main(int argc, char **argv) {
    if (lt_dist_init()) {
        fprintf(stderr, "bench_dist: %s\n", lt_error_message());
        return 1;
    }
    const lt_dist *d = lt_dist_self();
    static const int64_t defaults[] = {8960, 4587520, 41943040};
    int n_sizes = argc > 1 ? argc - 1 : 3;
    for (int s = 0; s < n_sizes; s++) {
        int64_t n = argc > 1 ? strtoll(argv[s + 1], NULL, 10) : defaults[s];
        if (n <= 0) {
            fprintf(stderr, "bench_dist: '%s' is not a positive number of floats\n", argv[s + 1]);
            lt_dist_abort(2, "bad argument");
        }
        float *buf = lt_alloc_big((size_t)n * sizeof(float), "the all-reduce buffer");
        if (!buf) lt_dist_abort(1, lt_error_message());
        for (int64_t i = 0; i < n; i++) buf[i] = 1e-3f * (float)(i % 1000);
        double sum = 0, best = 1e30, t;
        for (int r = -2; r < REPS; r++) {
            if (lt_dist_barrier() || lt_dist_allreduce_grads(buf, n, &t))
                lt_dist_abort(1, lt_error_message());
            if (r < 0) continue;
            sum += t;
            if (t < best) best = t;
        }
        double mean = sum / REPS; /* rank 0's: after the barrier every rank waits alike */
        if (d->rank == 0)
            printf("{\"bench\": \"allreduce\", \"ranks\": %d, \"floats\": %lld, \"mib\": %.2f, "
                   "\"ms_mean\": %.3f, \"ms_min\": %.3f, \"algbw_gbs\": %.2f}\n", d->world,
                   (long long)n, n * 4.0 / 1048576.0, 1e3 * mean, 1e3 * best,
                   d->world > 1 && mean > 0 ? n * 4.0 / mean / 1e9 : 0.0); /* 1 rank: none */
        fflush(stdout);
        free(buf);
    }
    lt_dist_finalize();
    return 0;
}
