/* Task metrics of a primary output (analysis/outmetric.c) against values
 * worked out by hand, one small graph output per metric. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "qcal/outmetric.h"

static qcal_graph *g;

/* A graph whose only output has this shape; returns its index (0). */
static void one_output(int ndim, const int64_t *shape) {
  qcal_graph_free(g);
  cr_assert_eq(qcal_graph_new("test", &g), QCAL_OK);
  int v;
  cr_assert_eq(qcal_graph_add_value(g, "y", QCAL_VAL_ACT, QCAL_DT_F32, ndim, shape, &v), QCAL_OK);
  cr_assert_eq(qcal_graph_add_output(g, v), QCAL_OK);
}

static double run(qcal_outmetric m, const float *a, const float *b, int side) {
  qcal_om_acc acc = {0};
  float *ref[1] = {(float *)a}, *q[1] = {(float *)b};
  qcal_om_update(m, g, ref, q, 0, side, &acc);
  return qcal_om_value(m, &acc);
}

static void teardown(void) {
  qcal_graph_free(g);
  g = NULL;
}

TestSuite(outmetric, .fini = teardown);

Test(outmetric, landmarks_measure_x_y_distance_only) {
  int64_t s3[2] = {1, 6}, s5[2] = {1, 5};
  one_output(2, s3);
  const float a[6] = {0, 0, 0, 3, 4, 9}, b[6] = {0, 0, 5, 0, 0, 0}; /* 0 and 5 px, z ignored */
  cr_assert_float_eq(run(QCAL_OM_LANDMARKS3, a, b, 192), 2.5, 1e-12);
  one_output(2, s5);
  const float c[5] = {1, 1, 0, 0, 0}, d[5] = {4, 5, 9, 9, 9};
  cr_assert_float_eq(run(QCAL_OM_LANDMARKS5, c, d, 256), 5.0, 1e-12);
}

Test(outmetric, heatmaps_count_confident_keypoints_in_input_pixels) {
  int64_t s[4] = {1, 2, 2, 2}; /* NHWC, 2 keypoints */
  one_output(4, s);
  /* keypoint 0: FP32 peak 0.9 at (0,0), quantized at (1,1): sqrt(2) cells of 4/2 px;
   * keypoint 1: FP32 peak 0.2 < 0.3, not counted */
  const float a[8] = {0.9f, 0.2f, 0, 0, 0, 0, 0.1f, 0.1f};
  const float b[8] = {0, 0, 0, 0, 0, 0.2f, 0.9f, 0};
  cr_assert_float_eq(run(QCAL_OM_HEATMAP, a, b, 4), 2 * sqrt(2.0), 1e-9);
  /* as logits: 0.9 -> 0.71 counted, 0.2 -> 0.55 counted too (its argmax moves 1 cell) */
  const float c[8] = {0.9f, 0.2f, 0, 0, 0, 0, 0.1f, 0.1f};
  const float e[8] = {0.9f, 0, 0, 0.2f, 0, 0, 0, 0};
  cr_assert_float_eq(run(QCAL_OM_HEATMAP_LOGITS, c, e, 4), (0 + 2.0) / 2, 1e-9);
}

Test(outmetric, class_embedding_value) {
  int64_t s3[2] = {1, 3}, s2[2] = {1, 2};
  one_output(2, s3);
  const float a[3] = {0, 1, 0.5f}, b[3] = {0, 0.4f, 0.6f};
  cr_assert_eq(run(QCAL_OM_CLASS, a, b, 64), 0.0);
  cr_assert_eq(run(QCAL_OM_CLASS, a, a, 64), 1.0);
  one_output(2, s2);
  const float e[2] = {1, 0}, f[2] = {1, 1};
  cr_assert_float_eq(run(QCAL_OM_EMBEDDING, e, f, 112), 1 / sqrt(2.0), 1e-12);
  const float v[2] = {2, -2}, w[2] = {1, -2};
  cr_assert_float_eq(run(QCAL_OM_VALUE, v, w, 64), 0.25, 1e-12);
}

Test(outmetric, masks_one_and_two_channels) {
  int64_t s1[4] = {1, 2, 2, 1}, s2[4] = {1, 1, 2, 2};
  one_output(4, s1);
  const float a[4] = {0.9f, 0.9f, 0.1f, 0.1f}, b[4] = {0.9f, 0.1f, 0.9f, 0.1f};
  cr_assert_float_eq(run(QCAL_OM_MASK, a, b, 256), 1.0 / 3, 1e-12);
  one_output(4, s2); /* pixel: (background, person) */
  const float c[4] = {0, 1, 1, 0}, d[4] = {0, 1, 0, 1};
  cr_assert_float_eq(run(QCAL_OM_MASK, c, d, 256), 0.5, 1e-12);
}

Test(outmetric, detections) {
  int64_t s[3] = {1, 3, 2};
  one_output(3, s);
  const float a[6] = {0.1f, 0, 0.9f, 0, 0.2f, 0}, b[6] = {0.95f, 0, 0.1f, 0, 0, 0};
  cr_assert_eq(run(QCAL_OM_ANCHOR, a, b, 224), 0.0);
  cr_assert_eq(run(QCAL_OM_ANCHOR, a, a, 224), 1.0);
  /* BlazeFace at 128: anchor 0 is (4, 4); a 10 x 10 box there, and the same
   * moved 5 px right: IoU 50 / 150 */
  int64_t f[3] = {1, 896, 17};
  one_output(3, f);
  static float x[896 * 17], y[896 * 17];
  for (int i = 0; i < 896; i++)
    x[i * 17] = y[i * 17] = -10;
  x[0] = y[0] = 10;
  x[3] = x[4] = y[3] = y[4] = 10;
  y[1] = 5;
  cr_assert_float_eq(run(QCAL_OM_FACEBOX, x, y, 128), 1.0 / 3, 1e-6);
}

Test(outmetric, thresholds) {
  cr_assert(qcal_om_holds(QCAL_OM_LANDMARKS3, 1.9, 192));
  cr_assert(!qcal_om_holds(QCAL_OM_LANDMARKS3, 1.93, 192));
  cr_assert(qcal_om_holds(QCAL_OM_CLASS, 0.99, 64) && !qcal_om_holds(QCAL_OM_CLASS, 0.98, 64));
  cr_assert(!qcal_om_holds(QCAL_OM_MASK, NAN, 64));
  cr_assert_eq(qcal_om_find("landmarks5"), QCAL_OM_LANDMARKS5);
  cr_assert_eq(qcal_om_find("nope"), -1);
}
