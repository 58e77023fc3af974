/* One run at a time per output (issue 11): a nightly job that overruns must not meet the next
 * night's. flock(2) on a lock file named after what the runs would share — the publish directory
 * when there is one (each night has its own output.dir), else output.dir: the kernel drops the
 * lock when the holder dies, so a killed run never leaves a lock that blocks; the file keeps the
 * holder's PID and start time for the message, and a leftover from a dead holder is reported
 * when taken over. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static void lock_path(const char *key, char *out, size_t cap) {
    char hex[65], dir[PATH_MAX];
    lt_sha256_hex(key, strlen(key), hex);
    lt_cache_dir(dir, sizeof dir, "locks");
    snprintf(out, cap, "%s/%.16s.lock", dir, hex);
}

lt_status lt_run_lock(const char *key, const char *recipe, int *fd_out) {
    *fd_out = -1;
    char path[PATH_MAX + 64], dir[PATH_MAX + 64];
    lock_path(key, path, sizeof path);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    lt_status st = lt_mkdir_p(dir);
    if (st) return st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return lt_error_set(LT_ERR_IO, "cannot open the run lock '%s': %s", path,
                            strerror(errno));
    char prev[512] = {0};
    ssize_t got = pread(fd, prev, sizeof prev - 1, 0);
    if (got > 0) prev[got] = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            char *nl = strchr(prev, '\n');
            if (nl) *nl = 0;
            return lt_error_set(LT_ERR_USAGE, "%s: another lathe is training into %s (%s; lock "
                                "%s); hint: wait for it to finish, or stop it — two runs would "
                                "overlap", recipe, key, prev[0] ? prev : "holder unknown", path);
        }
        return lt_error_set(LT_ERR_IO, "cannot lock '%s': %s", path, strerror(e));
    }
    if (prev[0]) {
        char *nl = strchr(prev, '\n');
        if (nl) *nl = 0;
        lt_info("taking over the run lock of %s from a run that is gone (%s)", key, prev);
    }
    char now[40], text[PATH_MAX + 128];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(text, sizeof text, "pid %ld, started %s\n%s\n", (long)getpid(), now,
                     recipe);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        lt_warn("cannot record the holder in the run lock %s", path);
    *fd_out = fd;
    return LT_OK;
}

void lt_run_unlock(int fd) {
    if (fd < 0) return;
    /* an empty file: no holder to report; if truncating fails, the next run reports the old
     * holder as gone, which is still true */
    (void)!ftruncate(fd, 0);
    close(fd); /* drops the flock */
}
