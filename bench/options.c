/* One parser for every sub-command's option table. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cli.h"

const char *const qcal_layout_choices[] = {"nchw", "nhwc", NULL};

int qcal_die(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* one line, whatever a library message contains */
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
    msg[--n] = '\0';
  for (char *p = msg; *p; p++) /* and no terminal control sequences from names */
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
    else if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  fprintf(stderr, "qcal: error: %s\n", msg);
  return QCAL_EXIT_USAGE;
}

int qcal_die_status(qcal_status s) {
  const char *m = qcal_last_error();
  return qcal_die("%s", *m ? m : qcal_status_str(s));
}

static const qcal_opt *find(const qcal_opt *t, const char *name, size_t len) {
  for (; t->name; t++)
    if (strlen(t->name) == len && !strncmp(t->name, name, len))
      return t;
  return NULL;
}

static int set_value(const qcal_cmd_info *cmd, const qcal_opt *o, void *cfg, const char *v) {
  char *end;
  void *dst = (char *)cfg + o->offset;
  switch (o->type) {
  case OPT_INT: {
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
      return qcal_die("%s: --%s expects an integer, got '%s'", cmd->name, o->name, v), -1;
    if ((double)x < o->min || (double)x > o->max)
      return qcal_die("%s: --%s %lld out of range (%g..%g)", cmd->name, o->name, x, o->min, o->max),
             -1;
    *(int *)dst = (int)x;
    return 0;
  }
  case OPT_DOUBLE: {
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
      return qcal_die("%s: --%s expects a number, got '%s'", cmd->name, o->name, v), -1;
    if (x < o->min || x > o->max)
      return qcal_die("%s: --%s %g out of range (%g..%g)", cmd->name, o->name, x, o->min, o->max),
             -1;
    *(double *)dst = x;
    return 0;
  }
  case OPT_CHOICE:
    for (const char *const *c = o->choices; *c; c++)
      if (!strcmp(*c, v)) {
        *(const char **)dst = *c;
        return 0;
      }
    {
      char list[256] = "";
      for (const char *const *c = o->choices; *c; c++) {
        strncat(list, *c, sizeof list - strlen(list) - 2);
        if (c[1])
          strncat(list, ", ", sizeof list - strlen(list) - 1);
      }
      return qcal_die("%s: --%s '%s' is not one of: %s", cmd->name, o->name, v, list), -1;
    }
  case OPT_STRING:
    *(const char **)dst = v;
    return 0;
  case OPT_FLAG:
    break;
  }
  return -1;
}

int qcal_opts_parse(const qcal_cmd_info *cmd, void *cfg, int argc, char **argv, const char **pos,
                    int max_pos, int *npos) {
  *npos = 0;
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      if (*npos >= max_pos)
        return qcal_die("%s: unexpected argument '%s' (see qcal %s --help)", cmd->name, a,
                        cmd->name),
               -1;
      pos[(*npos)++] = a;
      continue;
    }
    if (!strcmp(a, "--")) {
      only_pos = 1;
      continue;
    }
    if (!strcmp(a, "-o") && find(cmd->opts, "output", 6))
      a = "--output"; /* the one short option: -o FILE */
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      qcal_opts_help(cmd, cfg, stdout);
      return 1;
    }
    if (a[1] != '-')
      return qcal_die("%s: unknown option '%s' (see qcal %s --help)", cmd->name, a, cmd->name), -1;
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const qcal_opt *o = find(cmd->opts, name, len);
    if (!o)
      return qcal_die("%s: unknown option '--%.*s' (see qcal %s --help)", cmd->name, (int)len, name,
                      cmd->name),
             -1;
    if (o->type == OPT_FLAG) {
      if (eq)
        return qcal_die("%s: --%s takes no value", cmd->name, o->name), -1;
      *(int *)((char *)cfg + o->offset) = 1;
      continue;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
      if (i + 1 >= argc)
        return qcal_die("%s: --%s needs a value (%s)", cmd->name, o->name, o->meta), -1;
      v = argv[++i];
    }
    if (set_value(cmd, o, cfg, v) != 0)
      return -1;
  }
  return 0;
}

void qcal_opts_help(const qcal_cmd_info *cmd, const void *defaults, FILE *out) {
  fprintf(out, "usage: %s\n\n%s\n\noptions:\n", cmd->usage, cmd->summary);
  for (const qcal_opt *o = cmd->opts; o->name; o++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s%s", o->name, o->meta ? " " : "", o->meta ? o->meta : "");
    fprintf(out, "  %-24s %s", left, o->help);
    const void *d = (const char *)defaults + o->offset;
    switch (o->type) {
    case OPT_INT: /* a default outside the range means "not given: decided later" */
      if (*(const int *)d >= o->min)
        fprintf(out, " (default %d)", *(const int *)d);
      break;
    case OPT_DOUBLE:
      if (!isnan(*(const double *)d))
        fprintf(out, " (default %g)", *(const double *)d);
      break;
    case OPT_STRING:
    case OPT_CHOICE:
      if (*(const char *const *)d)
        fprintf(out, " (default %s)", *(const char *const *)d);
      break;
    case OPT_FLAG:
      break;
    }
    fputc('\n', out);
  }
  fprintf(out, "  %-24s %s\n", "-h, --help", "show this help");
}
