/* The tensors a sweep calibrates: the real network's weights and input
 * activations (calibration split / held-out split of the photos), the
 * synthetic suite, and files named on the command line. */
#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/cli.h"
#include "bench/sweep.h"
#include "qcal/datasets.h"
#include "qcal/escape.h"

const char *const qcal_item_kind_names[] = {"weight", "activation", "synthetic", "file"};

bool qcal_sweep_selected(const sweep_state *s, const char *name) {
  return !s->has_filter || regexec(&s->filter, name, 0, NULL, 0) == 0;
}

qcal_status qcal_sweep_add_item(sweep_state *s, const sweep_item *it) {
  if (s->nitems == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    sweep_item *n = realloc(s->items, (size_t)cap * sizeof *n);
    if (!n)
      return qcal_error(QCAL_ENOMEM, "out of memory");
    s->items = n;
    s->cap = cap;
  }
  s->items[s->nitems++] = *it;
  return QCAL_OK;
}

/* "MobilenetV1/MobilenetV1/Conv2d_3_depthwise/BatchNorm/..." -> "Conv2d_3_depthwise" */
void qcal_layer_short_name(const char *full, char *out, size_t cap) {
  const char *p = full;
  while (!strncmp(p, "MobilenetV1/", 12))
    p += 12;
  size_t n = strcspn(p, "/");
  snprintf(out, cap, "%.*s", (int)n, p);
}

static int image_ext(const char *n) {
  const char *d = strrchr(n, '.');
  if (!d)
    return 0;
  const char *ok[] = {".jpg", ".jpeg", ".png", ".bmp", ".gif",
                      ".tga", ".ppm",  ".pgm", ".JPG", ".PNG"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (!strcmp(d, ok[i]))
      return 1;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Stack one tensor per image ([1, H, W, C] each) into [n, H, W, C]. */
static qcal_status stack(qcal_tensor *const *parts, int n, qcal_tensor *out) {
  int64_t shape[4] = {n, parts[0]->shape[1], parts[0]->shape[2], parts[0]->shape[3]};
  QCAL_TRY(qcal_tensor_alloc(out, 4, shape));
  size_t per = parts[0]->numel;
  for (int i = 0; i < n; i++)
    memcpy(out->data + (size_t)i * per, parts[i]->data, per * sizeof(float));
  return QCAL_OK;
}

static qcal_status load_images(sweep_state *s) {
  DIR *d = opendir(s->cfg.images);
  if (!d)
    return qcal_error(
        QCAL_EIO, "%s: cannot open image folder (run scripts/fetch-data.sh, or pass --images DIR)",
        s->cfg.images);
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && image_ext(e->d_name)) {
      if (n == cap) {
        int ncap = cap ? 2 * cap : 32;
        char **nn = realloc(names, (size_t)ncap * sizeof *names);
        if (!nn)
          break; /* out of memory: sweep the photos listed so far */
        names = nn;
        cap = ncap;
      }
      names[n++] = strdup(e->d_name);
    }
  closedir(d);
  if (n)
    qsort(names, (size_t)n, sizeof *names, cmp_str);
  s->nimages = n;
  s->images = calloc((size_t)(n ? n : 1), sizeof *s->images);
  s->image_names = calloc((size_t)(n ? n : 1), sizeof *s->image_names);
  s->image_status = calloc((size_t)(n ? n : 1), sizeof *s->image_status);
  s->image_ok = calloc((size_t)(n ? n : 1), sizeof *s->image_ok);
  int usable = 0;
  for (int i = 0; i < n; i++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", s->cfg.images, names[i]);
    snprintf(s->image_names[i], sizeof s->image_names[i], "%s", names[i]);
    qcal_status st = qcal_image_load(path, s->cfg.input_size, &s->images[i]);
    if (st == QCAL_OK) {
      s->image_ok[i] = 1;
      usable++;
      snprintf(s->image_status[i], sizeof s->image_status[i], "ok");
    } else {
      char shown[1200];
      fprintf(stderr, "qcal: warning: skipping %s\n",
              qcal_escape_text(qcal_last_error(), shown, sizeof shown));
      snprintf(s->image_status[i], sizeof s->image_status[i], "skipped: %s", qcal_last_error());
    }
    free(names[i]);
  }
  free(names);
  if (usable < 2)
    return qcal_error(QCAL_EDATA, "%s: %d usable images; need at least 2 (calibration + held-out)",
                      s->cfg.images, usable);
  int ncal = s->cfg.calib_images > 0 ? s->cfg.calib_images : (usable + 1) / 2;
  if (ncal >= usable)
    return qcal_error(QCAL_EINVAL, "--calib %d leaves no held-out image (%d usable)", ncal, usable);
  s->calib_idx = malloc((size_t)usable * sizeof(int));
  s->held_idx = malloc((size_t)usable * sizeof(int));
  /* interleave the sorted photos so both splits mix their sources */
  int k = 0;
  for (int i = 0; i < n; i++)
    if (s->image_ok[i]) {
      int calib = s->ncalib < ncal && (k % 2 == 0 || usable - k <= ncal - s->ncalib);
      if (calib)
        s->calib_idx[s->ncalib++] = i;
      else if (s->cfg.held_images == 0 || s->nheld < s->cfg.held_images)
        s->held_idx[s->nheld++] = i;
      k++;
    }
  return QCAL_OK;
}

qcal_status qcal_sweep_network_items(sweep_state *s) {
  double t0 = qcal_now();
  char json[4400];
  struct stat sb;
  if (stat(s->cfg.model, &sb) == 0 && S_ISDIR(sb.st_mode))
    snprintf(json, sizeof json, "%s/posenet.json", s->cfg.model);
  else
    snprintf(json, sizeof json, "%s", s->cfg.model);
  if (stat(json, &sb) != 0)
    return qcal_error(QCAL_EIO, "%s: model not found (run scripts/fetch-data.sh, or pass --model)",
                      json);
  QCAL_TRY(qcal_tfjs_load(json, &s->model));
  s->have_model = true;
  QCAL_TRY(load_images(s));
  s->t_load += qcal_now() - t0;

  t0 = qcal_now();
  const qcal_model *m = &s->model;
  const int L = m->nlayers, nimg = s->ncalib + s->nheld;
  qcal_tensor **acts = calloc((size_t)nimg, sizeof *acts);
  qcal_status st = QCAL_OK;
  for (int i = 0; i < nimg && st == QCAL_OK; i++) {
    int idx = i < s->ncalib ? s->calib_idx[i] : s->held_idx[i - s->ncalib];
    acts[i] = calloc((size_t)L, sizeof **acts);
    st = qcal_model_forward(m, &s->images[idx], NULL, acts[i]);
  }
  s->t_forward += qcal_now() - t0;
  for (int l = 0; l < L && st == QCAL_OK; l++) {
    const qcal_layer *ly = &m->layers[l];
    char shortn[128];
    qcal_layer_short_name(ly->name, shortn, sizeof shortn);
    sweep_item w = {0};
    snprintf(w.name, sizeof w.name, "%s/weight", shortn);
    snprintf(w.graph_tensor, sizeof w.graph_tensor, "%s", ly->weight.name);
    w.kind = ITEM_WEIGHT;
    w.layer = l;
    w.axis = ly->weight_axis;
    if (qcal_sweep_selected(s, w.name)) {
      st = qcal_tensor_alloc(&w.calib, ly->weight.ndim, ly->weight.shape);
      if (st == QCAL_OK) {
        memcpy(w.calib.data, ly->weight.data, ly->weight.numel * sizeof(float));
        snprintf(w.calib.name, sizeof w.calib.name, "%s", w.name);
        st = qcal_sweep_add_item(s, &w);
      }
    }
    sweep_item a = {0};
    snprintf(a.name, sizeof a.name, "%s/input", shortn);
    snprintf(a.graph_tensor, sizeof a.graph_tensor, "%s",
             ly->input < 0 ? m->input_name : m->layers[ly->input].name);
    a.kind = ITEM_ACTIVATION;
    a.layer = l;
    a.axis = 3; /* NHWC channels */
    if (st == QCAL_OK && qcal_sweep_selected(s, a.name)) {
      qcal_tensor **parts = malloc((size_t)nimg * sizeof *parts);
      for (int i = 0; i < nimg; i++)
        parts[i] = (qcal_tensor *)qcal_layer_input(
            m, l, &s->images[i < s->ncalib ? s->calib_idx[i] : s->held_idx[i - s->ncalib]],
            acts[i]);
      st = stack(parts, s->ncalib, &a.calib);
      if (st == QCAL_OK)
        st = stack(parts + s->ncalib, s->nheld, &a.eval);
      free(parts);
      if (st == QCAL_OK)
        st = qcal_sweep_add_item(s, &a);
    }
  }
  /* keep the held-out FP32 activations for the end-to-end runs */
  s->fp32_acts = calloc((size_t)s->nheld, sizeof *s->fp32_acts);
  for (int i = 0; i < nimg; i++) {
    if (i >= s->ncalib && st == QCAL_OK) {
      s->fp32_acts[i - s->ncalib] = acts[i];
    } else if (acts[i]) {
      qcal_acts_free(m, acts[i]);
      free(acts[i]);
    }
  }
  free(acts);
  return st;
}

qcal_status qcal_sweep_synthetic_items(sweep_state *s) {
  double t0 = qcal_now();
  const size_t n = (size_t)s->cfg.synthetic_size;
  qcal_status st = QCAL_OK;
  for (size_t d = 0; d < qcal_synthetic_count && st == QCAL_OK; d++) {
    sweep_item it = {0};
    snprintf(it.name, sizeof it.name, "synthetic/%s", qcal_synthetic[d].name);
    snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s", qcal_synthetic[d].name);
    it.kind = ITEM_SYNTHETIC;
    it.layer = -1;
    it.axis = QCAL_PER_TENSOR;
    if (!qcal_sweep_selected(s, it.name))
      continue;
    st =
        qcal_synthetic_make(qcal_synthetic[d].name, (uint64_t)s->cfg.seed + 7919 * d, n, &it.calib);
    if (st == QCAL_OK)
      st = qcal_sweep_add_item(s, &it);
  }
  /* per-channel variants: 64 channels whose ranges span up to 100x */
  const char *pc[] = {"gaussian", "laplace"};
  for (int k = 0; k < 2 && st == QCAL_OK; k++) {
    sweep_item it = {0};
    snprintf(it.name, sizeof it.name, "synthetic/%s-channels", pc[k]);
    snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s-channels", pc[k]);
    it.kind = ITEM_SYNTHETIC;
    it.layer = -1;
    it.axis = 0;
    if (!qcal_sweep_selected(s, it.name))
      continue;
    st = qcal_synthetic_channels(pc[k], (uint64_t)s->cfg.seed + 104729u * (k + 1), 64,
                                 n / 64 ? n / 64 : 1, 100.0, &it.calib);
    if (st == QCAL_OK)
      st = qcal_sweep_add_item(s, &it);
  }
  s->t_load += qcal_now() - t0;
  return st;
}

static qcal_status add_file_tensor(void *ctx, qcal_tensor *t) {
  sweep_state *s = ctx;
  sweep_item it = {0};
  if (snprintf(it.name, sizeof it.name, "file/%s", t->name) >= (int)sizeof it.name)
    it.name[sizeof it.name - 1] = '\0'; /* long names are cut */
  it.kind = ITEM_FILE;
  snprintf(it.graph_tensor, sizeof it.graph_tensor, "%s", t->name);
  it.layer = -1;
  if (!qcal_sweep_selected(s, it.name)) {
    qcal_tensor_free(t);
    return QCAL_OK;
  }
  qcal_status st = qcal_tensor_check(t);
  if (st != QCAL_OK) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", qcal_last_error());
    qcal_tensor_free(t);
    return qcal_error(st, "%s: %s", t->name, msg);
  }
  it.axis = QCAL_PER_TENSOR;
  if (t->ndim >= 2) {
    int a = s->cfg.file_axis < 0 ? s->cfg.file_axis + t->ndim : s->cfg.file_axis;
    if (a < 0 || a >= t->ndim) {
      qcal_tensor_free(t);
      return qcal_error(QCAL_EINVAL, "%s: --file-axis %d out of range for %d dimensions", it.name,
                        s->cfg.file_axis, t->ndim);
    }
    it.axis = a;
  }
  it.calib = *t;
  return qcal_sweep_add_item(s, &it);
}

qcal_status qcal_sweep_file_items(sweep_state *s, const char *spec) {
  double t0 = qcal_now();
  qcal_status st = qcal_load_tensors(spec, add_file_tensor, s);
  s->t_load += qcal_now() - t0;
  return st;
}

void qcal_sweep_free(sweep_state *s) {
  for (int i = 0; i < s->nitems; i++) {
    qcal_tensor_free(&s->items[i].calib);
    qcal_tensor_free(&s->items[i].eval);
    qcal_histogram_free(&s->items[i].hist);
  }
  free(s->items);
  for (size_t r = 0; r < s->nrows; r++)
    free(s->rows[r].amax);
  free(s->rows);
  free(s->item_first);
  if (s->fp32_acts) {
    for (int i = 0; i < s->nheld; i++)
      if (s->fp32_acts[i]) {
        qcal_acts_free(&s->model, s->fp32_acts[i]);
        free(s->fp32_acts[i]);
      }
    free(s->fp32_acts);
  }
  for (int i = 0; i < s->nimages; i++)
    qcal_tensor_free(&s->images[i]);
  free(s->images);
  free(s->image_names);
  free(s->image_status);
  free(s->image_ok);
  free(s->calib_idx);
  free(s->held_idx);
  if (s->have_model)
    qcal_model_free(&s->model);
  if (s->has_filter)
    regfree(&s->filter);
  qcal_table_free(s->e2e);
  qcal_table_free(s->sens);
}
