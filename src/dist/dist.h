/*
 * dist — data parallelism across processes (DESIGN.md §2): ranks, the collectives a training step
 * needs, and the one gradient all-reduce.
 *
 * Ranks come from the launcher that started the process: `mpirun -np N lathe train ...` or
 * `srun lathe train ...` (docs/distributed.md). MPI is initialized only when such a launcher's
 * environment is present (lt_dist_launched); a plain `lathe train` and every other command are one
 * rank and never touch MPI (singleton MPI_Init is slow and noisy). Built without MPI (LATHE_MPI
 * unset: the GPU bundle), every function below is the single-rank identity and a launched job is
 * refused with a hint.
 *
 * Invariants: every collective is called by every rank in the same order (the training loop is
 * the same program on every rank); a rank that fails calls lt_dist_abort, which ends the whole job
 * (no rank is left waiting in a collective). The reference design is llm.c's (MPI for start-up
 * and CPU collectives, NCCL for GPU collectives with its communicator bootstrapped over MPI).
 */
#ifndef LATHE_DIST_H
#define LATHE_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

typedef struct {
    int rank;       /* 0 .. world - 1; rank 0 is the only writer of the run directory */
    int world;      /* number of ranks (1 without a launcher) */
    int local_rank; /* rank among the ranks of this node (the GPU a CUDA rank takes) */
    bool mpi;       /* MPI was initialized by lt_dist_init (and is finalized by lt_dist_finalize) */
} lt_dist;

/* Whether a launcher started this process as one of several ranks: OpenMPI's mpirun
 * (OMPI_COMM_WORLD_SIZE), a PMI/PMIx launcher (PMI_SIZE, PMIX_RANK) or Slurm's srun
 * (SLURM_STEP_NUM_TASKS > 1; a batch script alone is not a launch). */
bool lt_dist_launched(void);

/* Set up this process's rank. Launched (lt_dist_launched): MPI_Init_thread (FUNNELED: OpenMP
 * threads never call MPI), errors returned instead of aborting, rank / world / local rank (from
 * an MPI_COMM_TYPE_SHARED split) read from MPI; the world must match what the launcher announced
 * (srun without PMI support starts N singletons: LT_ERR_USAGE naming `srun --mpi=pmix`). Not
 * launched: one rank, no MPI. Idempotent; the process-wide state lt_dist_self returns. */
lt_status lt_dist_init(void);
/* MPI_Finalize when lt_dist_init initialized MPI; every rank must call it (collective). */
void lt_dist_finalize(void);
/* The process's ranks ({0, 1, 0, false} before lt_dist_init). */
const lt_dist *lt_dist_self(void);

/* A fatal error on this rank while others may wait in a collective: prints
 * "lathe: rank R of N (host): <message>" to stderr and ends every rank of the job with exit
 * status `code` (MPI_Abort; the launcher reports the rank). Single rank: exit(code). */
_Noreturn void lt_dist_abort(int code, const char *message);

/* THE gradient all-reduce, once per optimizer step: buf[0..n) = the element-wise sum over ranks
 * (every rank receives the same bits: MPI_Allreduce, MPI_SUM on MPI_FLOAT, in place). With two
 * ranks a sum of two terms is exact in either order, so 2 ranks equal 1 rank accumulating both
 * micro-batches bit for bit. *seconds (may be NULL) receives the wall time spent. The CUDA branch
 * (NCCL all-reduce on the compute stream, communicator bootstrapped over MPI) goes here: not built
 * yet. LT_ERR_RUNTIME naming the MPI error. */
lt_status lt_dist_allreduce_grads(float *buf, int64_t n, double *seconds);

/* Small collectives of the training loop, in place over every rank (identity on one rank):
 * sum of doubles / int64s, max of ints (a stop flag, a failure flag). LT_ERR_RUNTIME on an MPI
 * error. */
lt_status lt_dist_sum_f64(double *v, int n);
lt_status lt_dist_sum_i64(int64_t *v, int n);
lt_status lt_dist_max_int(int *v, int n);
/* Copy `bytes` bytes of buf from rank `root` to every rank (checkpoint state on resume). */
lt_status lt_dist_bcast(void *buf, size_t bytes, int root);
/* Wait for every rank (rank 0 prepared shared data the others read next). */
lt_status lt_dist_barrier(void);

/* Whether buf[0..bytes) holds the same bytes on every rank (FNV-1a 64 of each rank's copy,
 * compared through a max of (h, ~h)). LT_ERR_RUNTIME naming `what` when not: the ranks' adapters
 * must stay identical (same data after the all-reduce), and a divergence is a bug to report, not
 * a run to continue silently. */
lt_status lt_dist_check_same(const void *buf, size_t bytes, const char *what);

/* The number of ranks the launcher announced in the environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * SLURM_STEP_NUM_TASKS), or -1 when none did; needs no MPI. Commands other than `lathe train`
 * refuse to run as several ranks (each would write the same outputs). */
long lt_dist_announced_world(void);

#endif
