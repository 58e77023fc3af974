/* Checked allocation, clocks and resource usage. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void oom(size_t n) {
    fprintf(stderr, "lathe: out of host memory allocating %zu bytes\n", n);
    abort();
}

void *lt_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *lt_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *lt_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *lt_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = lt_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void *lt_alloc_big(size_t n, const char *what) {
    void *p = NULL;
    size_t rounded = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        lt_error_set(LT_ERR_OOM, "out of host memory: %s needs %.1f MiB; hint: lower "
                     "train.micro_batch_size or data.seq_len", what, n / 1048576.0);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

double lt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

size_t lt_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

void lt_tune_thread_env(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default policy */
}
