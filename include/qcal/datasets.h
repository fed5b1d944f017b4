/* Tensor sources: .npy files and seeded synthetic distributions. */
#ifndef QCAL_DATASETS_H
#define QCAL_DATASETS_H

#include <stdbool.h>
#include <stdint.h>

#include "qcal/status.h"
#include "qcal/tensor.h"

/* Load a .npy file (float16/32/64, either byte order, C or Fortran order)
 * into a C-order float32 tensor named after the file. Errors name the file.
 * Values that do not fit float32 are reported as bad data. */
qcal_status qcal_npy_load(const char *path, qcal_tensor *out);
/* The same from a buffer already in memory; path only names it in errors. */
/* The whole .npy size its header announces, from a prefix that holds the
 * header (at most 12 + QCAL_NPY_HEADER_MAX bytes): archives check a member
 * before inflating it. */
#define QCAL_NPY_HEADER_MAX 65536
qcal_status qcal_npy_expected_size(const char *path, const unsigned char *prefix, size_t len,
                                   size_t *total);
qcal_status qcal_npy_parse(const char *path, const unsigned char *buf, size_t len,
                           qcal_tensor *out);
/* Whole file into a malloc'ed buffer. */
qcal_status qcal_read_file(const char *path, unsigned char **buf, size_t *len);

/* Every tensor a file spec names: "FILE" or "FILE:NAME", where FILE is .npy,
 * .npz (stored or deflated), .h5/.hdf5 (any float dataset) or .safetensors
 * (F32, F16, BF16). Without NAME, all float tensors of the file. fn receives
 * each tensor and owns it; a non-OK return stops the walk. Tensor names are
 * "file.npz:array" style. */
typedef qcal_status (*qcal_tensor_fn)(void *ctx, qcal_tensor *t);
qcal_status qcal_load_tensors(const char *spec, qcal_tensor_fn fn, void *ctx);

/* Element width (bytes) a .npy header declares (4 for float32). */
qcal_status qcal_npy_element_width(const char *path, const unsigned char *buf, size_t len,
                                   size_t *width);
/* A .npy file image (version 1.0) of any numpy descr ('<f4', '<i8', '|u1'). */
qcal_status qcal_npy_encode(const char *descr, int ndim, const int64_t *shape, const void *data,
                            size_t bytes, unsigned char **out, size_t *out_len);
/* An .npz (stored) of n members named names[i] (".npy" is appended), each a
 * .npy image from qcal_npy_encode; written to a temporary file and renamed,
 * so a failure leaves no partial file. */
qcal_status qcal_npz_save(const char *path, int n, const char *const *names,
                          unsigned char *const *npy, const size_t *npy_len);

/* Image preprocessing shared by infer and sweep: decode, bilinear resize to
 * height x width (align_corners = false), 1 (luma) or 3 channels, then
 * either (p / 255 - mean[c]) / std[c] or p * scale + offset on pixels p in
 * 0..255, laid out [1, C, H, W] (nchw) or [1, H, W, C]. */
typedef struct qcal_preproc {
  int height, width, channels;
  bool nchw;
  bool use_mean_std;
  float mean[3], std[3];
  double scale, offset; /* double: p / 127.5 - 1 is computed as written (image.c) */
} qcal_preproc;
qcal_status qcal_image_preprocess(const char *path, const qcal_preproc *p, qcal_tensor *out);
/* The same from w x h RGB pixels already decoded. */
qcal_status qcal_image_preprocess_rgb(const unsigned char *px, int w, int h, const qcal_preproc *p,
                                      qcal_tensor *out);
/* A photo's RGB pixels, 8 bits each, row-major (free with qcal_image_free);
 * refuses more than 64 megapixels and 16-bit files. Errors name the file. */
qcal_status qcal_image_decode_rgb(const char *path, unsigned char **px, int *w, int *h);
void qcal_image_free(unsigned char *px);
/* An RGB PNG of w x h pixels, via a temporary file and rename. */
qcal_status qcal_image_write_png(const char *path, const unsigned char *px, int w, int h);

/* The image files of a folder (.jpg .png .bmp .gif .tga .ppm .pgm), sorted
 * by name; free with qcal_image_dir_free. */
qcal_status qcal_image_dir(const char *dir, char ***names, int *n);
void qcal_image_dir_free(char **names, int n);
/* Split the usable (ok[i] != 0) photos of a sorted list: ncal for
 * calibration, interleaved so both splits mix their sources, and the rest
 * held out (at most held_max when > 0; held may be NULL). */
void qcal_image_split(const int *ok, int n, int ncal, int held_max, int *calib, int *ncalib,
                      int *held, int *nheld);

/* Preprocessing as the user gave it (NULL, 0 or NaN: not given). */
typedef struct qcal_preproc_opts {
  const char *size;       /* "H" or "H,W" */
  const char *layout;     /* "nchw" or "nhwc" */
  const char *mean, *std; /* "R,G,B" (or one value for 1 channel) */
  int channels;           /* 1 or 3 */
  double scale, offset;
  bool quick; /* the model's quick-run size where it has one (CI) */
} qcal_preproc_opts;
/* Options over the model's known defaults (datasets/models.inc, by file
 * name) over what its declared input [N, C, H, W] or [N, H, W, C] says.
 * *resize is set when the size differs from a fixed declared one (the
 * graph input must then be resized). Errors name the option. */
qcal_status qcal_preproc_resolve(const qcal_preproc_opts *o, const char *model_path, int ndim,
                                 const int64_t *declared, qcal_preproc *p, bool *resize);
/* "mean 0.485,0.456,0.406 std ..." or "scale 0.0039 offset 0", 1x3x224x224 */
void qcal_preproc_describe(const qcal_preproc *p, char *out, size_t cap);

/* Write a C-order float32 .npy (version 1.0) via a temporary file + rename. */
qcal_status qcal_npy_save(const char *path, const qcal_tensor *t);

/* Seeded, bit-for-bit reproducible distributions. */
typedef struct qcal_rng {
  uint64_t s[4];
} qcal_rng;
void qcal_rng_seed(qcal_rng *r, uint64_t seed);
/* splitmix64: the next value of a 64-bit state (also seeds qcal_rng) */
uint64_t qcal_splitmix64(uint64_t *state);
uint64_t qcal_rng_next(qcal_rng *r);
double qcal_rng_uniform(qcal_rng *r); /* [0, 1) */
double qcal_rng_normal(qcal_rng *r);

typedef struct qcal_synthetic_info {
  const char *name;
  const char *help;
} qcal_synthetic_info;
extern const qcal_synthetic_info qcal_synthetic[];
extern const size_t qcal_synthetic_count;

/* 1-D tensor of n samples of the named distribution. */
qcal_status qcal_synthetic_make(const char *name, uint64_t seed, size_t n, qcal_tensor *out);

/* Per-channel variant [channels, per]: channel c is the named distribution
 * scaled by ratio^-u_c, u_c ~ U(0, 1), so channel ranges differ by up to
 * `ratio` (log-uniform), as in BN-folded depthwise weights. */
qcal_status qcal_synthetic_channels(const char *name, uint64_t seed, size_t channels, size_t per,
                                    double ratio, qcal_tensor *out);

/* An IDX file (MNIST format) of unsigned bytes, plain or gzip-compressed:
 * dims and elements. Errors name the file: wrong magic, another element
 * type, truncated or trailing data, a zero dim. */
#define QCAL_IDX_MAX_DIMS 4
typedef struct qcal_idx {
  int ndim;
  int64_t dims[QCAL_IDX_MAX_DIMS];
  size_t count;  /* elements */
  uint8_t *data; /* malloc'ed */
} qcal_idx;
qcal_status qcal_idx_read(const char *path, qcal_idx *out);
void qcal_idx_free(qcal_idx *x);

/* A labelled image set from DIR/SPLIT-images-idx3-ubyte[.gz] and
 * DIR/SPLIT-labels-idx1-ubyte[.gz] (SPLIT: train or t10k): counts must
 * agree and every label be a class below `classes`. */
typedef struct qcal_labelled {
  size_t n;
  int rows, cols, classes;
  uint8_t *pixels; /* n x rows x cols */
  uint8_t *labels; /* n */
} qcal_labelled;
qcal_status qcal_labelled_load(const char *dir, const char *split, int classes, qcal_labelled *out);
void qcal_labelled_free(qcal_labelled *d);

#endif
