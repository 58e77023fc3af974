/* File helpers: mkdir -p, atomic writes (temp + fsync + rename), whole-file reads, SHA-256. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

lt_status lt_mkdir_p(const char *path) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return lt_error_set(LT_ERR_IO, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return lt_error_set(LT_ERR_IO, "cannot create directory '%s': %s", buf,
                                    strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return lt_error_set(LT_ERR_IO, "'%s' exists and is not a directory", path);
    return LT_OK;
}

lt_status lt_atomic_open(const char *path, char *tmp, FILE **fp) {
    snprintf(tmp, PATH_MAX, "%s.tmp.%ld", path, (long)getpid());
    *fp = fopen(tmp, "wb");
    if (!*fp) return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    return LT_OK;
}

static void fsync_dir_of(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

lt_status lt_atomic_commit(FILE *fp, const char *tmp, const char *path) {
    int err = 0;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) err = errno;
    if (fclose(fp) != 0 && !err) err = errno;
    if (err) {
        unlink(tmp);
        return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return lt_error_set(LT_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                            strerror(err));
    }
    fsync_dir_of(path);
    return LT_OK;
}

void lt_atomic_abort(FILE *fp, const char *tmp) {
    if (fp) fclose(fp);
    unlink(tmp);
}

lt_status lt_write_file_atomic(const char *path, const void *data, size_t n) {
    char tmp[PATH_MAX];
    FILE *fp;
    lt_status st = lt_atomic_open(path, tmp, &fp);
    if (st) return st;
    if (n && fwrite(data, 1, n, fp) != n) {
        int err = errno;
        lt_atomic_abort(fp, tmp);
        return lt_error_set(LT_ERR_IO, "cannot write '%s': %s", path, strerror(err));
    }
    return lt_atomic_commit(fp, tmp, path);
}

/* The kind of a non-regular file, for messages. */
static const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

lt_status lt_require_regular(const char *path, lt_status err, const char *kind) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lt_error_set(err, "cannot open %s file '%s': %s", kind, path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return lt_error_set(err, "%s file '%s' is %s, not a regular file (hint: lathe reads "
                            "%s files whole; copy the data into a file first)", kind, path,
                            file_kind(sb.st_mode), kind);
    return LT_OK;
}

/* fopen(path, "rb") of a regular file only: O_NONBLOCK so that opening a FIFO cannot block, then
 * fstat; NULL with the error set (LT_ERR_IO) otherwise. */
static FILE *open_regular(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        lt_error_set(LT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        lt_error_set(LT_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        lt_error_set(LT_ERR_IO, "'%s' is %s, not a regular file (hint: name a regular file)", path,
                     file_kind(sb.st_mode));
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        lt_error_set(LT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        close(fd);
    }
    return fp;
}

lt_status lt_read_file(const char *path, char **data, size_t *n) {
    FILE *fp = open_regular(path);
    if (!fp) return LT_ERR_IO;
    size_t cap = 1 << 16, len = 0;
    char *buf = lt_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += got;
        if (cap - len - 1 == 0) buf = lt_xrealloc(buf, cap *= 2);
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return lt_error_set(LT_ERR_IO, "cannot read '%s'", path);
    }
    buf[len] = 0;
    *data = buf;
    if (n) *n = len;
    return LT_OK;
}

static void to_hex(const unsigned char *d, char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = 0;
}

void lt_sha256_hex(const void *data, size_t n, char hex[65]) {
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_Digest(data, n, d, &dl, EVP_sha256(), NULL);
    to_hex(d, hex);
}

lt_status lt_sha256_file(const char *path, char hex[65]) {
    FILE *fp = open_regular(path);
    if (!fp) return LT_ERR_IO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char *buf = lt_xmalloc(1 << 20);
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, fp)) > 0) EVP_DigestUpdate(ctx, buf, got);
    int bad = ferror(fp);
    fclose(fp);
    free(buf);
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(ctx, d, &dl);
    EVP_MD_CTX_free(ctx);
    if (bad) return lt_error_set(LT_ERR_IO, "cannot read '%s'", path);
    to_hex(d, hex);
    return LT_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

lt_status lt_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return LT_OK;
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (lstat(path, &st) == 0)
        return lt_error_set(LT_ERR_IO, "cannot remove '%s': %s", path, strerror(errno));
    return LT_OK;
}

lt_status lt_dir_publish(const char *tmp_dir, const char *dir, bool replace) {
    struct stat st;
    char old[PATH_MAX] = "";
    if (stat(dir, &st) == 0) {
        if (!replace)
            return lt_error_set(LT_ERR_IO, "'%s' already exists; refusing to overwrite it", dir);
        snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
        if (rename(dir, old) != 0)
            return lt_error_set(LT_ERR_IO, "cannot move '%s' aside: %s", dir, strerror(errno));
    }
    if (rename(tmp_dir, dir) != 0) {
        int err = errno;
        if (old[0]) rename(old, dir);
        return lt_error_set(LT_ERR_IO, "cannot rename '%s' to '%s': %s", tmp_dir, dir,
                            strerror(err));
    }
    fsync_dir_of(dir);
    if (old[0]) lt_remove_tree(old);
    return LT_OK;
}

lt_status lt_map_file(const char *path, lt_status err, const char *kind, void **map, size_t *size) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open */
    if (fd < 0)
        return lt_error_set(err, "cannot open %s file '%s': %s", kind, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lt_error_set(err, "'%s' is not a regular file (hint: pass the %s file itself, not "
                            "a directory)", path, kind);
    }
    if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lt_error_set(err, "cannot map '%s': %s", path, strerror(e));
        }
        *map = m;
        *size = (size_t)sb.st_size;
    }
    close(fd);
    return LT_OK;
}

void lt_unmap_file(void *map, size_t size) {
    if (map) munmap(map, size);
}

void lt_cache_dir(char *out, size_t cap, const char *sub) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(out, cap, "%s/lathe/%s", xdg, sub);
    else snprintf(out, cap, "%s/.cache/lathe/%s", home && *home ? home : "/tmp", sub);
}
