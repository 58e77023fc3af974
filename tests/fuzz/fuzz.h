/* Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built by `make fuzz` with clang,
 * AddressSanitizer and UndefinedBehaviorSanitizer). lathe's parsers read files by path, so each
 * input is written to a file in a per-process directory first; an error status is a correct
 * answer, a sanitizer report, an abort (LT_ASSERT), a hang or an OOM is a finding. */
#ifndef LATHE_FUZZ_H
#define LATHE_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* The harness's scratch directory (/tmp/lathe_fuzz_<pid>), made on first use. */
static inline const char *fz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/lathe_fuzz_%ld", (long)getpid());
        mkdir(dir, 0700);
        lt_log_set_level(LT_LOG_ERROR); /* warnings about the input are expected; keep quiet */
    }
    return dir;
}

/* Write data[0..n) to fz_dir()/name, then extend the file by `pad` zero bytes (a sparse tail:
 * tensor data a header points at, without the fuzzer mutating megabytes); the path in out. */
static inline void fz_write(char *out, size_t cap, const char *name, const uint8_t *data, size_t n,
                            size_t pad) {
    snprintf(out, cap, "%s/%s", fz_dir(), name);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    if (pad && ftruncate(fd, (off_t)(n + pad)) != 0) abort();
    close(fd);
}

#endif
