/* Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_ semantics); see optim.h.
 * Invariant: the norm's reduction order depends only on n, never on the thread count. */
#include "optim.h"

#include <math.h>

/* The sum of squares is cut into at most NORM_CHUNKS contiguous chunks of at least
 * NORM_MIN_CHUNK elements; each chunk is summed in double by one thread, then the chunk sums are
 * added in order. Fixed partition => same bits for any OMP_NUM_THREADS. */
#define NORM_CHUNKS 256
#define NORM_MIN_CHUNK 4096

float lt_grad_global_norm(const float *g, int64_t n) {
    LT_ASSERT(n >= 0);
    if (n == 0) return 0.0f;
    LT_ASSERT(g);
    int64_t chunk = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
    if (chunk < NORM_MIN_CHUNK) chunk = NORM_MIN_CHUNK;
    const int nchunks = (int)((n + chunk - 1) / chunk);
    double part[NORM_CHUNKS];

#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int c = 0; c < nchunks; c++) {
        const int64_t lo = (int64_t)c * chunk;
        const int64_t hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        part[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < nchunks; c++) total += part[c];
    return (float)sqrt(total); /* NaN/Inf in g => NaN/Inf here, by design */
}

float lt_grad_clip(float *g, int64_t n, float max_norm, float norm) {
    LT_ASSERT(n >= 0);
    if (!(max_norm > 0.0f) || !isfinite(norm) || !(norm > max_norm) || n == 0) return 1.0f;
    LT_ASSERT(g);
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), applied when it is below 1. */
    const float scale = (float)((double)max_norm / ((double)norm + 1e-6));
#pragma omp parallel for schedule(static) if (n >= 32768)
    for (int64_t i = 0; i < n; i++) g[i] *= scale;
    return scale;
}
