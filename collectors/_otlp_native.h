/* What the two readers of collectors._otlp_native share: _otlp_native.c reads OTLP/protobuf and
 * holds the text caches and semconv.build_span, _otlp_json.c reads OTLP/JSON with them. */

#ifndef CLEW_OTLP_NATIVE_H
#define CLEW_OTLP_NATIVE_H

#include <Python.h>
#include <stdint.h>

/* What each step gives back: go on, leave the request to the Python path, or a Python error. */
#define OK 0
#define DECLINE 1
#define FAIL (-1)

#define MAX_LIFTED 16
/* The slots of a span's fields as append_span takes them: its ten own, the lifted, the rest. */
#define SPAN_ITEMS (10 + MAX_LIFTED + 1)

typedef struct {
    const uint8_t *data;
    Py_ssize_t len;
} Slice;

/* A span's ids as text; consecutive spans of a trace share its trace id's text. */
typedef struct {
    Slice trace_id;
    PyObject *text; /* borrowed from the previous Span record */
} LastTrace;

/* Set by configure(); span_type is NULL until then. */
extern PyTypeObject *span_type, *link_type;

/* Well-formed UTF-8, as protobuf requires of a string field (and Python's strict decoder). */
int utf8_valid(const uint8_t *s, Py_ssize_t n);

/* A new reference to the str of UTF-8 bytes (checked here, cached when short), or NULL: DECLINE
 * in *status for invalid UTF-8, FAIL for a Python error. Keys (``is_key``) also get their kind:
 * their lifted column (or -1) and whether build_span renames them. */
PyObject *text_of(const uint8_t *s, Py_ssize_t n, int is_key, int *lifted, int *legacy,
                  int *status);

/* One attribute (``value`` stolen) into the dict ``out``, or with ``lifted`` given and the key a
 * lifted one (``column`` >= 0), into its slot; *legacy set when ``is_legacy``. */
int store_attribute(PyObject *key, PyObject *value, int column, int is_legacy, PyObject *out,
                    PyObject **lifted, int *legacy);

/* build_span: the Span of a validated span's ten own fields (``items``, SPAN_ITEMS
 * slots, the first ten set) and its attributes (``attrs``, with the lifted ones in ``lifted``),
 * appended to ``out``; *span is then borrowed from it. ``items`` are stolen when this gives OK;
 * otherwise the caller still releases whatever ``items`` and ``lifted`` hold. */
int append_span(PyObject **items, PyObject **lifted, PyObject *attrs, long kind, int legacy,
                PyObject *out, PyObject **span);

/* What a span's reader releases as it ends, whatever append_span took: the ``items`` (all
 * SPAN_ITEMS slots) and ``lifted`` still held, and ``attrs``. Gives back ``status``. */
int release_span(PyObject **items, PyObject **lifted, PyObject *attrs, int status);

/* The Resource record of resource attributes appended to ``out``; a new reference to its
 * service, or NULL with a Python error. */
PyObject *append_resource(PyObject *attrs, PyObject *out);

/* A new instance of a named tuple type, its fields set from ``items`` (references stolen). */
PyObject *new_record(PyTypeObject *type, PyObject **items, Py_ssize_t n);

/* Appends a new record (stolen; NULL for a failure to make it) to ``out``. */
int append_new(PyObject *out, PyObject *record);

/* The OTLP/JSON reader (_otlp_json.c), and its tables, set up once as the module loads. */
PyObject *json_records(PyObject *module, PyObject *arg);
void json_init(void);
extern const char json_records_doc[];

/* The NGINX combined reader (_access_nginx.c). */
PyObject *nginx_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *nginx_configure(PyObject *module, PyObject *type);
extern const char nginx_block_doc[], nginx_configure_doc[];

/* One JSON container's members, values stepped over unread (_json_index.c). */
PyObject *json_index(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
extern const char json_index_doc[];

#endif
