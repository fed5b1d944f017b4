/* qcal crops: the in-domain crops that qcal zoo feeds the networks that
 * expect them (analysis/crops.c), written as PNG files to look at or to
 * calibrate on (qcal quantize --images DIR). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/crops.h"

typedef struct {
  const char *models, *images, *out, *kind, *json;
  int size, max;
  double min_score;
} crops_cli;

#define O(f) offsetof(crops_cli, f)
static const qcal_opt opts[] = {
    {"kind", "K",
     "face (BlazeFace detections), eye (FaceMesh's eyes of each face), hand (palm detections, "
     "turned upright) or body (whole photos padded square, as BlazePose reads them)",
     O(kind), OPT_CHOICE, 0, 0, qcal_crop_names},
    {"models", "DIR", "the TF.js models (scripts/fetch-models.sh): the detector", O(models),
     OPT_STRING, 0, 0, NULL},
    {"images", "DIR",
     "photos: image files and .npy stacks (default: the cache's people/ folder, "
     "scripts/fetch-data.sh)",
     O(images), OPT_STRING, 0, 0, NULL},
    {"size", "N",
     "crop side in pixels (0: the kind's own, face, body and hand 256, eye 64: what the network "
     "reads)",
     O(size), OPT_INT, 0, 4096, NULL},
    {"max", "N", "detections per photo (0: the kind's own, face 1, hand 6)", O(max), OPT_INT, 0,
     1000, NULL},
    {"min-score", "S", "detection score threshold", O(min_score), OPT_DOUBLE, 0, 1, NULL},
    {"output", "DIR", "folder for the crops (-o, required)", O(out), OPT_STRING, 0, 0, NULL},
    {"json", "FILE", "also write each crop's photo, score and box as JSON", O(json), OPT_STRING, 0,
     0, NULL},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
#undef O

static const qcal_cmd_info info = {
    "crops",
    "qcal crops [--kind face] [--models DIR] [--images DIR] [--size N]\n"
    "           [--max N] [--min-score S] [--json FILE] -o DIR",
    "Run the zoo's detector for KIND on every photo and write each detection\n"
    "cropped as the library that ships the zoo (npm @vladmandic/human 3.0.7) crops\n"
    "it for the next network (include/qcal/crops.h names the source lines): the\n"
    "data qcal zoo measures the face, eye and hand networks on (docs/zoo.md). --kind\n"
    "hand turns the photo about each palm so that it points up, as the library\n"
    "does before its hand landmarks (JSON: the angle). --kind body has no\n"
    "detector (the library's default for BlazePose): every image file, padded to a\n"
    "square with zeros and resized as the library does (.npy stacks are skipped).",
    opts,
};

int qcal_cmd_crops(int argc, char **argv) {
  char cache[4096], models[4200], images[4200];
  qcal_cache_dir(cache, sizeof cache);
  snprintf(models, sizeof models, "%s/human-models", cache);
  snprintf(images, sizeof images, "%s/people", cache);
  qcal_crop_opts d = QCAL_CROP_OPTS_DEFAULT;
  crops_cli c = {.models = models,
                 .images = images,
                 .kind = "face",
                 .size = d.size,
                 .max = d.max_per_photo,
                 .min_score = d.min_score};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &c, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (!c.out)
    return qcal_die("crops: -o DIR is required");
  int kind = 0;
  while (qcal_crop_names[kind] && strcmp(qcal_crop_names[kind], c.kind))
    kind++;
  const char *dirs[1] = {c.images};
  qcal_crop_opts o = {c.size, c.max, c.min_score, d.iou};
  int n = 0;
  qcal_crop_info *ci = NULL;
  qcal_status st =
      qcal_crops_make(c.models, (qcal_crop_kind)kind, dirs, 1, c.out, &o, &n, c.json ? &ci : NULL);
  if (!st && c.json) {
    json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++) {
      json_object *e = json_object_new_object(), *b = json_object_new_array();
      json_object_object_add(e, "file", json_object_new_string(ci[i].file));
      json_object_object_add(e, "photo", json_object_new_string(ci[i].photo));
      json_object_object_add(e, "score", json_object_new_double(ci[i].score));
      for (int k = 0; k < 4; k++)
        json_object_array_add(b, json_object_new_double(ci[i].box[k]));
      json_object_object_add(e, "box", b);
      json_object_object_add(e, "angle", json_object_new_double(ci[i].angle));
      json_object_array_add(a, e);
    }
    FILE *f = fopen(c.json, "w");
    if (!f || fputs(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY), f) < 0)
      st = qcal_error(QCAL_EIO, "%s: cannot write", c.json);
    if (f && fclose(f) != 0 && !st)
      st = qcal_error(QCAL_EIO, "%s: cannot write", c.json);
    json_object_put(a);
  }
  free(ci);
  if (st)
    return qcal_die_status(st);
  printf("%d %s crops in %s\n", n, c.kind, c.out);
  return QCAL_EXIT_OK;
}
