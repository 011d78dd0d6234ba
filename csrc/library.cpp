// gpudist: the op schemas (one TORCH_LIBRARY block for every op of the extension) and the Python
// module stub. Each op's arguments, shapes and checks are documented in its own header:
// distance_transform/distance_transform.h, distance_at/distance_at.h,
// voxel_border/voxel_border.h, boundary_loss/boundary_loss.h (the CPU-only ops multilabel_edt,
// metric_transform and feature_transform at the top of
// distance_transform/{multilabel,metric,features}_cpu.cpp); the implementations register
// themselves per device with TORCH_LIBRARY_IMPL beside them.
#include <Python.h>
#include <torch/library.h>

#include "distance_transform/cuda_plan.h"

extern "C" {
// `import gpudist._C` loads this library, whose static initialisers register the ops.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
}

TORCH_LIBRARY(gpudist, m) {
  m.def(
      "distance_transform(Tensor src, int num_classes, float[] spacing, str convention, "
      "bool black_border, ScalarType dtype, float? max_distance=None) -> Tensor");
  m.def(
      "multilabel_edt(Tensor labels, float[] spacing, bool black_border, bool squared, "
      "ScalarType dtype) -> Tensor");
  m.def(
      "metric_transform(Tensor src, float[] spacing, str metric, bool black_border, "
      "ScalarType dtype) -> Tensor");
  m.def("feature_transform(Tensor src, float[] spacing, ScalarType dtype) -> (Tensor, Tensor)");
  m.def("distance_at(Tensor src, Tensor query, float[] spacing, ScalarType dtype) -> Tensor");
  m.def("voxel_border(Tensor mask, int connectivity) -> Tensor");
  m.def("boundary_loss_forward(Tensor logits, Tensor phi, int[] idc) -> Tensor");
  m.def("boundary_loss_backward(Tensor grad, Tensor logits, Tensor phi, int[] idc) -> Tensor");
  // Host-only: the CUDA launch plan of distance_transform, for the CuPy backend's launcher.
  m.def(
      "cuda_launch_plan(int[] spatial, int items, int resident, int? free_bytes=None, "
      "int? first_resident=None, int generation=1, int out_bytes=4) -> int[]",
      &gpudist::cuda_launch_plan_flat);
}
