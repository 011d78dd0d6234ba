// The kernels of edt_kernels.cu and boundary_loss_kernels.cu as a ctypes-loadable library.
#include "cuda_shim.h"
#include "boundary_loss_kernels.cu"
#include "edt_kernels.cu"
