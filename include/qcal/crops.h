/* In-domain data for the networks that expect crops (analysis/crops.c,
 * docs/zoo.md): a detector of the zoo runs on photos and each detection is
 * cropped as the library that ships the networks (npm @vladmandic/human
 * 3.0.7) crops it for the next network. One line per crop kind:
 *   QCAL_CROP(id, name, detector model file (NULL: none, the whole photo),
 *             box enlargement, landmark model (NULL: none), crop side,
 *             detections kept per photo, NMS IoU threshold, source) */
#ifndef QCAL_CROPS_H
#define QCAL_CROPS_H

#include "qcal/graph.h"
#include "qcal/status.h"

#define QCAL_CROPS(X)                                                                              \
  X(FACE, "face", "blazeface.json", 1.4, NULL, 256, 1, 0.1,                                        \
    "src/face/blazeface.ts getBoxes (anchors, decodeBoxes, NMS), facemeshutil.ts enlargeBox 1.4, " \
    "squarifyBox, cutAndResize (tf.image.cropAndResize, bilinear, 0 outside)")                     \
  X(BODY, "body", NULL, 1.0, NULL, 256, 1, 0.0,                                                    \
    "src/body/blazepose.ts predict without config.body.detector (experimental, off by default): "  \
    "prepareImage pads the photo to a square with zeros (trunc of half the difference on each "    \
    "side) and resizes it with tf.image.resizeBilinear; image files only, every photo kept")       \
  X(EYE, "eye", "blazeface.json", 1.4, "facemesh.json", 64, 1, 0.1,                                \
    "src/face/facemesh.ts: the face cut to 192 x 192 / 255 (facemeshutil.ts cutAndResize), "       \
    "FaceMesh's 468 landmarks; iris.ts getEyeBox: the box of each eye's corners (landmarks "       \
    "33, 133 and 263, 362: facemeshcoords.ts rightEyeLower0 / leftEyeLower0 ends) enlarged 2.3, "  \
    "squarifyBox, tf.image.cropAndResize of the face to 64 x 64, flipLeftRight (both eyes, "       \
    "where the backend has the kernel: tfjs CPU and WebGL)")                                       \
  X(HAND, "hand", "handdetect.json", 5.0, NULL, 256, 6, 0.2,                                       \
    "src/hand/handposedetector.ts predict (input resizeBilinear / 127.5 - 1, its 2944 anchors: "   \
    "strides 8, 16, 32 with 2, 2, 6 per cell; sigmoid scores, nonMaxSuppression of 3 x "           \
    "maxDetected boxes, maxDetected = 2 per face, one person: 6; IoU 0.2, score 0.5; 7 palm "      \
    "landmarks), handposepipeline.ts estimateHands with config.hand.rotation: the angle of palm "  \
    "landmarks 0 -> 2 (computeRotation), tf.image.rotateWithOffset about the palm box centre "     \
    "(nearest pixel, 0 outside), getBoxForPalmLandmarks: the rotated landmarks' box squarified "   \
    "and enlarged 5, cutBoxFromImageAndResize (cropAndResize bilinear) to 256: what handskeleton " \
    "reads")
typedef enum qcal_crop_kind {
#define X(id, name, det, enlarge, marks, side, keep, iou, src) QCAL_CROP_##id,
  QCAL_CROPS(X)
#undef X
      QCAL_CROP_COUNT
} qcal_crop_kind;
extern const char *const qcal_crop_names[QCAL_CROP_COUNT + 1];

typedef struct qcal_crop_opts {
  int size;          /* crops are size x size RGB PNG files (0: the kind's own side) */
  int max_per_photo; /* detections kept per photo (the library's maxDetected; 0: the kind's) */
  double min_score;  /* the library's minConfidence */
  double iou;        /* its NMS iouThreshold (< 0: the kind's) */
} qcal_crop_opts;
/* The kind's own side, detections and IoU (the library's config.ts: face
 * maxDetected 1, iouThreshold 0.1; hand as in the list), and a score of
 * 0.5: the hand's minConfidence, and for faces not the library's 0.2: at
 * 0.2 BlazeFace also fires on coins and motorcycles, at 0.5 on none of
 * scikit-image's 100 LFW non-faces (it still takes animal faces, so the
 * zoo crops photos of people only). */
#define QCAL_CROP_OPTS_DEFAULT ((qcal_crop_opts){0, 0, 0.5, -1})

/* One crop: its file, the photo (a stack member is "file.npy[k]"), the
 * detection score (0 for a kind without a detector), and the square box
 * cropped, in photo pixels (x1, y1, x2, y2; it may reach outside the
 * photo; an eye's box is its face's 192-pixel cut mapped back, a hand's is
 * in the turned photo). */
typedef struct qcal_crop_info {
  char file[320], photo[320];
  float score;
  double box[4];
  double angle; /* hand: radians the photo was turned by (about the palm box's centre) before the
                   box was cut; 0 for the other kinds */
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
