/* qcal schema: the results schema (include/qcal/schema.inc) for people
 * (Markdown, as in docs/results.md) and for tools (JSON). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench/cli.h"
#include "qcal/schema.h"

typedef struct {
  const char *format;
} schema_cfg;

static const char *const formats[] = {"md", "json", NULL};

static const qcal_opt opts[] = {
    {"format", "F", "md (the docs table) or json (for tools)", offsetof(schema_cfg, format),
     OPT_CHOICE, 0, 0, formats},
    {NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};

static const qcal_cmd_info info = {
    "schema",
    "qcal schema [--format md|json]",
    "Print every table and column of a results file: type, units, the values the\n"
    "reader accepts and their meaning. Writers, the validating reader, the docs\n"
    "and the Python oracles all follow this one list.",
    opts,
};

int qcal_cmd_schema(int argc, char **argv) {
  schema_cfg cfg = {.format = "md"};
  const char *pos[1];
  int npos, r = qcal_opts_parse(&info, &cfg, argc, argv, pos, 0, &npos);
  if (r)
    return r > 0 ? QCAL_EXIT_OK : QCAL_EXIT_USAGE;
  if (!strcmp(cfg.format, "json"))
    qcal_schema_print_json(stdout);
  else
    qcal_schema_print_md(stdout);
  return QCAL_EXIT_OK;
}
