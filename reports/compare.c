/* qcal compare: match results by their keys, flag quality changes past the
 * thresholds, and timing regressions that are both significant (two-sided
 * Mann-Whitney U, as Google Benchmark's compare.py) and large enough. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcal/compare.h"

qcal_status qcal_thresholds_load(const char *path, qcal_thresholds *t) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return qcal_error(QCAL_EIO, "%s: cannot open thresholds file: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return qcal_error(QCAL_EIO, "%s: thresholds file is not a regular file", path);
  FILE *f = fopen(path, "r");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: cannot open thresholds file: %s", path, strerror(errno));
  char line[256];
  int ln = 0;
  qcal_status st = QCAL_OK;
  while (st == QCAL_OK && fgets(line, sizeof line, f)) {
    ln++;
    if (!strchr(line, '\n') && !feof(f)) {
      st = qcal_error(QCAL_EFORMAT, "%s:%d: line longer than %zu bytes", path, ln, sizeof line - 2);
      break;
    }
    char *h = strchr(line, '#');
    if (h)
      *h = '\0';
    char key[64];
    double v;
    int end = 0;
    char *p = line;
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      continue;
    if (sscanf(p, "%63[a-z_] = %lf %n", key, &v, &end) != 2 || p[end] != '\0') {
      st =
          qcal_error(QCAL_EFORMAT, "%s:%d: expected 'key = number' and nothing after it", path, ln);
      break;
    }
    double *dst = !strcmp(key, "sqnr_db_drop")     ? &t->sqnr_db_drop
                  : !strcmp(key, "amax_rel")       ? &t->amax_rel
                  : !strcmp(key, "agreement_drop") ? &t->agreement_drop
                  : !strcmp(key, "alpha")          ? &t->alpha
                  : !strcmp(key, "min_effect")     ? &t->min_effect
                                                   : NULL;
    if (!dst)
      st = qcal_error(QCAL_EFORMAT, "%s:%d: unknown key '%s'", path, ln, key);
    else if (!(v >= 0) || !isfinite(v) || (dst == &t->alpha && v > 1))
      st = qcal_error(QCAL_EFORMAT, "%s:%d: %s = %g is out of range", path, ln, key, v);
    else
      *dst = v;
  }
  if (st == QCAL_OK && ferror(f))
    st = qcal_error(QCAL_EIO, "%s: read error", path);
  fclose(f);
  return st;
}

typedef struct {
  double v;
  int g;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
  double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
  return (x > y) - (x < y);
}

double qcal_mann_whitney_p(const double *x, int nx, const double *y, int ny) {
  int n = nx + ny;
  if (nx < 1 || ny < 1)
    return 1.0;
  ranked *r = malloc((size_t)n * sizeof *r);
  if (!r)
    return 1.0;
  for (int i = 0; i < nx; i++)
    r[i] = (ranked){x[i], 0};
  for (int i = 0; i < ny; i++)
    r[nx + i] = (ranked){y[i], 1};
  qsort(r, (size_t)n, sizeof *r, cmp_ranked);
  double r1 = 0, ties = 0;
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && r[j + 1].v == r[i].v)
      j++;
    double avg = 0.5 * (i + j) + 1.0, t = j - i + 1;
    ties += t * t * t - t;
    for (int k = i; k <= j; k++)
      if (r[k].g == 0)
        r1 += avg;
    i = j + 1;
  }
  free(r);
  double u1 = r1 - nx * (nx + 1) / 2.0, mu = nx * (double)ny / 2.0;
  double var = nx * (double)ny / 12.0 * ((n + 1) - ties / ((double)n * (n - 1)));
  if (var <= 0)
    return 1.0;
  double z = (fabs(u1 - mu) - 0.5) / sqrt(var);
  if (z < 0)
    z = 0;
  return erfc(z / sqrt(2.0));
}

static qcal_cmp_row *add(qcal_cmp *c) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 256;
    qcal_cmp_row *n = realloc(c->rows, cap * sizeof *n);
    if (!n)
      return NULL;
    c->rows = n;
    c->cap = cap;
  }
  qcal_cmp_row *r = &c->rows[c->n++];
  memset(r, 0, sizeof *r);
  r->p = NAN;
  return r;
}

/* Append to a list whose capacity doubles at each power of two. */
static void only(char ***list, size_t *n, const char *key) {
  if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, ...: full */
    char **l = realloc(*list, (*n ? 2 * *n : 1) * sizeof *l);
    if (!l)
      return;
    *list = l;
  }
  (*list)[(*n)++] = strdup(key);
}

/* Row keys of a table from the named key columns. */
static void key_of(const qcal_table *t, long row, const int *cols, int ncols, char *out,
                   size_t cap) {
  size_t u = 0;
  out[0] = '\0';
  for (int k = 0; k < ncols && u < cap; k++) {
    const char *sep = k ? " | " : "";
    int c = cols[k];
    if (qcal_table_col_type(t, c) == 's')
      u += (size_t)snprintf(out + u, cap - u, "%s%s", sep, qcal_table_get_s(t, row, c));
    else if (qcal_table_col_type(t, c) == 'i')
      u += (size_t)snprintf(out + u, cap - u, "%s%s=%lld", sep, qcal_table_col_name(t, c),
                            (long long)qcal_table_get_i(t, row, c));
    else if (!isnan(qcal_table_get_f(t, row, c)))
      u += (size_t)snprintf(out + u, cap - u, "%s%s=%g", sep, qcal_table_col_name(t, c),
                            qcal_table_get_f(t, row, c));
  }
}

typedef struct {
  qcal_table_id table;
  int keys[6]; /* QCAL_COL indices, -1 ends */
  struct {
    int col;  /* -1 ends */
    int kind; /* 0 higher-is-better dB, 1 amax (relative), 2 agreement (higher better) */
  } metrics[4];
} spec;

static const spec quality_specs[] = {
    {QCAL_TABLE_RESULTS,
     {QCAL_COL(RESULTS, tensor), QCAL_COL(RESULTS, method), QCAL_COL(RESULTS, percentile),
      QCAL_COL(RESULTS, granularity), QCAL_COL(RESULTS, bits), -1},
     {{QCAL_COL(RESULTS, sqnr_db), 0},
      {QCAL_COL(RESULTS, amax_min), 1},
      {QCAL_COL(RESULTS, amax_max), 1},
      {QCAL_COL(RESULTS, amax), 1}}},
    {QCAL_TABLE_E2E,
     {QCAL_COL(E2E, act_method), QCAL_COL(E2E, weight_granularity), QCAL_COL(E2E, bits),
      QCAL_COL(E2E, repair), -1},
     {{QCAL_COL(E2E, heatmap_sqnr_db), 0},
      {QCAL_COL(E2E, offset_sqnr_db), 0},
      {QCAL_COL(E2E, keypoint_agreement), 2},
      {-1, 0}}},
    {QCAL_TABLE_SENSITIVITY,
     {QCAL_COL(SENSITIVITY, layer_name), QCAL_COL(SENSITIVITY, weight_granularity), -1},
     {{QCAL_COL(SENSITIVITY, heatmap_sqnr_db), 0},
      {QCAL_COL(SENSITIVITY, offset_sqnr_db), 0},
      {-1, 0},
      {-1, 0}}},
    {QCAL_TABLE_E2E_OUTPUTS,
     {QCAL_COL(E2E_OUTPUTS, act_method), QCAL_COL(E2E_OUTPUTS, weight_granularity),
      QCAL_COL(E2E_OUTPUTS, bits), QCAL_COL(E2E_OUTPUTS, output), QCAL_COL(E2E_OUTPUTS, repair),
      -1},
     {{QCAL_COL(E2E_OUTPUTS, sqnr_db), 0},
      {QCAL_COL(E2E_OUTPUTS, top1_agreement), 2},
      {-1, 0},
      {-1, 0}}},
    {QCAL_TABLE_SENSITIVITY_OUTPUTS,
     {QCAL_COL(SENSITIVITY_OUTPUTS, layer_name), QCAL_COL(SENSITIVITY_OUTPUTS, weight_granularity),
      QCAL_COL(SENSITIVITY_OUTPUTS, output), -1},
     {{QCAL_COL(SENSITIVITY_OUTPUTS, sqnr_db), 0}, {-1, 0}, {-1, 0}, {-1, 0}}},
};

/* Keys of a table's rows, sorted, for matching in n log n. */
typedef struct {
  char (*key)[320];
  size_t *order, n;
  char *matched;
} keyed;

static const keyed *g_sort_keys; /* qsort has no context argument */
static int cmp_key_idx(const void *a, const void *b) {
  int c = strcmp(g_sort_keys->key[*(const size_t *)a], g_sort_keys->key[*(const size_t *)b]);
  return c ? c
           : (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
}

static qcal_status keyed_build(keyed *k, size_t n, void (*key)(const void *, long, char *, size_t),
                               const void *ctx) {
  k->n = n;
  k->key = malloc((n ? n : 1) * sizeof *k->key);
  k->order = malloc((n ? n : 1) * sizeof *k->order);
  k->matched = calloc(n ? n : 1, 1);
  if (!k->key || !k->order || !k->matched)
    return qcal_error(QCAL_ENOMEM, "compare: out of memory");
  for (size_t j = 0; j < n; j++) {
    key(ctx, (long)j, k->key[j], sizeof k->key[j]);
    k->order[j] = j;
  }
  g_sort_keys = k;
  qsort(k->order, n, sizeof *k->order, cmp_key_idx);
  return QCAL_OK;
}

/* The first unmatched row with this key, or n. */
static size_t keyed_match(keyed *k, const char *key) {
  size_t lo = 0, hi = k->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(k->key[k->order[mid]], key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (; lo < k->n && !strcmp(k->key[k->order[lo]], key); lo++)
    if (!k->matched[k->order[lo]]) {
      k->matched[k->order[lo]] = 1;
      return k->order[lo];
    }
  return k->n;
}

static void keyed_free(keyed *k) {
  free(k->key), free(k->order), free(k->matched);
}

typedef struct {
  const qcal_table *t;
  const int *cols;
  int ncols;
} key_ctx;

static void table_key(const void *ctx, long row, char *out, size_t cap) {
  const key_ctx *k = ctx;
  key_of(k->t, row, k->cols, k->ncols, out, cap);
}

static void sample_key(const void *ctx, long row, char *out, size_t cap) {
  snprintf(out, cap, "%s", qcal_table_get_s(ctx, row, QCAL_COL(SAMPLES, name)));
}

/* Read table id from both files: 0 when neither has it, an error when only
 * BASE has it (a run that lost a table must not pass the gate). */
static qcal_status both_tables(qcal_results *rb, qcal_results *rn, qcal_table_id id, qcal_table **b,
                               qcal_table **n) {
  *b = *n = NULL;
  const int hb = qcal_results_has(rb, id), hn = qcal_results_has(rn, id);
  if (!hb && !hn)
    return QCAL_OK;
  if (hb && !hn)
    return qcal_error(QCAL_EFORMAT, "%s: table '%s' missing (%s has it)", rn->path,
                      qcal_schema_tables[id].name, rb->path);
  qcal_status st = hb ? qcal_results_read(rb, id, b) : QCAL_OK;
  if (st == QCAL_OK)
    st = qcal_results_read(rn, id, n);
  if (st == QCAL_OK && *b && qcal_table_rows(*b) && !qcal_table_rows(*n))
    st = qcal_error(QCAL_EFORMAT, "%s: table '%s' is empty (%s has %zu rows)", rn->path,
                    qcal_schema_tables[id].name, rb->path, qcal_table_rows(*b));
  if (st != QCAL_OK) {
    qcal_table_free(*b), qcal_table_free(*n);
    *b = *n = NULL;
  }
  return st;
}

static qcal_status compare_quality(qcal_results *rb, qcal_results *rn, const spec *sp,
                                   const qcal_thresholds *th, qcal_cmp *out) {
  qcal_table *b, *n;
  QCAL_TRY(both_tables(rb, rn, sp->table, &b, &n));
  if (!b || !n) {
    qcal_table_free(b), qcal_table_free(n);
    return QCAL_OK; /* a table BASE lacks is not compared */
  }
  const char *tname = qcal_schema_tables[sp->table].name;
  int nk = 0;
  while (nk < 6 && sp->keys[nk] >= 0)
    nk++;
  const int *kcols = sp->keys;
  size_t nb = qcal_table_rows(b);
  keyed kn = {0};
  key_ctx kc = {n, kcols, nk};
  qcal_status st = keyed_build(&kn, qcal_table_rows(n), table_key, &kc);
  for (size_t i = 0; i < nb && st == QCAL_OK; i++) {
    char key[320], full[400];
    key_of(b, (long)i, kcols, nk, key, sizeof key);
    snprintf(full, sizeof full, "%s: %s", tname, key);
    size_t j = keyed_match(&kn, key);
    if (j == kn.n) {
      only(&out->only_base, &out->n_only_base, full);
      continue;
    }
    out->compared_keys++;
    for (int m = 0; m < 4 && sp->metrics[m].col >= 0; m++) {
      const int cb = sp->metrics[m].col, cn = cb; /* schema order in both */
      double vb = qcal_table_get_f(b, (long)i, cb), vn = qcal_table_get_f(n, (long)j, cn);
      qcal_cmp_row *r = add(out);
      if (!r)
        break;
      snprintf(r->key, sizeof r->key, "%s", full);
      snprintf(r->metric, sizeof r->metric, "%s", qcal_table_col_name(b, cb));
      r->base = vb, r->cur = vn, r->quality = 1;
      int kind = sp->metrics[m].kind;
      if (isnan(vb) && isnan(vn)) {
        r->verdict = CMP_OK;
      } else if (kind == 1) {
        double rel = fabs(vn - vb) / (fabs(vb) > 1e-30 ? fabs(vb) : 1.0);
        r->delta = rel;
        r->verdict = rel > th->amax_rel ? CMP_REGRESSION : CMP_OK;
        if (r->verdict)
          snprintf(r->note, sizeof r->note, "amax moved %.3g (limit %.3g)", rel, th->amax_rel);
      } else {
        double d = (isinf(vb) && isinf(vn) && vb == vn) ? 0 : vn - vb;
        double lim = kind == 0 ? th->sqnr_db_drop : th->agreement_drop;
        r->delta = d;
        r->verdict = isnan(d) || d < -lim ? CMP_REGRESSION : d > lim ? CMP_IMPROVED : CMP_OK;
        if (r->verdict == CMP_REGRESSION)
          snprintf(r->note, sizeof r->note, "fell %.4g (limit %.4g)", -d, lim);
      }
      if (r->verdict == CMP_REGRESSION)
        out->quality_regressions++;
    }
  }
  for (size_t j = 0; j < kn.n && st == QCAL_OK; j++)
    if (!kn.matched[j]) {
      char full[400];
      snprintf(full, sizeof full, "%s: %s", tname, kn.key[j]);
      only(&out->only_new, &out->n_only_new, full);
    }
  keyed_free(&kn);
  qcal_table_free(b), qcal_table_free(n);
  return st;
}

typedef struct {
  qcal_table *t;
  float *s;
  size_t ns;
} samples;

/* The samples table and its values, every slice checked against them. */
static qcal_status load_samples(qcal_results *r, qcal_table *t, samples *s) {
  memset(s, 0, sizeof *s);
  s->t = t;
  if (!t)
    return QCAL_OK;
  QCAL_TRY(qcal_results_f32(r, "/samples_seconds", &s->s, &s->ns));
  for (size_t i = 0; i < qcal_table_rows(t); i++) {
    uint64_t off = (uint64_t)qcal_table_get_i(t, (long)i, QCAL_COL(SAMPLES, offset)),
             cnt = (uint64_t)qcal_table_get_i(t, (long)i, QCAL_COL(SAMPLES, count));
    if (off > s->ns || cnt > s->ns - off)
      return qcal_error(QCAL_EFORMAT,
                        "%s: /samples/offset: row %zu: samples_seconds[%llu : %llu + %llu] lies "
                        "outside its %zu values",
                        r->path, i, (unsigned long long)off, (unsigned long long)off,
                        (unsigned long long)cnt, s->ns);
  }
  return QCAL_OK;
}

static int get_samples(const samples *s, long row, double *out, int cap) {
  size_t off = (size_t)qcal_table_get_i(s->t, row, QCAL_COL(SAMPLES, offset)),
         cnt = (size_t)qcal_table_get_i(s->t, row, QCAL_COL(SAMPLES, count));
  int n = 0;
  for (size_t k = 0; k < cnt && n < cap; k++)
    out[n++] = s->s[off + k];
  return n;
}

static double median_of(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static qcal_status compare_perf(qcal_results *rb, qcal_results *rn, const qcal_thresholds *th,
                                qcal_cmp *out) {
  qcal_table *tb, *tn;
  QCAL_TRY(both_tables(rb, rn, QCAL_TABLE_SAMPLES, &tb, &tn));
  samples b, n;
  qcal_status st = load_samples(rb, tb, &b);
  if (st == QCAL_OK)
    st = load_samples(rn, tn, &n);
  else
    n = (samples){tn, NULL, 0};
  keyed kn = {0};
  if (st == QCAL_OK && b.t && n.t)
    st = keyed_build(&kn, qcal_table_rows(n.t), sample_key, n.t);
  static double xs[4096], ys[4096];
  for (size_t i = 0; st == QCAL_OK && b.t && n.t && i < qcal_table_rows(b.t); i++) {
    const char *name = qcal_table_get_s(b.t, (long)i, QCAL_COL(SAMPLES, name));
    char full[400];
    snprintf(full, sizeof full, "samples: %s", name);
    size_t j = keyed_match(&kn, name);
    if (j == kn.n) {
      only(&out->only_base, &out->n_only_base, full);
      continue;
    }
    out->compared_keys++;
    int nx = get_samples(&b, (long)i, xs, 4096), ny = get_samples(&n, (long)j, ys, 4096);
    qcal_cmp_row *r = add(out);
    if (!r)
      break;
    snprintf(r->key, sizeof r->key, "%s", full);
    snprintf(r->metric, sizeof r->metric, "median seconds");
    r->p = qcal_mann_whitney_p(xs, nx, ys, ny);
    r->base = nx ? median_of(xs, nx) : NAN, r->cur = ny ? median_of(ys, ny) : NAN;
    r->delta = r->base > 0 ? (r->cur - r->base) / r->base : 0;
    int significant = r->p < th->alpha;
    if (significant && r->delta > th->min_effect) {
      r->verdict = CMP_REGRESSION;
      out->perf_regressions++;
      snprintf(r->note, sizeof r->note, "%.1f%% slower, p = %.3g", 100 * r->delta, r->p);
    } else if (significant && r->delta < -th->min_effect) {
      r->verdict = CMP_IMPROVED;
    }
    if (nx < 9 || ny < 9) {
      out->warnings++;
      if (r->verdict == CMP_OK)
        r->verdict = CMP_WARN;
      snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note),
               "%sfewer than 9 repetitions (%d vs %d): the U test is weak", r->note[0] ? "; " : "",
               nx, ny);
    }
  }
  for (size_t j = 0; st == QCAL_OK && j < kn.n; j++)
    if (!kn.matched[j]) {
      char full[400];
      snprintf(full, sizeof full, "samples: %s", kn.key[j]);
      only(&out->only_new, &out->n_only_new, full);
    }
  keyed_free(&kn);
  qcal_table_free(b.t), free(b.s), qcal_table_free(n.t), free(n.s);
  return st;
}

static double severity(const qcal_cmp_row *r) {
  double base = r->verdict == CMP_REGRESSION ? 1e9 : r->verdict == CMP_WARN ? 1e6 : 0;
  return base + (r->quality ? -r->delta * (strstr(r->metric, "amax") ? -1e3 : 1) : r->delta * 100);
}

static int cmp_sev(const void *a, const void *b) {
  double x = severity(a), y = severity(b);
  return (x < y) - (x > y);
}

qcal_status qcal_compare(qcal_results *base, qcal_results *cur, const qcal_thresholds *t,
                         qcal_cmp *out) {
  memset(out, 0, sizeof *out);
  qcal_status st = QCAL_OK;
  /* a sweep is compared only when it is whole: qcal_results_open already
   * read every table, the amax values and every cross-reference */
  for (size_t s = 0; s < sizeof quality_specs / sizeof quality_specs[0] && st == QCAL_OK; s++)
    st = compare_quality(base, cur, &quality_specs[s], t, out);
  if (st == QCAL_OK)
    st = compare_perf(base, cur, t, out);
  if (st == QCAL_OK && out->compared_keys == 0)
    st = qcal_error(QCAL_EFORMAT,
                    "%s and %s have no rows to compare (no common keys in results, "
                    "e2e, sensitivity, e2e_outputs, sensitivity_outputs or samples)",
                    base->path, cur->path);
  if (st != QCAL_OK) {
    qcal_cmp_free(out);
    return st;
  }
  if (out->n)
    qsort(out->rows, out->n, sizeof *out->rows, cmp_sev);
  return QCAL_OK;
}

void qcal_cmp_free(qcal_cmp *c) {
  free(c->rows);
  for (size_t i = 0; i < c->n_only_base; i++)
    free(c->only_base[i]);
  for (size_t i = 0; i < c->n_only_new; i++)
    free(c->only_new[i]);
  free(c->only_base);
  free(c->only_new);
  memset(c, 0, sizeof *c);
}
