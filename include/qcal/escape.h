/* Names come from files other people made; these make them safe wherever
 * qcal writes them. Each writes into buf (cap bytes, truncating) and returns
 * buf. */
#ifndef QCAL_ESCAPE_H
#define QCAL_ESCAPE_H

#include <stddef.h>

/* The inside of a single-quoted gnuplot string: ' doubled, control
 * characters (which would end the command) as '?'. */
const char *qcal_escape_gnuplot(const char *s, char *buf, size_t cap);
/* The inside of a double-quoted field of a gnuplot data file: " as ',
 * control characters as '?'. */
const char *qcal_escape_data(const char *s, char *buf, size_t cap);
/* HTML text and attribute values: & < > " ' as entities. */
const char *qcal_escape_html(const char *s, char *buf, size_t cap);
/* A Markdown table cell: inline HTML as entities, Markdown punctuation and |
 * backslash-escaped, line breaks as spaces. */
const char *qcal_escape_md(const char *s, char *buf, size_t cap);

/* Terminal text: control characters (escape sequences, line breaks) as '?'. */
const char *qcal_escape_text(const char *s, char *buf, size_t cap);

#endif
