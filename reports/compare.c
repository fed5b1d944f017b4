/* qcal compare: match results by their keys, flag quality changes past the
 * thresholds, and timing regressions that are both significant (two-sided
 * Mann-Whitney U, as Google Benchmark's compare.py) and large enough. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/compare.h"

qcal_status qcal_thresholds_load(const char *path, qcal_thresholds *t) {
  FILE *f = fopen(path, "r");
  if (!f)
    return qcal_error(QCAL_EIO, "%s: cannot open thresholds file", path);
  char line[256];
  int ln = 0;
  while (fgets(line, sizeof line, f)) {
    ln++;
    char *h = strchr(line, '#');
    if (h)
      *h = '\0';
    char key[64];
    double v;
    char *p = line;
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      continue;
    if (sscanf(p, "%63[a-z_] = %lf", key, &v) != 2) {
      fclose(f);
      return qcal_error(QCAL_EFORMAT, "%s:%d: expected 'key = number'", path, ln);
    }
    double *dst = !strcmp(key, "sqnr_db_drop")     ? &t->sqnr_db_drop
                  : !strcmp(key, "amax_rel")       ? &t->amax_rel
                  : !strcmp(key, "agreement_drop") ? &t->agreement_drop
                  : !strcmp(key, "alpha")          ? &t->alpha
                  : !strcmp(key, "min_effect")     ? &t->min_effect
                                                   : NULL;
    if (!dst || !(v >= 0) || !isfinite(v)) {
      fclose(f);
      return qcal_error(QCAL_EFORMAT, "%s:%d: unknown key '%s' or bad value", path, ln, key);
    }
    *dst = v;
  }
  fclose(f);
  return QCAL_OK;
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

static void only(char ***list, size_t *n, const char *key) {
  char **l = realloc(*list, (*n + 1) * sizeof *l);
  if (!l)
    return;
  *list = l;
  l[(*n)++] = strdup(key);
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
  const char *table;
  const char *keys[6];
  struct {
    const char *name;
    int kind; /* 0 higher-is-better dB, 1 amax (relative), 2 agreement (higher better) */
  } metrics[4];
} spec;

static const spec quality_specs[] = {
    {"results",
     {"tensor", "method", "percentile", "granularity", "bits", NULL},
     {{"sqnr_db", 0}, {"amax_min", 1}, {"amax_max", 1}, {"amax", 1}}},
    {"e2e",
     {"act_method", "weight_granularity", "bits", NULL},
     {{"heatmap_sqnr_db", 0}, {"offset_sqnr_db", 0}, {"keypoint_agreement", 2}, {NULL, 0}}},
    {"sensitivity",
     {"layer_name", "weight_granularity", NULL},
     {{"heatmap_sqnr_db", 0}, {"offset_sqnr_db", 0}, {NULL, 0}, {NULL, 0}}},
};

static qcal_status compare_quality(qcal_results *rb, qcal_results *rn, const spec *sp,
                                   const qcal_thresholds *th, qcal_cmp *out) {
  qcal_table *b = qcal_results_table(rb, sp->table), *n = qcal_results_table(rn, sp->table);
  if (!b || !n) {
    qcal_table_free(b), qcal_table_free(n);
    return QCAL_OK; /* a table neither file has is not compared */
  }
  int kb[6], kn[6], nk = 0;
  for (; nk < 6 && sp->keys[nk]; nk++) {
    kb[nk] = qcal_table_find(b, sp->keys[nk]);
    kn[nk] = qcal_table_find(n, sp->keys[nk]);
    if (kb[nk] < 0 || kn[nk] < 0) {
      qcal_table_free(b), qcal_table_free(n);
      return qcal_error(QCAL_EFORMAT, "table '%s' lacks key column '%s'", sp->table, sp->keys[nk]);
    }
  }
  size_t nb = qcal_table_rows(b), nn = qcal_table_rows(n);
  char(*keys_n)[320] = malloc((nn ? nn : 1) * sizeof *keys_n);
  char *matched = calloc(nn ? nn : 1, 1);
  for (size_t j = 0; j < nn; j++)
    key_of(n, (long)j, kn, nk, keys_n[j], sizeof keys_n[j]);
  for (size_t i = 0; i < nb; i++) {
    char key[320], full[400];
    key_of(b, (long)i, kb, nk, key, sizeof key);
    snprintf(full, sizeof full, "%s: %s", sp->table, key);
    size_t j = 0;
    while (j < nn && (matched[j] || strcmp(keys_n[j], key)))
      j++;
    if (j == nn) {
      only(&out->only_base, &out->n_only_base, full);
      continue;
    }
    matched[j] = 1;
    for (int m = 0; m < 4 && sp->metrics[m].name; m++) {
      int cb = qcal_table_find(b, sp->metrics[m].name),
          cn = qcal_table_find(n, sp->metrics[m].name);
      if (cb < 0 || cn < 0)
        continue;
      double vb = qcal_table_get_f(b, (long)i, cb), vn = qcal_table_get_f(n, (long)j, cn);
      qcal_cmp_row *r = add(out);
      if (!r)
        break;
      snprintf(r->key, sizeof r->key, "%s", full);
      snprintf(r->metric, sizeof r->metric, "%s", sp->metrics[m].name);
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
  for (size_t j = 0; j < nn; j++)
    if (!matched[j]) {
      char full[400];
      snprintf(full, sizeof full, "%s: %s", sp->table, keys_n[j]);
      only(&out->only_new, &out->n_only_new, full);
    }
  free(keys_n);
  free(matched);
  qcal_table_free(b), qcal_table_free(n);
  return QCAL_OK;
}

typedef struct {
  qcal_table *t;
  float *s;
  size_t ns;
} samples;

static int load_samples(qcal_results *r, samples *s) {
  memset(s, 0, sizeof *s);
  s->t = qcal_results_table(r, "samples");
  if (!s->t)
    return 0;
  if (qcal_results_f32(r, "/samples_seconds", &s->s, &s->ns) != QCAL_OK) {
    qcal_table_free(s->t);
    s->t = NULL;
    return 0;
  }
  return 1;
}

static int get_samples(const samples *s, long row, double *out, int cap) {
  int c_o = qcal_table_find(s->t, "offset"), c_c = qcal_table_find(s->t, "count");
  size_t off = (size_t)qcal_table_get_i(s->t, row, c_o),
         cnt = (size_t)qcal_table_get_i(s->t, row, c_c);
  int n = 0;
  for (size_t k = 0; k < cnt && off + k < s->ns && n < cap; k++)
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

static void compare_perf(qcal_results *rb, qcal_results *rn, const qcal_thresholds *th,
                         qcal_cmp *out) {
  samples b, n;
  int hb = load_samples(rb, &b), hn = load_samples(rn, &n);
  if (!hb || !hn) {
    if (hb)
      qcal_table_free(b.t), free(b.s);
    if (hn)
      qcal_table_free(n.t), free(n.s);
    return;
  }
  int cb = qcal_table_find(b.t, "name"), cn = qcal_table_find(n.t, "name");
  char *matched = calloc(qcal_table_rows(n.t) + 1, 1);
  static double xs[4096], ys[4096];
  for (size_t i = 0; i < qcal_table_rows(b.t); i++) {
    const char *name = qcal_table_get_s(b.t, (long)i, cb);
    char full[400];
    snprintf(full, sizeof full, "samples: %s", name);
    size_t j = 0;
    while (j < qcal_table_rows(n.t) && strcmp(qcal_table_get_s(n.t, (long)j, cn), name))
      j++;
    if (j == qcal_table_rows(n.t)) {
      only(&out->only_base, &out->n_only_base, full);
      continue;
    }
    matched[j] = 1;
    int nx = get_samples(&b, (long)i, xs, 4096), ny = get_samples(&n, (long)j, ys, 4096);
    qcal_cmp_row *r = add(out);
    if (!r)
      break;
    snprintf(r->key, sizeof r->key, "%s", full);
    snprintf(r->metric, sizeof r->metric, "median seconds");
    r->p = qcal_mann_whitney_p(xs, nx, ys, ny);
    r->base = median_of(xs, nx), r->cur = median_of(ys, ny);
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
  for (size_t j = 0; j < qcal_table_rows(n.t); j++)
    if (!matched[j]) {
      char full[400];
      snprintf(full, sizeof full, "samples: %s", qcal_table_get_s(n.t, (long)j, cn));
      only(&out->only_new, &out->n_only_new, full);
    }
  free(matched);
  qcal_table_free(b.t), free(b.s), qcal_table_free(n.t), free(n.s);
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
  for (size_t s = 0; s < sizeof quality_specs / sizeof quality_specs[0]; s++)
    QCAL_TRY(compare_quality(base, cur, &quality_specs[s], t, out));
  compare_perf(base, cur, t, out);
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
