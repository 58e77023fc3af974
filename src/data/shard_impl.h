/* Private to src/data/: the two halves of lt_shard_open (shard_check.c, shard_read.c). */
#ifndef LT_SHARD_IMPL_H
#define LT_SHARD_IMPL_H

#include "data.h"

/* What lt_shard_open does after the integrity check: open `path` with HDF5 in this process and
 * validate it (see lt_shard_open). Only for files that passed lt_shard_check — and for the fuzz
 * harness, which wants libhdf5 and the validation in its own address space. */
lt_status lt_shard_open_hdf5(lt_shard **out, const char *path, const lt_shard_expect *ex);

/* Before HDF5 opens `path` in this process: with a sidecar PATH.sha256, the file's SHA-256 must
 * equal the sidecar's (sha256 receives it); without one, lt_shard_open_hdf5 runs in a forked
 * child first (sha256 receives ""). LT_ERR_DATA naming the shard when the checksum differs, the
 * sidecar is malformed, the validation fails (the child's message) or the child crashed;
 * LT_ERR_IO when pipe/fork fail. */
lt_status lt_shard_check(const char *path, const lt_shard_expect *ex, char sha256[65]);

/* The sidecar of the shard whose bytes are data[0..n) and that will be written to `shard_path`:
 * their SHA-256, stored atomically as `shard_path`.sha256 in sha256sum's format. Write it before
 * the shard, so a shard never becomes visible without its checksum. LT_ERR_IO naming the file on
 * failure. */
lt_status lt_shard_sidecar_write(const char *shard_path, const void *data, size_t n);

#endif
