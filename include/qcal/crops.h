/* In-domain data for the networks that expect crops (analysis/crops.c,
 * docs/zoo.md): a detector of the zoo runs on photos and each detection is
 * cropped as the library that ships the networks (npm @vladmandic/human
 * 3.0.7) crops it for the next network. One line per crop kind:
 *   QCAL_CROP(id, name, detector model file (NULL: none, the whole photo),
 *             box enlargement, landmark model (NULL: none), crop side, source) */
#ifndef QCAL_CROPS_H
#define QCAL_CROPS_H

#include "qcal/graph.h"
#include "qcal/status.h"

#define QCAL_CROPS(X)                                                                              \
  X(FACE, "face", "blazeface.json", 1.4, NULL, 256,                                                \
    "src/face/blazeface.ts getBoxes (anchors, decodeBoxes, NMS), facemeshutil.ts enlargeBox 1.4, " \
    "squarifyBox, cutAndResize (tf.image.cropAndResize, bilinear, 0 outside)")                     \
  X(BODY, "body", NULL, 1.0, NULL, 256,                                                            \
    "src/body/blazepose.ts predict without config.body.detector (experimental, off by default): "  \
    "prepareImage pads the photo to a square with zeros (trunc of half the difference on each "    \
    "side) and resizes it with tf.image.resizeBilinear; image files only, every photo kept")       \
  X(EYE, "eye", "blazeface.json", 1.4, "facemesh.json", 64,                                        \
    "src/face/facemesh.ts: the face cut to 192 x 192 / 255 (facemeshutil.ts cutAndResize), "       \
    "FaceMesh's 468 landmarks; iris.ts getEyeBox: the box of each eye's corners (landmarks "       \
    "33, 133 and 263, 362: facemeshcoords.ts rightEyeLower0 / leftEyeLower0 ends) enlarged 2.3, "  \
    "squarifyBox, tf.image.cropAndResize of the face to 64 x 64, flipLeftRight (both eyes, "       \
    "where the backend has the kernel: tfjs CPU and WebGL)")
typedef enum qcal_crop_kind {
#define X(id, name, det, enlarge, marks, side, src) QCAL_CROP_##id,
  QCAL_CROPS(X)
#undef X
      QCAL_CROP_COUNT
} qcal_crop_kind;
extern const char *const qcal_crop_names[QCAL_CROP_COUNT + 1];

typedef struct qcal_crop_opts {
  int size;          /* crops are size x size RGB PNG files (0: the kind's own side) */
  int max_per_photo; /* detections kept per photo (the library's maxDetected) */
  double min_score;  /* the library's minConfidence */
  double iou;        /* its NMS iouThreshold */
} qcal_crop_opts;
/* The library's face defaults (config.ts: maxDetected 1, iouThreshold
 * 0.1) but a score of 0.5, not its minConfidence 0.2: at 0.2 BlazeFace also
 * fires on coins and motorcycles, at 0.5 on none of scikit-image's 100 LFW
 * non-faces (it still takes animal faces, so the zoo crops photos of
 * people only); 256-pixel crops. */
#define QCAL_CROP_OPTS_DEFAULT ((qcal_crop_opts){0, 1, 0.5, 0.1})

/* One crop: its file, the photo (a stack member is "file.npy[k]"), the
 * detection score (0 for a kind without a detector), and the square box
 * cropped, in photo pixels (x1, y1, x2, y2; it may reach outside the
 * photo; an eye's box is its face's 192-pixel cut mapped back). */
typedef struct qcal_crop_info {
  char file[320], photo[320];
  float score;
  double box[4];
} qcal_crop_info;

/* Run kind's detector (found in models_dir) on every photo of dirs[ndirs]
 * (image files, and .npy stacks [N, H, W] or [N, H, W, 3] in 0..1 or
 * 0..255) and write each detection's crop into out_dir (created) as
 * "<photo>_<kind><k>.png"; *ncrops how many, and *info (when not NULL,
 * malloc'ed) what each is. */
qcal_status qcal_crops_make(const char *models_dir, qcal_crop_kind kind, const char *const *dirs,
                            int ndirs, const char *out_dir, const qcal_crop_opts *o, int *ncrops,
                            qcal_crop_info **info);

/* BlazeFace's decoded rows [score logit, cx, cy, w, h, keypoints...] (17
 * each, *n of them, malloc'ed) from a detector's outputs out[noutputs];
 * what names it in errors. */
qcal_status qcal_blazeface_rows(const qcal_graph *g, float *const *out, const char *what,
                                float **rows, int *n);
/* Row i of a size x size input as {score, x1, y1, x2, y2} in input pixels. */
void qcal_blazeface_box(const float *row, int size, int i, float box[5]);
/* Intersection over union of two such boxes. */
float qcal_box_iou(const float a[5], const float b[5]);

#endif
