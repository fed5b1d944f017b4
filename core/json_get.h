/* Type-checked json-c accessors for untrusted files (TF.js model.json):
 * json-c's array and string calls assume the type is right, these return
 * NULL / 0 when it is not. */
#ifndef QCAL_CORE_JSON_GET_H
#define QCAL_CORE_JSON_GET_H

#include <json-c/json.h>
#include <stddef.h>

static inline json_object *jget(json_object *o, const char *key) {
  json_object *v = NULL;
  return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
             ? v
             : NULL;
}

static inline size_t jlen(json_object *a) {
  return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static inline json_object *jat(json_object *a, size_t i) {
  return i < jlen(a) ? json_object_array_get_idx(a, i) : NULL;
}

static inline const char *jstr(json_object *s) {
  return s && json_object_is_type(s, json_type_string) ? json_object_get_string(s) : NULL;
}

#endif
