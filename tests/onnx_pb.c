/* Protobuf wire format: varints, length-delimited fields, skipping. */
#include "tests/onnx_pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const unsigned char *p, *end;
} rd;

static int varint(rd *r, uint64_t *v) {
  *v = 0;
  for (int s = 0; s < 64 && r->p < r->end; s += 7) {
    unsigned char b = *r->p++;
    *v |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80))
      return 0;
  }
  return -1;
}

/* Read one field header; for wire type 2, sub is its payload. */
static int field(rd *r, uint32_t *num, int *wt, uint64_t *v, rd *sub) {
  uint64_t key;
  if (varint(r, &key))
    return -1;
  *num = (uint32_t)(key >> 3);
  *wt = (int)(key & 7);
  switch (*wt) {
  case 0:
    return varint(r, v);
  case 1:
    if (r->end - r->p < 8)
      return -1;
    r->p += 8;
    return 0;
  case 5:
    if (r->end - r->p < 4)
      return -1;
    r->p += 4;
    return 0;
  case 2:
    if (varint(r, v) || (uint64_t)(r->end - r->p) < *v)
      return -1;
    sub->p = r->p;
    sub->end = r->p + *v;
    r->p += *v;
    return 0;
  }
  return -1;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return b;
}

static size_t width(int dtype) {
  return dtype == PB_FLOAT || dtype == PB_INT32 ? 4 : 1;
}

int pb_load_tensor(const char *path, pb_tensor *t) {
  memset(t, 0, sizeof *t);
  size_t n;
  unsigned char *buf = slurp(path, &n);
  if (!buf)
    return -1;
  rd r = {buf, buf + n}, sub = {0}, raw = {0}, packed_i32 = {0}, packed_f = {0};
  int have_raw = 0, have_i32 = 0, have_f = 0;
  while (r.p < r.end) {
    uint32_t num;
    int wt;
    uint64_t v;
    if (field(&r, &num, &wt, &v, &sub)) {
      free(buf);
      return -1;
    }
    if (num == 1 && wt == 0 && t->ndim < 8)
      t->dims[t->ndim++] = (int64_t)v;
    else if (num == 1 && wt == 2)
      while (sub.p < sub.end && t->ndim < 8 && !varint(&sub, &v))
        t->dims[t->ndim++] = (int64_t)v;
    else if (num == 2 && wt == 0)
      t->dtype = (int)v;
    else if (num == 9 && wt == 2)
      raw = sub, have_raw = 1;
    else if (num == 5 && wt == 2)
      packed_i32 = sub, have_i32 = 1;
    else if (num == 4 && wt == 2)
      packed_f = sub, have_f = 1;
  }
  t->numel = 1;
  for (int i = 0; i < t->ndim; i++)
    t->numel *= (size_t)t->dims[i];
  size_t w = width(t->dtype);
  t->data = calloc(t->numel ? t->numel : 1, w);
  int rc = 0;
  if (have_raw && (size_t)(raw.end - raw.p) == t->numel * w) {
    memcpy(t->data, raw.p, t->numel * w);
  } else if (have_f && t->dtype == PB_FLOAT &&
             (size_t)(packed_f.end - packed_f.p) == t->numel * 4) {
    memcpy(t->data, packed_f.p, t->numel * 4);
  } else if (have_i32) {
    for (size_t i = 0; i < t->numel; i++) {
      uint64_t v;
      if (varint(&packed_i32, &v)) {
        rc = -1;
        break;
      }
      int32_t x = (int32_t)v;
      memcpy(t->data + i * w, &x, w); /* little-endian low bytes */
    }
  } else {
    rc = -1;
  }
  free(buf);
  if (rc)
    pb_free_tensor(t);
  return rc;
}

void pb_free_tensor(pb_tensor *t) {
  free(t->data);
  t->data = NULL;
}

int pb_model_int_attr(const char *path, const char *name, int64_t *value) {
  size_t n;
  unsigned char *buf = slurp(path, &n);
  if (!buf)
    return -1;
  rd r = {buf, buf + n}, graph = {0}, node = {0}, sub;
  uint32_t num;
  int wt, found_graph = 0, found_node = 0, rc = 1;
  uint64_t v;
  while (r.p < r.end && !found_graph)
    if (field(&r, &num, &wt, &v, &sub) == 0 && num == 7 && wt == 2)
      graph = sub, found_graph = 1;
    else if (r.p >= r.end)
      break;
  while (found_graph && graph.p < graph.end && !found_node)
    if (field(&graph, &num, &wt, &v, &sub))
      break;
    else if (num == 1 && wt == 2)
      node = sub, found_node = 1;
  while (found_node && node.p < node.end) {
    if (field(&node, &num, &wt, &v, &sub))
      break;
    if (num != 5 || wt != 2)
      continue;
    rd attr = sub, s2;
    char aname[64] = "";
    int64_t ival = 0;
    int has_i = 0;
    while (attr.p < attr.end) {
      if (field(&attr, &num, &wt, &v, &s2))
        break;
      if (num == 1 && wt == 2 && (size_t)(s2.end - s2.p) < sizeof aname)
        memcpy(aname, s2.p, (size_t)(s2.end - s2.p)), aname[s2.end - s2.p] = 0;
      else if (num == 3 && wt == 0)
        ival = (int64_t)v, has_i = 1;
    }
    if (has_i && !strcmp(aname, name)) {
      *value = ival;
      rc = 0;
    }
  }
  free(buf);
  return found_graph ? rc : -1;
}
