/*
 * Shard integrity before HDF5 sees the bytes (issue 9, docs/shards.md "Damaged files").
 * libhdf5 can read out of bounds or crash on a damaged file (seen: 1.10.8, H5Aexists on mangled
 * attribute messages), and we cannot fix it there. So:
 *  - `lathe tokenize` writes NAME-NNNNN.h5.sha256 ("<hex>  NAME-NNNNN.h5\n", sha256sum's format)
 *    beside each shard; the reader hashes the shard and compares before opening it;
 *  - a shard without that file (h5py, another producer) is opened and validated first in a forked
 *    child; a crash there becomes an error naming the shard, and the training process only opens
 *    files the child read through cleanly.
 */
#include "shard_impl.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIDECAR_MAX 4096 /* bytes read from a .sha256 file: one line is ~80 */

static void sidecar_path(const char *shard, char *out, size_t cap) {
    snprintf(out, cap, "%s" LT_SHARD_SIDECAR_EXT, shard);
}

lt_status lt_shard_sidecar_write(const char *shard_path, const void *data, size_t n) {
    char hex[65], side[PATH_MAX + 16], line[PATH_MAX + 80];
    lt_sha256_hex(data, n, hex);
    const char *base = strrchr(shard_path, '/');
    base = base ? base + 1 : shard_path;
    int len = snprintf(line, sizeof line, "%s  %s\n", hex, base);
    sidecar_path(shard_path, side, sizeof side);
    return lt_write_file_atomic(side, line, (size_t)len);
}

lt_status lt_shard_sidecar_read(const char *shard, bool *found, char want[65]) {
    char side[PATH_MAX + 16];
    sidecar_path(shard, side, sizeof side);
    struct stat sb;
    *found = false;
    if (stat(side, &sb) != 0) {
        if (errno == ENOENT) return LT_OK;
        return lt_error_set(LT_ERR_DATA, "%s: cannot stat '%s': %s", shard, side,
                            strerror(errno));
    }
    *found = true;
    if (!S_ISREG(sb.st_mode) || sb.st_size > SIDECAR_MAX)
        return lt_error_set(LT_ERR_DATA, "%s: checksum file '%s' is not a small regular file "
                            "(hint: delete it, or re-create the shards with `lathe tokenize`)",
                            shard, side);
    char *text;
    size_t len;
    lt_status st = lt_read_file(side, &text, &len);
    if (st) return lt_error_set(LT_ERR_DATA, "%s: checksum file '%s' unreadable", shard, side);
    bool ok = len >= 64;
    for (size_t i = 0; ok && i < 64; i++) {
        char c = text[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        want[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    want[64] = 0;
    ok = ok && (len == 64 || text[64] == ' ' || text[64] == '\n');
    free(text);
    if (!ok)
        return lt_error_set(LT_ERR_DATA, "%s: checksum file '%s' does not start with 64 hex "
                            "digits (hint: it is sha256sum's format; re-create the shards with "
                            "`lathe tokenize`)", shard, side);
    return LT_OK;
}

/* Open and validate the shard in a forked child. The child reports its verdict on a pipe: a
 * status word, then the error message; a child that dies or exits without writing crashed. */
static lt_status check_in_child(const char *path, const lt_shard_expect *ex) {
    int fds[2];
    if (pipe(fds) != 0)
        return lt_error_set(LT_ERR_IO, "%s: cannot create a pipe to check the shard: %s", path,
                            strerror(errno));
    fflush(NULL); /* buffered output would otherwise be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return lt_error_set(LT_ERR_IO, "%s: cannot fork to check the shard: %s", path,
                            strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGINT, SIG_DFL);  /* the parent's handlers would only set its flags */
        signal(SIGTERM, SIG_DFL);
        lt_shard *s = NULL;
        int32_t code = (int32_t)lt_shard_open_hdf5(&s, path, ex);
        const char *msg = code ? lt_error_message() : "";
        size_t n = strlen(msg);
        ssize_t w = write(fds[1], &code, sizeof code);
        if (w == (ssize_t)sizeof code && n) w = write(fds[1], msg, n);
        _exit(0); /* no atexit handlers: HDF5's would run on the parent's copied state */
    }
    close(fds[1]);
    char buf[2048];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (r > 0 && (got += (size_t)r) < sizeof buf - 1) continue;
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    close(fds[0]);
    buf[got] = 0;
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    int32_t code = -1;
    if (got >= sizeof code) memcpy(&code, buf, sizeof code);
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && code == LT_OK) return LT_OK;
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && code > LT_OK && code < LT_ERR_INTERRUPTED)
        return lt_error_set((lt_status)code, "%s", buf + sizeof code);
    char how[64];
    if (WIFSIGNALED(wst))
        snprintf(how, sizeof how, "signal %d, %s", WTERMSIG(wst), strsignal(WTERMSIG(wst)));
    else
        snprintf(how, sizeof how, "exit status %d", WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    return lt_error_set(LT_ERR_DATA, "%s: HDF5 crashed reading this shard (%s, in a checking "
                        "process); the file is damaged (hint: re-create it; shards written by "
                        "`lathe tokenize` carry a .sha256 file and are checked by checksum "
                        "instead)", path, how);
}

lt_status lt_shard_check(const char *path, const lt_shard_expect *ex, char sha256[65]) {
    bool found;
    char want[65];
    lt_status st = lt_shard_sidecar_read(path, &found, want);
    if (st) return st;
    if (!found) {
        sha256[0] = 0;
        return check_in_child(path, ex);
    }
    if ((st = lt_sha256_file(path, sha256)))
        return lt_error_set(LT_ERR_DATA, "%s: cannot read the shard to verify its checksum", path);
    if (strcmp(want, sha256))
        return lt_error_set(LT_ERR_DATA, "%s: SHA-256 is %s but its .sha256 file says %s: the "
                            "shard is damaged or was changed after `lathe tokenize` wrote it "
                            "(hint: re-create the shards; a shard edited on purpose needs its "
                            ".sha256 file deleted)", path, sha256, want);
    return LT_OK;
}
