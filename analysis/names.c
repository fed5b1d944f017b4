/* Display names of layers from their nodes' scope paths. Exporters write
 * long paths ("MobilenetV1/MobilenetV1/Conv2d_3_depthwise/BatchNorm/
 * batchnorm/add_1/conv", "/layer1/layer1.0/conv1/Conv"); a reader wants the
 * part that tells layers apart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcal/sweep.h"

#define MAXC 32

typedef struct {
  char buf[512];
  const char *c[MAXC];
  int n;
} path;

/* Split on '/', dropping empty components and a component equal to the one
 * before it (TF's re-entered scopes: "MobilenetV1/MobilenetV1/..."), after
 * cutting an importer's derived suffix ("depthwise#nchw": mark '#'). */
static void split(const char *name, char mark, path *p) {
  snprintf(p->buf, sizeof p->buf, "%s", name ? name : "");
  char *cut = mark ? strchr(p->buf, mark) : NULL;
  if (cut && cut != p->buf)
    *cut = '\0';
  p->n = 0;
  for (char *s = p->buf, *tok; (tok = strsep(&s, "/"));)
    if (*tok && p->n < MAXC && !(p->n && !strcmp(p->c[p->n - 1], tok)))
      p->c[p->n++] = tok;
}

static void join(const path *p, int from, int to, char *out, size_t cap) {
  size_t u = 0;
  out[0] = '\0';
  for (int k = from; k < to && u < cap; k++)
    u += (size_t)snprintf(out + u, cap - u, "%s%s", k > from ? "/" : "", p->c[k]);
}

void qcal_layer_names(const qcal_graph *g, const int *nodes, int n, char (*out)[160]) {
  path *p = calloc((size_t)(n ? n : 1), sizeof *p);
  if (!p) { /* out of memory: the full node names */
    for (int i = 0; i < n; i++)
      snprintf(out[i], 160, "%s", g->nodes[nodes[i]].name ? g->nodes[nodes[i]].name : "");
    return;
  }
  for (int i = 0; i < n; i++)
    split(g->nodes[nodes[i]].name, g->name_mark, &p[i]);
  /* the root every layer shares (never a whole path) */
  int root = 0;
  for (bool same = n > 1; same; root++)
    for (int i = 0; i < n && same; i++)
      same = root + 1 < p[i].n && !strcmp(p[i].c[root], p[0].c[root]);
  root = root > 0 ? root - 1 : 0;
  /* each layer: the shortest prefix after the root that no other layer has */
  for (int i = 0; i < n; i++) {
    int len = 1;
    for (; root + len < p[i].n; len++) {
      bool unique = true;
      for (int j = 0; j < n && unique; j++)
        if (j != i && p[j].n >= root + len) {
          bool eq = true;
          for (int k = root; k < root + len && eq; k++)
            eq = !strcmp(p[i].c[k], p[j].c[k]);
          unique = !eq;
        }
      if (unique)
        break;
    }
    if (p[i].n == 0)
      snprintf(out[i], 160, "%s_%d", qcal_op_infos[g->nodes[nodes[i]].op].name, nodes[i]);
    else
      join(&p[i], root, root + len < p[i].n ? root + len : p[i].n, out[i], 160);
  }
  /* names still equal (duplicated node names) get #2, #3, ... in order:
   * counted against the names as cut, before any suffix */
  char(*cut)[160] = malloc((size_t)(n > 0 ? n : 1) * sizeof *cut);
  for (int i = 0; cut && i < n; i++)
    memcpy(cut[i], out[i], sizeof cut[i]);
  for (int i = 0; cut && i < n; i++) {
    int k = 1;
    for (int j = 0; j < i; j++)
      k += !strcmp(cut[i], cut[j]);
    if (k > 1) {
      size_t l = strlen(out[i]);
      l = l < 146 ? l : 146;
      snprintf(out[i] + l, 160 - l, "#%d", k % 1000000);
    }
  }
  free(cut);
  free(p);
}
