/* Ranks and collectives over MPI (OpenMPI from Debian), or one rank when built without MPI.
 * The MPI calls follow the MPI 3.1 standard; nothing here depends on OpenMPI beyond the
 * launcher's environment variables read by lt_dist_launched. */
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef LATHE_MPI
#include <mpi.h>
#endif

static lt_dist self = {.rank = 0, .world = 1, .local_rank = 0, .mpi = false};
static bool inited;

const lt_dist *lt_dist_self(void) { return &self; }

static long env_long(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return *end ? -1 : x;
}

long lt_dist_announced_world(void) {
    long n = env_long("OMPI_COMM_WORLD_SIZE");
    if (n < 0) n = env_long("PMI_SIZE");
    if (n < 0) n = env_long("SLURM_STEP_NUM_TASKS");
    return n;
}

bool lt_dist_launched(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) return true;
    /* srun sets the step's task count; sbatch's batch script has no step of its own */
    return env_long("SLURM_STEP_NUM_TASKS") > 1;
}

#ifdef LATHE_MPI

static uint64_t fnv1a64(const void *buf, size_t n) {
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a (Fowler, Noll, Vo), 64-bit parameters */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static lt_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = 0;
    return lt_error_set(LT_ERR_RUNTIME, "rank %d of %d: %s failed: %s (hint: another rank may "
                        "have died; see the launcher's message)", self.rank, self.world, what,
                        len ? msg : "unknown MPI error");
}

lt_status lt_dist_init(void) {
    if (inited) return LT_OK;
    inited = true;
    if (!lt_dist_launched()) return LT_OK;
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return lt_error_set(LT_ERR_RUNTIME, "MPI_Init_thread failed (error %d) although a "
                            "launcher's environment is present; hint: start lathe with the "
                            "mpirun/srun of the MPI it was built with (docs/distributed.md)", rc);
    self.mpi = true;
    /* errors come back as codes: a failed collective becomes a message naming the rank */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &self.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &self.world);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, self.rank, MPI_INFO_NULL,
                            &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &self.local_rank);
        MPI_Comm_free(&node);
    }
    long want = lt_dist_announced_world();
    if (want > 1 && want != self.world)
        return lt_error_set(LT_ERR_USAGE, "the launcher started %ld tasks but MPI sees a world "
                            "of %d: each task would train alone and write the same run "
                            "directory; hint: with Slurm use `srun --mpi=pmix` (see `srun "
                            "--mpi=list`), or start the job with mpirun", want, self.world);
    return LT_OK;
}

void lt_dist_finalize(void) {
    if (!self.mpi) return;
    MPI_Finalize();
    self.mpi = false;
}

_Noreturn void lt_dist_abort(int code, const char *message) {
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    if (self.world > 1)
        fprintf(stderr, "lathe: rank %d of %d (%s): %s\n", self.rank, self.world, host, message);
    else
        fprintf(stderr, "lathe: %s\n", message);
    fflush(stderr);
    if (self.mpi) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code);
}

/* MPI counts are int: larger buffers go in chunks. */
#define CHUNK ((int64_t)1 << 30)

lt_status lt_dist_allreduce_grads(float *buf, int64_t n, double *seconds) {
    double t0 = lt_now();
    /* LATHE_CUDA: the NCCL branch — ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm,
     * compute stream) on the device buffer, the communicator made from an ncclUniqueId that
     * rank 0 broadcasts over MPI (llm.c's set-up). Not built yet: the CUDA training path calls
     * this with host buffers only. */
    if (self.world > 1) {
        for (int64_t off = 0; off < n; off += CHUNK) {
            int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
            int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM,
                                   MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gradient all-reduce");
        }
    }
    if (seconds) *seconds = lt_now() - t0;
    return LT_OK;
}

static lt_status allreduce(void *v, int n, MPI_Datatype t, MPI_Op op, const char *what) {
    if (self.world <= 1) return LT_OK;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, n, t, op, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, what);
}

lt_status lt_dist_sum_f64(double *v, int n) {
    return allreduce(v, n, MPI_DOUBLE, MPI_SUM, "MPI_Allreduce (sum of doubles)");
}

lt_status lt_dist_sum_i64(int64_t *v, int n) {
    return allreduce(v, n, MPI_INT64_T, MPI_SUM, "MPI_Allreduce (sum of counts)");
}

lt_status lt_dist_max_int(int *v, int n) {
    return allreduce(v, n, MPI_INT, MPI_MAX, "MPI_Allreduce (max of flags)");
}

lt_status lt_dist_bcast(void *buf, size_t bytes, int root) {
    if (self.world <= 1) return LT_OK;
    for (size_t off = 0; off < bytes; off += (size_t)CHUNK) {
        int cnt = (int)(bytes - off < (size_t)CHUNK ? bytes - off : (size_t)CHUNK);
        int rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return LT_OK;
}

lt_status lt_dist_barrier(void) {
    if (self.world <= 1) return LT_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LT_OK : mpi_fail(rc, "MPI_Barrier");
}

lt_status lt_dist_check_same(const void *buf, size_t bytes, const char *what) {
    if (self.world <= 1) return LT_OK;
    const uint64_t h = fnv1a64(buf, bytes);
    /* max(h) and max(~h) = ~min(h): the same everywhere iff max == min */
    uint64_t v[2] = {h, ~h};
    lt_status st = allreduce(v, 2, MPI_UINT64_T, MPI_MAX, "MPI_Allreduce (max of checksums)");
    if (st) return st;
    if (v[0] != ~v[1])
        return lt_error_set(LT_ERR_RUNTIME, "rank %d of %d: %s differs between ranks (it must "
                            "stay identical: every rank applies the same all-reduced update); "
                            "this is a bug in lathe, please report it with the run's manifest",
                            self.rank, self.world, what);
    return LT_OK;
}

#else /* one rank: built without MPI (the GPU bundle) */

lt_status lt_dist_init(void) {
    if (inited) return LT_OK;
    inited = true;
    if (lt_dist_launched() && lt_dist_announced_world() != 1)
        return lt_error_set(LT_ERR_USAGE, "started by a launcher as one of several ranks, but "
                            "this lathe was built without MPI (LATHE_MPI=0, e.g. the GPU "
                            "bundle): each rank would train alone; hint: build with "
                            "libopenmpi-dev installed (make deps) or run one process");
    return LT_OK;
}

void lt_dist_finalize(void) {}

_Noreturn void lt_dist_abort(int code, const char *message) {
    fprintf(stderr, "lathe: %s\n", message);
    exit(code);
}

lt_status lt_dist_allreduce_grads(float *buf, int64_t n, double *seconds) {
    (void)buf;
    (void)n;
    if (seconds) *seconds = 0;
    return LT_OK;
}

lt_status lt_dist_sum_f64(double *v, int n) {
    (void)v;
    (void)n;
    return LT_OK;
}

lt_status lt_dist_sum_i64(int64_t *v, int n) {
    (void)v;
    (void)n;
    return LT_OK;
}

lt_status lt_dist_max_int(int *v, int n) {
    (void)v;
    (void)n;
    return LT_OK;
}

lt_status lt_dist_bcast(void *buf, size_t bytes, int root) {
    (void)buf;
    (void)bytes;
    (void)root;
    return LT_OK;
}

lt_status lt_dist_barrier(void) { return LT_OK; }

lt_status lt_dist_check_same(const void *buf, size_t bytes, const char *what) {
    (void)buf;
    (void)bytes;
    (void)what;
    return LT_OK;
}

#endif
