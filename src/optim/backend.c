/* The optimizer's kernels per device: one row per lt_device, as the op table has one column per
 * device, so that the training step calls lt_optim_on(m->device)->... and never branches on the
 * device itself. CUDA rows are optim.cu's (same contracts, device pointers); a build without CUDA
 * leaves them NULL — lt_device_init(LT_CUDA) fails first there, so nothing reaches them. */
#include "optim.h"

#include "../kernels/kernels.h"

static void cpu_vec_add(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static const lt_optim_backend backends[2] = {
    [LT_CPU] = {lt_adamw_step, lt_grad_global_norm, lt_grad_clip, cpu_vec_add},
#ifdef LATHE_CUDA
    [LT_CUDA] = {lt_cuda_adamw_step, lt_cuda_grad_global_norm, lt_cuda_grad_clip,
                 lt_cuda_vec_add},
#endif
};

const lt_optim_backend *lt_optim_on(lt_device dev) {
    const lt_optim_backend *b = &backends[dev == LT_CUDA];
    LT_ASSERT(b->adamw_step != NULL);
    return b;
}
