/* Escaping for every place a name from a file is written: gnuplot scripts,
 * gnuplot data files, HTML and Markdown. */
#include "qcal/escape.h"

#include <stdio.h>
#include <string.h>

/* Names come from files other people made: they reach gnuplot only inside
 * single-quoted strings (no escapes there but '' for '; control characters
 * would end the command, so they become '?'), data files only inside double
 * quotes without ", and the pages only escaped. */
const char *qcal_escape_gnuplot(const char *s, char *buf, size_t cap) {
  size_t u = 0;
  for (; *s && u + 3 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\'')
      buf[u++] = '\'', buf[u++] = '\'';
    else
      buf[u++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
  }
  buf[u] = '\0';
  return buf;
}

/* s with control characters as '?' and one more character replaced. */
static const char *plain(const char *s, char from, char to, char *buf, size_t cap) {
  size_t u = 0;
  for (; *s && u + 2 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    buf[u++] = c < 0x20 || c == 0x7f ? '?' : *s == from ? to : (char)c;
  }
  buf[u] = '\0';
  return buf;
}

const char *qcal_escape_data(const char *s, char *buf, size_t cap) {
  return plain(s, '"', '\'', buf, cap);
}

/* HTML text and attribute values. */
const char *qcal_escape_html(const char *s, char *buf, size_t cap) {
  size_t u = 0;
  for (; *s && u + 7 < cap; s++) {
    const char *e = *s == '&'    ? "&amp;"
                    : *s == '<'  ? "&lt;"
                    : *s == '>'  ? "&gt;"
                    : *s == '"'  ? "&quot;"
                    : *s == '\'' ? "&#39;"
                                 : NULL;
    if (e)
      u += (size_t)snprintf(buf + u, cap - u, "%s", e);
    else
      buf[u++] = (unsigned char)*s < 0x20 ? ' ' : *s;
  }
  buf[u] = '\0';
  return buf;
}

/* Markdown table cells: inline HTML escaped, Markdown punctuation
 * backslash-escaped, no line breaks. */
const char *qcal_escape_md(const char *s, char *buf, size_t cap) {
  size_t u = 0;
  for (; *s && u + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '<')
      u += (size_t)snprintf(buf + u, cap - u, "&lt;");
    else if (c == '>')
      u += (size_t)snprintf(buf + u, cap - u, "&gt;");
    else if (c == '&')
      u += (size_t)snprintf(buf + u, cap - u, "&amp;");
    else if (strchr("\\`*_[]()#|!~{}+-.", c) && c)
      buf[u++] = '\\', buf[u++] = (char)c;
    else
      buf[u++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  buf[u] = '\0';
  return buf;
}

const char *qcal_escape_text(const char *s, char *buf, size_t cap) {
  return plain(s, '\0', '\0', buf, cap);
}
