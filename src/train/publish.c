/* output.publish (issue 11): make a gated adapter live for the servers that read
 * PUBLISH/current, by an atomic switch — the version is built under a temporary name, renamed
 * into place whole, and only then does the `current` symlink move, by rename(2) of a new link
 * onto the old one. A reader of PUBLISH/current sees the old version or the new one, never a
 * mix. The output.keep newest versions stay for rollback (`ln -sfn OLD current.tmp && mv -T`). */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

lt_status lt_publish_check(const char *dir) {
    lt_status st = lt_mkdir_p(dir);
    if (st)
        return lt_error_wrap(st, "output.publish");
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return lt_error_set(LT_ERR_IO, "output.publish: cannot write into '%s': %s (hint: the "
                            "run would train and then fail to publish; fix the permissions or "
                            "choose another directory)", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return LT_OK;
}

/* Hard-link src to dst (same file system: instant, no space), else copy it. */
static lt_status link_or_copy(const char *src, const char *dst) {
    if (link(src, dst) == 0) return LT_OK;
    FILE *in = fopen(src, "rb");
    if (!in) return lt_error_set(LT_ERR_IO, "cannot read '%s': %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", dst, strerror(errno));
    }
    static char buf[1 << 20];
    size_t n;
    int err = 0;
    while (!err && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) err = errno;
    if (!err && ferror(in)) err = EIO;
    if (!err && (fflush(out) != 0 || fsync(fileno(out)) != 0)) err = errno;
    if (fclose(out) != 0 && !err) err = errno;
    fclose(in);
    if (err) return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", dst, strerror(err));
    return LT_OK;
}

/* Every regular file of src into dst (created), and subdirectories recursively. */
static lt_status copy_tree(const char *src, const char *dst) {
    lt_status st = lt_mkdir_p(dst);
    if (st) return st;
    DIR *d = opendir(src);
    if (!d) return lt_error_set(LT_ERR_IO, "cannot read '%s': %s", src, strerror(errno));
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        struct stat sb;
        if (stat(a, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) st = copy_tree(a, b);
        else if (S_ISREG(sb.st_mode)) st = link_or_copy(a, b);
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remove the oldest versions beyond `keep` (names sort by time), never `current`'s target. */
static void prune(const char *dir, const char *current, int64_t keep) {
    DIR *d = opendir(dir);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "current") || lstat(p, &sb) != 0 ||
            !S_ISDIR(sb.st_mode))
            continue;
        if (n == cap) names = lt_xrealloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
        names[n++] = lt_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        if (strcmp(names[i], current)) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            if (lt_remove_tree(p) == LT_OK) lt_info("publish: removed old version %s", p);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

lt_status lt_publish(const char *run_dir, const char *dir, int64_t keep, const char *started,
                     const char *adapter_sha, char version[96]) {
    /* version name: the run's start time (UTC, sortable) and the adapter's checksum prefix */
    char stamp[32];
    size_t k = 0;
    for (const char *c = started; *c && k + 1 < sizeof stamp; c++)
        if (*c != '-' && *c != ':') stamp[k++] = *c;
    stamp[k] = 0;
    snprintf(version, 96, "%s-%.12s", stamp, adapter_sha);
    char final[PATH_MAX], tmp[PATH_MAX + 64], src[PATH_MAX + 32], dst[PATH_MAX + 96];
    snprintf(final, sizeof final, "%s/%s", dir, version);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, version, (long)getpid());
    lt_remove_tree(tmp);
    snprintf(src, sizeof src, "%s/adapter", run_dir);
    lt_status st = copy_tree(src, tmp); /* the PEFT files at the version's root */
    snprintf(src, sizeof src, "%s/exports", run_dir);
    snprintf(dst, sizeof dst, "%s/exports", tmp);
    struct stat sb;
    if (!st && stat(src, &sb) == 0) st = copy_tree(src, dst);
    snprintf(src, sizeof src, "%s/manifest.json", run_dir);
    snprintf(dst, sizeof dst, "%s/manifest.json", tmp);
    if (!st) st = link_or_copy(src, dst);
    if (!st) st = lt_dir_publish(tmp, final, true);
    if (st) {
        lt_remove_tree(tmp);
        return lt_error_wrap(st, "output.publish: building version %s", final);
    }
    /* the switch: a new symlink under a temporary name, renamed onto `current` */
    char link_tmp[PATH_MAX + 32], cur[PATH_MAX + 16];
    snprintf(link_tmp, sizeof link_tmp, "%s/.current.tmp.%ld", dir, (long)getpid());
    snprintf(cur, sizeof cur, "%s/current", dir);
    unlink(link_tmp);
    if (symlink(version, link_tmp) != 0 || rename(link_tmp, cur) != 0) {
        int e = errno;
        unlink(link_tmp);
        return lt_error_set(LT_ERR_IO, "output.publish: cannot switch '%s' to %s: %s", cur,
                            version, strerror(e));
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    prune(dir, version, keep);
    return LT_OK;
}
