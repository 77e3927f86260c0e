/* Contributions.add_by_id compiled: a set of whole traces' span rows paired into edge cells,
 * virtual nodes and endpoints, and their failing spans traced up to their entry.
 *
 * Why: the pure-Python add_by_id costs about 2 µs a span, a fifth of the CPU of ingest. This is
 * its twin, with exactly its results; clew/pipeline/rollups.py keeps the Python code as the
 * reference and falls back to it (see "Declining"). The pairing rules are documented there and
 * this file follows the Python functions one for one (_caller, _pair, _virtual, _publish,
 * _consume, _topic, _root, _endpoint), under the same names where it can.
 *
 * One call, add_by_id(by_id, sign, root_callers, cells, nodes, endpoints, add_chains), goes:
 *
 * 1. read: every (key, row) of by_id, in its order, is checked and read into a Row (borrowed
 *    references); an index on (trace id, span id) gives each row its parent, and the parents
 *    their children in by_id order, as the Python code's children lists;
 * 2. pair: the rows are walked in by_id order as add_by_id walks them. Each _add is summed into a
 *    CellSum found by the cell key's content (equal strings from different objects are one key),
 *    its histogram buckets kept in the order they are first touched; nodes and endpoints are
 *    gathered alike. Nothing of the caller's changes in this step;
 * 3. failing paths: the spans where a failure begins, each with its chain up to the top span
 *    present and its children (paths.failure_chains), go to add_chains
 *    (FailingPaths.add_chains), which names the paths in Python: they are few, and their ids are
 *    blake2b digests of orjson text;
 * 4. flush: each CellSum is added to its Cell in ``cells`` (made when missing), then the nodes and
 *    endpoints are set, each in the order the Python code first touches them, so the three dicts
 *    end up equal to the Python path's, insertion order and buckets netted to 0 included.
 *
 * Exactness: a histogram bucket is ceil(log((double)d) / log_gamma) with the libm log Python's
 * math.log calls and log_gamma handed in by configure(); int64 to double rounds to nearest, as
 * Python's int to float does. Sums are kept in 128 bits, so no sum of 64-bit values overflows.
 * The longest duration of a call, with how many of its spans had it, is merged once into the
 * cell's (cells.larger: into duration_max and max_count for a positive sign, taken_max and
 * taken_count for a negative one), which is what the Python code's update per span gives. An endpoint's [first, last] is moved by the call's earliest
 * and latest start, which equals the Python code's span-by-span update for lists with
 * first <= last, as every list Contributions makes is.
 *
 * Declining: steps 1 and 2 return False, having changed nothing, whenever they meet what they
 * do not reproduce exactly, and the Python path then does the whole call (all or nothing, never
 * half): by_id, root_callers, cells, nodes or endpoints not exactly dicts; a sign beyond 32 bits;
 * a key that is not the (trace id, span id) of its row; a row that is not exactly a tuple, a
 * Span or a list, of 22 columns; ids, service or name not str; a parent, method, route, address,
 * peer, system, destination or rpc column neither str nor None (str subclasses declined); kind
 * or status not an int (or a member of the int enums configured), start, duration or a non-None
 * http status not an int; any of these beyond 64 bits; a queue lag beyond 64 bits; a
 * root_callers entry, for a root span, that is neither None nor a tuple (str caller, kind).
 * Columns the rollups never read are not looked at.
 *
 * Errors: a Python error (no memory, or one raised by add_chains) propagates. One raised in
 * step 3 leaves the cells, nodes and endpoints as they were, as in the Python code, whose failing
 * paths come first (and add_chains is the Python code's own, given the same chains); one in step
 * 4 may leave the call half applied, as an error in the middle of the Python code would.
 *
 * The rows, their strings and root_callers' entries are borrowed throughout: the only Python
 * code run before the flush ends is Cell() and add_chains, which change none of them. All memory
 * of a call is freed before it returns.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_route_template.h"

/* What each step gives back: go on, leave the call to the Python path, or a Python error. */
#define OK 0
#define DECLINE 1
#define FAIL (-1)

/* OTLP span kinds and the status code ERROR, as clew.records numbers them. */
#define UNSPECIFIED 0
#define SERVER 2
#define CLIENT 3
#define PRODUCER 4
#define CONSUMER 5
#define STATUS_ERROR 2

/* Positions in a span row (clew.records.Span), as rollups.py names them. */
enum {
    TRACE, SPAN, PARENT, SERVICE, NAME, KIND, START, DURATION, STATUS, STATUS_MESSAGE,
    METHOD, ROUTE, HTTP_STATUS, URL_PATH, SERVER_ADDRESS, PEER_SERVICE, DB_SYSTEM,
    MESSAGING_SYSTEM, MESSAGING_DESTINATION, RPC_SERVICE, RPC_METHOD, ATTRIBUTES, ROW_SIZE
};

/* A cell key's connection type and source, as indices into ``connection_types`` and
 * ``sources``. */
enum { DIRECT, MESSAGING, DATABASE, VIRTUAL, N_CONNECTIONS };
enum { TRACE_SOURCE, RELAXED, GATEWAY_SOURCE, N_SOURCES };

/* ---- configuration (configure) ---- */

static PyObject *cell_type;  /* NULL until configured */
static PyObject *span_type;
static PyObject *int_enums;  /* tuple of int subclasses read as their int (SpanKind, ...) */
static PyObject *root_caller, *client_node, *database_node, *broker_node, *topic_node,
    *external_node, *gateway_node, *service_node;
static PyObject *connection_types[N_CONNECTIONS], *sources[N_SOURCES];
static int64_t ns_per_minute;
static double log_gamma;
static long zero_bucket;

/* The literals of rollups.py, and the Cell attributes the flush adds to; set as the module
 * loads. */
static PyObject *default_broker, *http_protocol, *rpc_protocol, *messaging_protocol,
    *process_method, *any_method, *slash;
static PyObject *count_attr, *errors_attr, *client_errors_attr, *duration_sum_attr,
    *duration_max_attr, *max_count_attr, *taken_max_attr, *taken_count_attr, *buckets_attr,
    *lag_count_attr, *lag_sum_attr, *lag_buckets_attr;

/* ---- strings and hashing ---- */

/* str equality, for exact str objects (unicode_eq's test: the canonical form of equal strings
 * has one kind). */
static inline int
same_text(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), n * PyUnicode_KIND(a)) == 0;
}

/* A str's hash; cached in the object, and never an error for str. */
static inline uint64_t
text_hash(PyObject *text)
{
    return (uint64_t)PyObject_Hash(text);
}

static inline uint64_t
mix(uint64_t h, uint64_t value)
{
    uint64_t x = (h ^ value) * 0x9E3779B97F4A7C15u;
    return x ^ (x >> 31);
}

/* The first of a row's optional columns that is not None (NULL here), as rollups._first. */
static inline PyObject *
first_of(PyObject *a, PyObject *b, PyObject *c, PyObject *d)
{
    return a != NULL ? a : b != NULL ? b : c != NULL ? c : d;
}

/* Python's truth of a str column: set and not empty. */
static inline int
truthy(PyObject *text)
{
    return text != NULL && PyUnicode_GET_LENGTH(text) > 0;
}

/* ---- open-addressing tables of entry indices ---- */

typedef struct {
    uint64_t hash;
    Py_ssize_t at; /* the entry's index in its array; -1 for an empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask; /* capacity - 1, the capacity a power of two */
    size_t used;
} Table;

/* Whether entry ``at`` of ``entries`` has the key ``key``. */
typedef int (*SameKey)(const void *entries, Py_ssize_t at, const void *key);

static int
table_init(Table *t, size_t expected)
{
    size_t capacity = 16;
    while (capacity < 2 * expected) {
        capacity *= 2;
    }
    t->slots = PyMem_Malloc(capacity * sizeof(Slot));
    if (t->slots == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    for (size_t i = 0; i < capacity; i++) {
        t->slots[i].at = -1;
    }
    t->mask = capacity - 1;
    t->used = 0;
    return OK;
}

/* The slot of the entry with ``key``, or the empty slot where it would go. */
static inline Slot *
table_find(const Table *t, uint64_t hash, SameKey same, const void *entries, const void *key)
{
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        Slot *slot = &t->slots[i];
        if (slot->at < 0 || (slot->hash == hash && same(entries, slot->at, key))) {
            return slot;
        }
    }
}

/* Puts entry ``at`` in the empty ``slot`` table_find gave (which may move afterwards). */
static int
table_claim(Table *t, Slot *slot, uint64_t hash, Py_ssize_t at)
{
    slot->hash = hash;
    slot->at = at;
    if (++t->used * 2 <= t->mask + 1) {
        return OK;
    }
    Slot *old = t->slots;
    size_t old_capacity = t->mask + 1, used = t->used;
    if (table_init(t, old_capacity) < 0) {
        t->slots = old; /* still freed with the work */
        return FAIL;
    }
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].at >= 0) {
            size_t j = old[i].hash & t->mask;
            while (t->slots[j].at >= 0) {
                j = (j + 1) & t->mask;
            }
            t->slots[j] = old[i];
        }
    }
    t->used = used;
    PyMem_Free(old);
    return OK;
}

/* Room for one more item in a growing array. */
static int
reserve(void **items, Py_ssize_t *size, Py_ssize_t used, size_t item_size)
{
    if (used < *size) {
        return OK;
    }
    Py_ssize_t grown = *size > 0 ? *size * 2 : 64;
    void *moved = PyMem_Realloc(*items, (size_t)grown * item_size);
    if (moved == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    *items = moved;
    *size = grown;
    return OK;
}

/* ---- what one call gathers ---- */

typedef struct {
    PyObject *object; /* the row in by_id */
    /* str columns; the optional ones NULL for None */
    PyObject *trace, *span, *parent, *service, *name, *method, *route, *server_address,
        *peer_service, *db_system, *messaging_system, *destination, *rpc_service, *rpc_method;
    int64_t kind, status, start, duration, minute;
    int64_t http; /* 0 for None, as ``or 0`` reads it */
    int has_http;
    Py_ssize_t parent_at; /* the parent's index among the rows, -1 when it is not there */
} Row;

typedef struct {
    int64_t minute;
    PyObject *client, *server, *endpoint;
    int connection, source;
} CellKey;

/* The sums of one cell in this call. Its buckets are a list through BucketSum.next, in the
 * order first touched: [0] durations, [1] lags. */
typedef struct {
    CellKey key;
    int64_t count, errors, client_errors, lag_count;
    __int128 duration_sum, lag_sum;
    int64_t duration_max; /* the longest duration (below 0 counted as 0) */
    int64_t max_count;    /* how many of the call's spans had it */
    Py_ssize_t first_bucket[2], last_bucket[2];
} CellSum;

typedef struct {
    Py_ssize_t cell;
    int lag;
    long bucket;
    int64_t count;
    Py_ssize_t next; /* the cell's next bucket of the same histogram, -1 for the last */
} BucketSum;

typedef struct {
    PyObject *name, *kind, *parent; /* parent NULL for None */
} NodeSet;

typedef struct {
    PyObject *service, *protocol, *method, *route;
    int64_t first, last;
} EndpointSeen;

/* A text and what it maps to; ``value`` owned when ``owned``. */
typedef struct {
    PyObject *key, *value;
    int owned;
} TextPair;

/* "a b" or "a/b", made once per pair of objects in a call. */
typedef struct {
    PyObject *a, *b, *text; /* text owned */
    int separator;
} Joined;

typedef struct {
    int sign;
    PyObject *root_callers;
    Row *rows;
    Py_ssize_t n_rows;
    Table row_index;
    Py_ssize_t *kids, *kids_at; /* row i's children: kids[kids_at[i] .. kids_at[i + 1]) */
    CellSum *cells;
    Py_ssize_t n_cells, cells_size;
    Table cell_index;
    BucketSum *buckets;
    Py_ssize_t n_buckets, buckets_size;
    Table bucket_index;
    NodeSet *nodes;
    Py_ssize_t n_nodes, nodes_size;
    Table node_index;
    EndpointSeen *endpoints;
    Py_ssize_t n_endpoints, endpoints_size;
    Table endpoint_index;
    Joined *joined;
    Py_ssize_t n_joined, joined_size;
    Table joined_index;
    /* gateway requests: each path's route template (owned), and one object per text among
     * methods and templates, so that ``joined`` finds its pairs by identity */
    TextPair *templates;
    Py_ssize_t n_templates, templates_size;
    Table template_index;
    TextPair *canon;
    Py_ssize_t n_canon, canon_size;
    Table canon_index;
} Work;

static void
work_free(Work *w)
{
    for (Py_ssize_t i = 0; i < w->n_joined; i++) {
        Py_DECREF(w->joined[i].text);
    }
    for (Py_ssize_t i = 0; i < w->n_templates; i++) {
        Py_DECREF(w->templates[i].value);
    }
    PyMem_Free(w->templates);
    PyMem_Free(w->canon);
    PyMem_Free(w->template_index.slots);
    PyMem_Free(w->canon_index.slots);
    PyMem_Free(w->rows);
    PyMem_Free(w->kids);
    PyMem_Free(w->kids_at);
    PyMem_Free(w->cells);
    PyMem_Free(w->buckets);
    PyMem_Free(w->nodes);
    PyMem_Free(w->endpoints);
    PyMem_Free(w->joined);
    PyMem_Free(w->row_index.slots);
    PyMem_Free(w->cell_index.slots);
    PyMem_Free(w->bucket_index.slots);
    PyMem_Free(w->node_index.slots);
    PyMem_Free(w->endpoint_index.slots);
    PyMem_Free(w->joined_index.slots);
}

/* ---- step 1: reading the rows ---- */

static int
text_column(PyObject *value, PyObject **out)
{
    if (!PyUnicode_CheckExact(value)) {
        return DECLINE;
    }
    *out = value;
    return OK;
}

static int
optional_text(PyObject *value, PyObject **out)
{
    if (value == Py_None) {
        *out = NULL;
        return OK;
    }
    return text_column(value, out);
}

/* An int column in 64 bits; with ``enums``, members of the configured int enums too. */
static int
int_column(PyObject *value, int enums, int64_t *out)
{
    if (!PyLong_CheckExact(value)) {
        int member = 0;
        for (Py_ssize_t i = 0; enums && i < PyTuple_GET_SIZE(int_enums); i++) {
            member = member || Py_IS_TYPE(value, (PyTypeObject *)PyTuple_GET_ITEM(int_enums, i));
        }
        if (!member) {
            return DECLINE;
        }
    }
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        return DECLINE;
    }
    if (n == -1 && PyErr_Occurred()) {
        return FAIL;
    }
    *out = n;
    return OK;
}

/* Python's floor division by a positive divisor. */
static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int
read_row(PyObject *key, PyObject *object, Row *r)
{
    if (!(PyTuple_CheckExact(object) || Py_IS_TYPE(object, (PyTypeObject *)span_type) ||
          PyList_CheckExact(object)) ||
        PySequence_Fast_GET_SIZE(object) != ROW_SIZE) {
        return DECLINE;
    }
    PyObject **items = PySequence_Fast_ITEMS(object);
    int s;
    r->object = object;
    if ((s = text_column(items[TRACE], &r->trace)) || (s = text_column(items[SPAN], &r->span)) ||
        (s = optional_text(items[PARENT], &r->parent)) ||
        (s = text_column(items[SERVICE], &r->service)) ||
        (s = text_column(items[NAME], &r->name)) ||
        (s = optional_text(items[METHOD], &r->method)) ||
        (s = optional_text(items[ROUTE], &r->route)) ||
        (s = optional_text(items[SERVER_ADDRESS], &r->server_address)) ||
        (s = optional_text(items[PEER_SERVICE], &r->peer_service)) ||
        (s = optional_text(items[DB_SYSTEM], &r->db_system)) ||
        (s = optional_text(items[MESSAGING_SYSTEM], &r->messaging_system)) ||
        (s = optional_text(items[MESSAGING_DESTINATION], &r->destination)) ||
        (s = optional_text(items[RPC_SERVICE], &r->rpc_service)) ||
        (s = optional_text(items[RPC_METHOD], &r->rpc_method)) ||
        (s = int_column(items[KIND], 1, &r->kind)) ||
        (s = int_column(items[STATUS], 1, &r->status)) ||
        (s = int_column(items[START], 0, &r->start)) ||
        (s = int_column(items[DURATION], 0, &r->duration))) {
        return s;
    }
    r->has_http = items[HTTP_STATUS] != Py_None;
    r->http = 0;
    if (r->has_http && (s = int_column(items[HTTP_STATUS], 0, &r->http))) {
        return s;
    }
    r->minute = floor_div(r->start, ns_per_minute);
    /* The pairing looks rows up by their own ids: their key in by_id must be just that. */
    if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 2 ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 0)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 1)) ||
        !same_text(PyTuple_GET_ITEM(key, 0), r->trace) ||
        !same_text(PyTuple_GET_ITEM(key, 1), r->span)) {
        return DECLINE;
    }
    return OK;
}

typedef struct {
    PyObject *trace, *span;
} SpanId;

static int
same_span(const void *entries, Py_ssize_t at, const void *key)
{
    const Row *row = &((const Row *)entries)[at];
    const SpanId *id = key;
    return same_text(row->span, id->span) && same_text(row->trace, id->trace);
}

static inline uint64_t
span_hash(PyObject *trace, PyObject *span)
{
    return mix(text_hash(trace), text_hash(span));
}

/* The rows of by_id read, each with its parent and children. */
static int
read_rows(Work *w, PyObject *by_id)
{
    Py_ssize_t n = PyDict_GET_SIZE(by_id), pos = 0, i = 0;
    PyObject *key, *object;
    int status;
    w->rows = PyMem_Malloc(n * sizeof(Row));
    w->kids = PyMem_Malloc(n * sizeof(Py_ssize_t));
    w->kids_at = PyMem_Calloc(n + 1, sizeof(Py_ssize_t));
    if (w->rows == NULL || w->kids == NULL || w->kids_at == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    if (table_init(&w->row_index, n) < 0) {
        return FAIL;
    }
    while (PyDict_Next(by_id, &pos, &key, &object)) {
        Row *r = &w->rows[i];
        if ((status = read_row(key, object, r)) != OK) {
            return status;
        }
        SpanId id = {r->trace, r->span};
        uint64_t hash = span_hash(r->trace, r->span);
        /* dict keys are unique, so the slot found is an empty one */
        if (table_claim(&w->row_index, table_find(&w->row_index, hash, same_span, w->rows, &id),
                        hash, i) < 0) {
            return FAIL;
        }
        w->n_rows = ++i;
    }
    for (i = 0; i < n; i++) {
        Row *r = &w->rows[i];
        r->parent_at = -1;
        if (r->parent != NULL) {
            SpanId id = {r->trace, r->parent};
            r->parent_at = table_find(&w->row_index, span_hash(r->trace, r->parent), same_span,
                                      w->rows, &id)->at;
        }
        if (r->parent_at >= 0) {
            w->kids_at[r->parent_at + 1]++;
        }
    }
    for (i = 0; i < n; i++) {
        w->kids_at[i + 1] += w->kids_at[i];
    }
    /* Filled in by_id order, each parent's next free place counted in kids_at[parent] until
     * it has moved up to where the next parent's children begin. */
    for (i = 0; i < n; i++) {
        Py_ssize_t parent = w->rows[i].parent_at;
        if (parent >= 0) {
            w->kids[w->kids_at[parent]++] = i;
        }
    }
    for (i = n; i > 0; i--) {
        w->kids_at[i] = w->kids_at[i - 1];
    }
    w->kids_at[0] = 0;
    return OK;
}

/* ---- step 2: pairing ---- */

static inline int
is_caller(int64_t kind)
{
    return kind == CLIENT || kind == PRODUCER;
}

static inline int
is_callee(int64_t kind)
{
    return kind == SERVER || kind == CONSUMER;
}

static inline int
is_messaging(const Row *r)
{
    return r->messaging_system != NULL || r->destination != NULL;
}

static inline int
failed(const Row *r)
{
    return r->status == STATUS_ERROR || r->http >= 500;
}

/* histogram.bucket_of */
static inline long
bucket_of(int64_t duration)
{
    if (duration <= 0) {
        return zero_bucket;
    }
    return (long)ceil(log((double)duration) / log_gamma);
}

static int
same_joined(const void *entries, Py_ssize_t at, const void *key)
{
    const Joined *a = &((const Joined *)entries)[at], *b = key;
    return a->a == b->a && a->b == b->b && a->separator == b->separator;
}

/* f"{a} {b}" or f"{a}/{b}" (borrowed from the call's cache), or NULL with an error. */
static PyObject *
joined(Work *w, PyObject *a, int separator, PyObject *b)
{
    Joined key = {a, b, NULL, separator};
    uint64_t hash = mix(mix((uintptr_t)a, (uintptr_t)b), (uint64_t)separator);
    Slot *slot = table_find(&w->joined_index, hash, same_joined, w->joined, &key);
    if (slot->at >= 0) {
        return w->joined[slot->at].text;
    }
    if (reserve((void **)&w->joined, &w->joined_size, w->n_joined, sizeof(Joined)) < 0) {
        return NULL;
    }
    key.text = PyUnicode_FromFormat(separator == ' ' ? "%U %U" : "%U/%U", a, b);
    if (key.text == NULL) {
        return NULL;
    }
    w->joined[w->n_joined] = key;
    if (table_claim(&w->joined_index, slot, hash, w->n_joined++) < 0) {
        return NULL;
    }
    return key.text;
}

/* rollups._endpoint_name (borrowed), or NULL with an error. */
static PyObject *
endpoint_name(Work *w, const Row *r)
{
    if (r->route != NULL) {
        return r->method != NULL ? joined(w, r->method, ' ', r->route) : r->route;
    }
    return r->name;
}

static int
same_bucket(const void *entries, Py_ssize_t at, const void *key)
{
    const BucketSum *a = &((const BucketSum *)entries)[at], *b = key;
    return a->cell == b->cell && a->bucket == b->bucket && a->lag == b->lag;
}

static int
count_bucket(Work *w, Py_ssize_t cell, int lag, long bucket)
{
    BucketSum key = {cell, lag, bucket, 0, -1};
    uint64_t hash = mix(mix((uint64_t)cell, (uint64_t)bucket), (uint64_t)lag);
    Slot *slot = table_find(&w->bucket_index, hash, same_bucket, w->buckets, &key);
    if (slot->at >= 0) {
        w->buckets[slot->at].count += w->sign;
        return OK;
    }
    if (reserve((void **)&w->buckets, &w->buckets_size, w->n_buckets, sizeof(BucketSum)) < 0) {
        return FAIL;
    }
    Py_ssize_t at = w->n_buckets++;
    key.count = w->sign;
    w->buckets[at] = key;
    CellSum *c = &w->cells[cell];
    if (c->last_bucket[lag] >= 0) {
        w->buckets[c->last_bucket[lag]].next = at;
    }
    else {
        c->first_bucket[lag] = at;
    }
    c->last_bucket[lag] = at;
    return table_claim(&w->bucket_index, slot, hash, at);
}

static int
same_cell(const void *entries, Py_ssize_t at, const void *key)
{
    const CellKey *a = &((const CellSum *)entries)[at].key, *b = key;
    return a->minute == b->minute && a->connection == b->connection && a->source == b->source &&
           same_text(a->server, b->server) && same_text(a->client, b->client) &&
           same_text(a->endpoint, b->endpoint);
}

/* Contributions._add: ``side``'s duration (and the lag, when given) into the cell of ``key``. */
static int
add(Work *w, const CellKey *key, const Row *side, int error, int client_error, const int64_t *lag)
{
    uint64_t hash = mix(mix(mix((uint64_t)key->minute, text_hash(key->client)),
                            text_hash(key->server)),
                        text_hash(key->endpoint) + (uint64_t)(key->connection * 2 + key->source));
    Slot *slot = table_find(&w->cell_index, hash, same_cell, w->cells, key);
    Py_ssize_t at = slot->at;
    if (at < 0) {
        if (reserve((void **)&w->cells, &w->cells_size, w->n_cells, sizeof(CellSum)) < 0) {
            return FAIL;
        }
        at = w->n_cells++;
        CellSum *c = &w->cells[at];
        memset(c, 0, sizeof(*c));
        c->key = *key;
        c->duration_max = INT64_MIN;
        c->first_bucket[0] = c->first_bucket[1] = c->last_bucket[0] = c->last_bucket[1] = -1;
        if (table_claim(&w->cell_index, slot, hash, at) < 0) {
            return FAIL;
        }
    }
    CellSum *c = &w->cells[at];
    int64_t duration = side->duration;
    c->count += w->sign;
    if (error) {
        c->errors += w->sign;
    }
    else if (client_error) {
        c->client_errors += w->sign;
    }
    c->duration_sum += (__int128)w->sign * duration;
    int64_t longest = duration > 0 ? duration : 0;
    if (c->max_count == 0 || longest > c->duration_max) {
        c->duration_max = longest;
        c->max_count = 1;
    }
    else if (longest == c->duration_max) {
        c->max_count++;
    }
    if (count_bucket(w, at, 0, bucket_of(duration)) < 0) {
        return FAIL;
    }
    if (lag != NULL) {
        int64_t kept = *lag > 0 ? *lag : 0; /* clock skew can put a consumer before its producer */
        c = &w->cells[at];
        c->lag_count += w->sign;
        c->lag_sum += (__int128)w->sign * kept;
        return count_bucket(w, at, 1, bucket_of(kept));
    }
    return OK;
}

static int
same_node(const void *entries, Py_ssize_t at, const void *key)
{
    return same_text(((const NodeSet *)entries)[at].name, (PyObject *)key);
}

/* Contributions._node: the last kind and parent given for a name win, as in the dict. */
static int
set_node(Work *w, PyObject *name, PyObject *kind, PyObject *parent)
{
    if (w->sign <= 0) {
        return OK;
    }
    uint64_t hash = text_hash(name);
    Slot *slot = table_find(&w->node_index, hash, same_node, w->nodes, name);
    if (slot->at >= 0) {
        w->nodes[slot->at].kind = kind;
        w->nodes[slot->at].parent = parent;
        return OK;
    }
    if (reserve((void **)&w->nodes, &w->nodes_size, w->n_nodes, sizeof(NodeSet)) < 0) {
        return FAIL;
    }
    w->nodes[w->n_nodes] = (NodeSet){name, kind, parent};
    return table_claim(&w->node_index, slot, hash, w->n_nodes++);
}

/* Contributions._pair */
static int
pair(Work *w, const Row *c, const Row *s, int relaxed)
{
    int producer = c->kind == PRODUCER, call = is_caller(c->kind);
    int64_t http = s->has_http ? s->http : call ? c->http : 0;
    int failure = s->status == STATUS_ERROR || (call && c->status == STATUS_ERROR);
    PyObject *endpoint = endpoint_name(w, s);
    if (endpoint == NULL) {
        return FAIL;
    }
    CellKey key = {c->minute, c->service, s->service, endpoint, producer ? MESSAGING : DIRECT,
                   relaxed ? RELAXED : TRACE_SOURCE};
    const Row *side = producer || !call ? s : c;
    return add(w, &key, side, failure || http >= 500, http >= 400 && http <= 499, NULL);
}

/* Contributions._virtual */
static int
virtual_peer(Work *w, const Row *c, PyObject *peer, int relaxed)
{
    int connection;
    PyObject *node;
    if (c->db_system != NULL) {
        connection = DATABASE, node = database_node;
    }
    else if (c->messaging_system != NULL) {
        connection = MESSAGING, node = broker_node;
    }
    else {
        connection = VIRTUAL, node = external_node;
    }
    PyObject *endpoint = c->destination != NULL ? c->destination : endpoint_name(w, c);
    if (endpoint == NULL) {
        return FAIL;
    }
    CellKey key = {c->minute, c->service, peer, endpoint, connection,
                   relaxed ? RELAXED : TRACE_SOURCE};
    int status = add(w, &key, c, c->status == STATUS_ERROR || c->http >= 500,
                     c->http >= 400 && c->http <= 499, NULL);
    return status != OK ? status : set_node(w, peer, node, NULL);
}

/* Contributions._caller: the span of row ``i``, a CLIENT or a PRODUCER without messaging. */
static int
caller(Work *w, Py_ssize_t i)
{
    const Row *c = &w->rows[i];
    int paired = 0;
    for (Py_ssize_t k = w->kids_at[i]; k < w->kids_at[i + 1]; k++) {
        const Row *s = &w->rows[w->kids[k]];
        if (same_text(s->service, c->service)) {
            /* another instance of its own service answered: no edge, and no made-up peer */
            paired = paired || is_callee(s->kind);
            continue;
        }
        paired = 1;
        if (s->kind == CONSUMER && is_messaging(s)) {
            continue; /* the consumer's side draws topic → consumer */
        }
        int status = pair(w, c, s, !is_callee(s->kind));
        if (status != OK) {
            return status;
        }
    }
    if (paired) {
        return OK;
    }
    PyObject *peer = first_of(c->peer_service, c->server_address, c->db_system,
                              c->messaging_system);
    return peer != NULL ? virtual_peer(w, c, peer, 0) : OK;
}

/* Contributions._topic: the topic node (or the broker itself); NULL with an error. */
static PyObject *
topic_of(Work *w, const Row *attrs)
{
    PyObject *named = first_of(attrs->messaging_system, attrs->peer_service,
                               attrs->server_address, NULL);
    PyObject *broker = truthy(named) ? named : default_broker;
    if (set_node(w, broker, broker_node, NULL) < 0) {
        return NULL;
    }
    if (attrs->destination == NULL) {
        return broker;
    }
    PyObject *topic = joined(w, broker, '/', attrs->destination);
    if (topic == NULL || set_node(w, topic, topic_node, broker) < 0) {
        return NULL;
    }
    return topic;
}

/* Contributions._publish */
static int
publish(Work *w, const Row *p)
{
    PyObject *topic = topic_of(w, p);
    if (topic == NULL) {
        return FAIL;
    }
    PyObject *endpoint = p->destination != NULL ? p->destination : endpoint_name(w, p);
    if (endpoint == NULL) {
        return FAIL;
    }
    CellKey key = {p->minute, p->service, topic, endpoint, MESSAGING, TRACE_SOURCE};
    return add(w, &key, p, p->status == STATUS_ERROR, 0, NULL);
}

/* Contributions._consume */
static int
consume(Work *w, const Row *s, const Row *parent)
{
    const Row *producer = parent != NULL && parent->kind == PRODUCER ? parent : NULL;
    const Row *named = is_messaging(s) ? s : producer;
    if (named == NULL || !is_messaging(named)) {
        return OK; /* no broker to draw: a producer parent pairs with it directly */
    }
    if (producer != NULL && !is_messaging(producer)) {
        Row published = *producer; /* _with_messaging(producer, named) */
        published.messaging_system = named->messaging_system;
        published.destination = named->destination;
        int status = publish(w, &published);
        if (status != OK) {
            return status;
        }
    }
    PyObject *topic = topic_of(w, named);
    if (topic == NULL) {
        return FAIL;
    }
    PyObject *endpoint = named->destination != NULL ? named->destination : endpoint_name(w, s);
    if (endpoint == NULL) {
        return FAIL;
    }
    int64_t lag = 0;
    if (producer != NULL) {
        __int128 exact = (__int128)s->start - ((__int128)producer->start + producer->duration);
        if (exact < INT64_MIN || exact > INT64_MAX) {
            return DECLINE;
        }
        lag = (int64_t)exact;
    }
    CellKey key = {s->minute, topic, s->service, endpoint, MESSAGING, TRACE_SOURCE};
    return add(w, &key, s, s->status == STATUS_ERROR || s->http >= 500, 0,
               producer != NULL ? &lag : NULL);
}

/* Contributions._root */
static int
root(Work *w, const Row *s, int relaxed)
{
    PyObject *caller_node = root_caller, *kind = client_node;
    int named = 0;
    if (PyDict_GET_SIZE(w->root_callers) > 0) {
        PyObject *id = PyTuple_Pack(2, s->trace, s->span);
        if (id == NULL) {
            return FAIL;
        }
        PyObject *value = PyDict_GetItemWithError(w->root_callers, id);
        Py_DECREF(id);
        if (value == NULL && PyErr_Occurred()) {
            return FAIL;
        }
        if (value != NULL && value != Py_None) {
            if (!PyTuple_CheckExact(value) || PyTuple_GET_SIZE(value) != 2 ||
                !PyUnicode_CheckExact(PyTuple_GET_ITEM(value, 0))) {
                return DECLINE;
            }
            caller_node = PyTuple_GET_ITEM(value, 0);
            kind = PyTuple_GET_ITEM(value, 1);
            named = 1;
        }
    }
    PyObject *endpoint = endpoint_name(w, s);
    if (endpoint == NULL) {
        return FAIL;
    }
    CellKey key = {s->minute, caller_node, s->service, endpoint, named ? DIRECT : VIRTUAL,
                   relaxed ? RELAXED : TRACE_SOURCE};
    int status = add(w, &key, s, s->status == STATUS_ERROR || s->http >= 500,
                     s->http >= 400 && s->http <= 499, NULL);
    return status != OK ? status : set_node(w, caller_node, kind, NULL);
}

static int
same_endpoint(const void *entries, Py_ssize_t at, const void *key)
{
    const EndpointSeen *a = &((const EndpointSeen *)entries)[at], *b = key;
    return a->protocol == b->protocol && same_text(a->route, b->route) &&
           same_text(a->service, b->service) && same_text(a->method, b->method);
}

/* An endpoint seen serving from ``seen.first`` to ``seen.last``, added to what the call knows. */
static int
record_endpoint(Work *w, EndpointSeen seen)
{
    uint64_t hash = mix(mix(mix(text_hash(seen.service), (uintptr_t)seen.protocol),
                            text_hash(seen.method)),
                        text_hash(seen.route));
    Slot *slot = table_find(&w->endpoint_index, hash, same_endpoint, w->endpoints, &seen);
    if (slot->at >= 0) {
        EndpointSeen *known = &w->endpoints[slot->at];
        known->first = seen.first < known->first ? seen.first : known->first;
        known->last = seen.last > known->last ? seen.last : known->last;
        return OK;
    }
    if (reserve((void **)&w->endpoints, &w->endpoints_size, w->n_endpoints,
                sizeof(EndpointSeen)) < 0) {
        return FAIL;
    }
    w->endpoints[w->n_endpoints] = seen;
    return table_claim(&w->endpoint_index, slot, hash, w->n_endpoints++);
}

/* Contributions._endpoint */
static int
see_endpoint(Work *w, const Row *r)
{
    EndpointSeen seen = {r->service, NULL, NULL, NULL, r->start, r->start};
    if (r->kind == SERVER) {
        if (r->route != NULL) {
            seen.protocol = http_protocol;
            seen.method = truthy(r->method) ? r->method : any_method;
            seen.route = r->route;
        }
        else if (r->rpc_service != NULL) {
            seen.protocol = rpc_protocol;
            seen.method = truthy(r->rpc_method) ? r->rpc_method : r->name;
            seen.route = r->rpc_service;
        }
        else {
            return OK;
        }
    }
    else if (r->kind == CONSUMER && r->destination != NULL) {
        seen.protocol = messaging_protocol;
        seen.method = process_method;
        seen.route = r->destination;
    }
    else {
        return OK;
    }
    return record_endpoint(w, seen);
}

/* The loop of Contributions.add_by_id after the failing paths. */
static int
pair_rows(Work *w)
{
    int status = OK;
    for (Py_ssize_t i = 0; i < w->n_rows && status == OK; i++) {
        const Row *r = &w->rows[i];
        int64_t kind = r->kind;
        if (is_caller(kind) && !(kind == PRODUCER && is_messaging(r))) {
            status = caller(w, i); /* its relaxed pairs too */
        }
        else {
            if (kind == PRODUCER) {
                status = publish(w, r);
            }
            else if (kind == CONSUMER) {
                status = consume(w, r, r->parent_at >= 0 ? &w->rows[r->parent_at] : NULL);
            }
            else if ((kind == SERVER || kind == UNSPECIFIED) && r->parent_at < 0) {
                status = root(w, r, kind == UNSPECIFIED);
            }
            int paired = 0;
            for (Py_ssize_t k = w->kids_at[i]; k < w->kids_at[i + 1] && status == OK; k++) {
                const Row *child = &w->rows[w->kids[k]];
                int drawn_from_topic =
                    child->kind == CONSUMER && (is_messaging(child) || kind == PRODUCER);
                if (!same_text(child->service, r->service) && !drawn_from_topic) {
                    paired = 1;
                    status = pair(w, r, child, 1);
                }
            }
            if (status == OK && kind == UNSPECIFIED && !paired && r->peer_service != NULL) {
                status = virtual_peer(w, r, r->peer_service, 1);
            }
        }
        if (status == OK && w->sign > 0 && is_callee(kind)) {
            status = see_endpoint(w, r); /* only these serve endpoints */
        }
    }
    return status;
}

/* ---- step 3: where failures begin ---- */

/* (chain, children) of the failing span of row ``i``: the rows from it up to the top span
 * present, and its children (a list, or () when it has none, as the Python code's default);
 * NULL with an error. ``climbed`` marks the rows each chain took, by the index of its span. */
static PyObject *
chain_of(Work *w, Py_ssize_t i, Py_ssize_t *climbed)
{
    Py_ssize_t first = w->kids_at[i], n_kids = w->kids_at[i + 1] - first;
    PyObject *chain = PyList_New(0), *item = NULL;
    PyObject *kids = n_kids > 0 ? PyList_New(n_kids) : PyTuple_New(0);
    if (chain == NULL || kids == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_kids; k++) {
        PyList_SET_ITEM(kids, k, Py_NewRef(w->rows[w->kids[first + k]].object));
    }
    /* A parent the chain already took closes a cycle: the chain ends there. */
    for (Py_ssize_t at = i; at >= 0 && climbed[at] != i; at = w->rows[at].parent_at) {
        climbed[at] = i;
        if (PyList_Append(chain, w->rows[at].object) < 0) {
            goto done;
        }
    }
    item = PyTuple_Pack(2, chain, kids);
done:
    Py_XDECREF(chain);
    Py_XDECREF(kids);
    return item;
}

/* paths.failure_chains: (chain, children) of each span where a failure begins, in by_id order;
 * NULL with an error. */
static PyObject *
failure_chains(Work *w)
{
    PyObject *chains = PyList_New(0);
    Py_ssize_t *climbed = NULL;
    if (chains == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < w->n_rows; i++) {
        int begins = failed(&w->rows[i]);
        for (Py_ssize_t k = w->kids_at[i]; k < w->kids_at[i + 1] && begins; k++) {
            begins = !failed(&w->rows[w->kids[k]]); /* else the failure began further down */
        }
        if (!begins) {
            continue;
        }
        if (climbed == NULL) {
            climbed = PyMem_Malloc(w->n_rows * sizeof(Py_ssize_t));
            if (climbed == NULL) {
                PyErr_NoMemory();
                Py_CLEAR(chains);
                break;
            }
            for (Py_ssize_t j = 0; j < w->n_rows; j++) {
                climbed[j] = -1;
            }
        }
        PyObject *item = chain_of(w, i, climbed);
        if (item == NULL || PyList_Append(chains, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(chains);
            break;
        }
        Py_DECREF(item);
    }
    PyMem_Free(climbed);
    return chains;
}

/* ---- step 4: the flush ---- */

/* A Python int of a 128-bit sum. */
static PyObject *
int_of(__int128 value)
{
    if (value >= INT64_MIN && value <= INT64_MAX) {
        return PyLong_FromLongLong((long long)value);
    }
    PyObject *high = PyLong_FromLongLong((long long)(value >> 64));
    PyObject *low = PyLong_FromUnsignedLongLong((unsigned long long)value);
    PyObject *shift = PyLong_FromLong(64), *shifted = NULL, *sum = NULL;
    if (high != NULL && low != NULL && shift != NULL) {
        shifted = PyNumber_Lshift(high, shift);
        if (shifted != NULL) {
            sum = PyNumber_Add(shifted, low);
        }
    }
    Py_XDECREF(high);
    Py_XDECREF(low);
    Py_XDECREF(shift);
    Py_XDECREF(shifted);
    return sum;
}

/* ``target.name += delta``; nothing when delta is 0, as adding 0 leaves the int as it is. */
static int
add_to_attr(PyObject *target, PyObject *name, __int128 delta)
{
    if (delta == 0) {
        return OK;
    }
    PyObject *old = PyObject_GetAttr(target, name), *sum = NULL, *by = int_of(delta);
    int status = FAIL;
    if (old != NULL && by != NULL && (sum = PyNumber_Add(old, by)) != NULL) {
        status = PyObject_SetAttr(target, name, sum) < 0 ? FAIL : OK;
    }
    Py_XDECREF(old);
    Py_XDECREF(by);
    Py_XDECREF(sum);
    return status;
}

/* ``histogram[bucket] = histogram.get(bucket, 0) + count`` for one histogram of a cell. */
static int
add_buckets(Work *w, PyObject *cell, PyObject *name, Py_ssize_t first)
{
    if (first < 0) {
        return OK;
    }
    PyObject *histogram = PyObject_GetAttr(cell, name);
    if (histogram == NULL) {
        return FAIL;
    }
    int status = OK;
    if (!PyDict_Check(histogram)) {
        PyErr_Format(PyExc_TypeError, "Cell.%U must be a dict", name);
        status = FAIL;
    }
    for (Py_ssize_t at = first; at >= 0 && status == OK; at = w->buckets[at].next) {
        PyObject *bucket = PyLong_FromLong(w->buckets[at].bucket), *count = NULL, *sum = NULL;
        PyObject *old = bucket != NULL ? PyDict_GetItemWithError(histogram, bucket) : NULL;
        status = FAIL;
        if (bucket != NULL && (old != NULL || !PyErr_Occurred()) &&
            (count = PyLong_FromLongLong(w->buckets[at].count)) != NULL &&
            (sum = old != NULL ? PyNumber_Add(old, count) : Py_NewRef(count)) != NULL) {
            status = PyDict_SetItem(histogram, bucket, sum) < 0 ? FAIL : OK;
        }
        Py_XDECREF(bucket);
        Py_XDECREF(count);
        Py_XDECREF(sum);
    }
    Py_DECREF(histogram);
    return status;
}

/* ``cell.value, cell.count = cells.larger(cell.value, cell.count, value, count)``. */
static int
merge_larger(PyObject *cell, PyObject *value_attr, PyObject *count_attr, int64_t value,
             __int128 count)
{
    if (count == 0) {
        return OK;
    }
    PyObject *old = PyObject_GetAttr(cell, value_attr);
    PyObject *old_count = old != NULL ? PyObject_GetAttr(cell, count_attr) : NULL;
    PyObject *mine = old_count != NULL ? PyLong_FromLongLong(value) : NULL;
    int status = FAIL;
    if (mine != NULL) {
        int none = PyObject_Not(old_count);
        int above = none == 0 ? PyObject_RichCompareBool(mine, old, Py_GT) : 0;
        int same = none == 0 && above == 0 ? PyObject_RichCompareBool(mine, old, Py_EQ) : 0;
        if (none < 0 || above < 0 || same < 0) {
            status = FAIL;
        }
        else if (none || above) {
            PyObject *n = int_of(count);
            status = n != NULL && PyObject_SetAttr(cell, value_attr, mine) == 0 &&
                             PyObject_SetAttr(cell, count_attr, n) == 0
                         ? OK
                         : FAIL;
            Py_XDECREF(n);
        }
        else {
            status = same ? add_to_attr(cell, count_attr, count) : OK;
        }
    }
    Py_XDECREF(old);
    Py_XDECREF(old_count);
    Py_XDECREF(mine);
    return status;
}

static int
add_sums(Work *w, const CellSum *c, PyObject *cell)
{
    if (add_to_attr(cell, count_attr, c->count) < 0 ||
        add_to_attr(cell, errors_attr, c->errors) < 0 ||
        add_to_attr(cell, client_errors_attr, c->client_errors) < 0 ||
        add_to_attr(cell, duration_sum_attr, c->duration_sum) < 0 ||
        add_buckets(w, cell, buckets_attr, c->first_bucket[0]) < 0) {
        return FAIL;
    }
    /* Each of the call's spans counts |sign| times, as ``Cell.see`` counts it. */
    __int128 times = (__int128)c->max_count * (w->sign > 0 ? w->sign : -(__int128)w->sign);
    if (w->sign > 0 ? merge_larger(cell, duration_max_attr, max_count_attr, c->duration_max,
                                   times) < 0
                    : merge_larger(cell, taken_max_attr, taken_count_attr, c->duration_max,
                                   times) < 0) {
        return FAIL;
    }
    if (add_to_attr(cell, lag_count_attr, c->lag_count) < 0 ||
        add_to_attr(cell, lag_sum_attr, c->lag_sum) < 0 ||
        add_buckets(w, cell, lag_buckets_attr, c->first_bucket[1]) < 0) {
        return FAIL;
    }
    return OK;
}

static int
flush_cells(Work *w, PyObject *cells)
{
    for (Py_ssize_t i = 0; i < w->n_cells; i++) {
        const CellSum *c = &w->cells[i];
        PyObject *minute = PyLong_FromLongLong(c->key.minute), *key = NULL, *cell = NULL;
        int status = FAIL;
        if (minute != NULL) {
            key = PyTuple_Pack(6, minute, c->key.client, c->key.server,
                               connection_types[c->key.connection], c->key.endpoint,
                               sources[c->key.source]);
        }
        if (key != NULL) {
            cell = Py_XNewRef(PyDict_GetItemWithError(cells, key));
            if (cell == NULL && !PyErr_Occurred() &&
                (cell = PyObject_CallNoArgs(cell_type)) != NULL &&
                PyDict_SetItem(cells, key, cell) < 0) {
                Py_CLEAR(cell);
            }
        }
        if (cell != NULL) {
            status = add_sums(w, c, cell);
        }
        Py_XDECREF(minute);
        Py_XDECREF(key);
        Py_XDECREF(cell);
        if (status != OK) {
            return FAIL;
        }
    }
    return OK;
}

static int
flush_nodes(Work *w, PyObject *nodes)
{
    for (Py_ssize_t i = 0; i < w->n_nodes; i++) {
        const NodeSet *node = &w->nodes[i];
        PyObject *value =
            PyTuple_Pack(2, node->kind, node->parent != NULL ? node->parent : Py_None);
        if (value == NULL || PyDict_SetItem(nodes, node->name, value) < 0) {
            Py_XDECREF(value);
            return FAIL;
        }
        Py_DECREF(value);
    }
    return OK;
}

/* ``seen[at] = start`` when ``start`` is beyond it (``op``: Py_LT for the first, Py_GT for the
 * last). */
static int
widen(PyObject *seen, Py_ssize_t at, int64_t start, int op)
{
    PyObject *old = PySequence_GetItem(seen, at), *value = PyLong_FromLongLong(start);
    int beyond = old != NULL && value != NULL ? PyObject_RichCompareBool(value, old, op) : -1;
    if (beyond > 0) {
        beyond = PySequence_SetItem(seen, at, value);
    }
    Py_XDECREF(old);
    Py_XDECREF(value);
    return beyond < 0 ? FAIL : OK;
}

static int
flush_endpoints(Work *w, PyObject *endpoints)
{
    for (Py_ssize_t i = 0; i < w->n_endpoints; i++) {
        const EndpointSeen *e = &w->endpoints[i];
        PyObject *key = PyTuple_Pack(4, e->service, e->protocol, e->method, e->route);
        if (key == NULL) {
            return FAIL;
        }
        PyObject *seen = PyDict_GetItemWithError(endpoints, key), *span = NULL;
        int status = FAIL;
        if (seen != NULL) {
            Py_INCREF(seen);
            if (widen(seen, 0, e->first, Py_LT) == OK && widen(seen, 1, e->last, Py_GT) == OK) {
                status = OK;
            }
            Py_DECREF(seen);
        }
        else if (!PyErr_Occurred()) {
            span = Py_BuildValue("[LL]", (long long)e->first, (long long)e->last);
            if (span != NULL) {
                status = PyDict_SetItem(endpoints, key, span) < 0 ? FAIL : OK;
                Py_DECREF(span);
            }
        }
        Py_DECREF(key);
        if (status != OK) {
            return FAIL;
        }
    }
    return OK;
}


/* ---- gateway requests: Contributions.add_gateway ---- */

/* Positions in a request row (clew.records.GatewayRequest), as rollups.py names them. */
enum {
    G_START, G_GATEWAY, G_CONSUMER, G_CLIENT, G_METHOD, G_HOST, G_PATH, G_ROUTE, G_STATUS,
    G_DURATION, G_UPSTREAM_DURATION, G_UPSTREAM, G_BYTES_SENT, G_BYTES_RECEIVED, G_TRACE_ID,
    G_ATTRIBUTES, G_SIZE
};

static int
same_pair_key(const void *entries, Py_ssize_t at, const void *key)
{
    return same_text(((const TextPair *)entries)[at].key, (PyObject *)key);
}

/* The entry of ``text`` in a TextPair table, or the empty slot for it (``*hash`` set). */
static Slot *
find_text(Table *index, TextPair *pairs, PyObject *text, uint64_t *hash)
{
    *hash = text_hash(text);
    return table_find(index, *hash, same_pair_key, pairs, text);
}

static int
keep_text(TextPair **pairs, Py_ssize_t *n, Py_ssize_t *size, Table *index, Slot *slot,
          uint64_t hash, TextPair pair)
{
    if (reserve((void **)pairs, size, *n, sizeof(TextPair)) < 0) {
        if (pair.owned) {
            Py_DECREF(pair.value);
        }
        return FAIL;
    }
    (*pairs)[*n] = pair;
    return table_claim(index, slot, hash, (*n)++);
}

/* One object for each text in this call (borrowed): the first one met. */
static PyObject *
canonical(Work *w, PyObject *text)
{
    uint64_t hash;
    Slot *slot = find_text(&w->canon_index, w->canon, text, &hash);
    if (slot->at >= 0) {
        return w->canon[slot->at].value;
    }
    TextPair pair = {text, text, 0};
    if (keep_text(&w->canon, &w->n_canon, &w->canon_size, &w->canon_index, slot, hash, pair) < 0) {
        return NULL;
    }
    return text;
}

/* routes.template_of(path), once per path text in a call (borrowed), or NULL with an error: the
 * compiled twin where it reads the path exactly, else ``template``, the Python function. */
static PyObject *
template_for(Work *w, PyObject *path, PyObject *template)
{
    uint64_t hash;
    Slot *slot = find_text(&w->template_index, w->templates, path, &hash);
    if (slot->at >= 0) {
        return w->templates[slot->at].value;
    }
    PyObject *made = route_template(path);
    if (made == Py_None) {
        Py_DECREF(made);
        made = PyObject_CallOneArg(template, path);
        if (made != NULL && !PyUnicode_CheckExact(made)) {
            PyErr_SetString(PyExc_TypeError, "a route template must be a str");
            Py_CLEAR(made);
        }
    }
    if (made == NULL) {
        return NULL;
    }
    PyObject *text = canonical(w, made);
    TextPair pair = {path, made, 1}; /* owns ``made``, which ``text`` may be */
    if (text == NULL || keep_text(&w->templates, &w->n_templates, &w->templates_size,
                                  &w->template_index, slot, hash, pair) < 0) {
        if (text == NULL) {
            Py_DECREF(made);
        }
        return NULL;
    }
    return text;
}

/* An int column or None (``*has`` 0). */
static int
optional_int(PyObject *value, int64_t *out, int *has)
{
    *has = value != Py_None;
    *out = 0;
    return *has ? int_column(value, 0, out) : OK;
}

/* One request of Contributions.add_gateway. */
static int
gateway_request(Work *w, PyObject *request, PyObject *template)
{
    if (!PyTuple_Check(request) || PyTuple_GET_SIZE(request) != G_SIZE) {
        return DECLINE;
    }
#define COLUMN(i) PyTuple_GET_ITEM(request, i)
    PyObject *gateway, *consumer, *method, *path, *route, *upstream;
    int64_t start, status, duration, upstream_duration;
    int has_status, has_duration, has_upstream_duration, st;
    if ((st = int_column(COLUMN(G_START), 0, &start)) != OK ||
        (st = text_column(COLUMN(G_GATEWAY), &gateway)) != OK ||
        (st = optional_text(COLUMN(G_CONSUMER), &consumer)) != OK ||
        (st = optional_text(COLUMN(G_METHOD), &method)) != OK ||
        (st = optional_text(COLUMN(G_PATH), &path)) != OK ||
        (st = optional_text(COLUMN(G_ROUTE), &route)) != OK ||
        (st = optional_int(COLUMN(G_STATUS), &status, &has_status)) != OK ||
        (st = optional_int(COLUMN(G_DURATION), &duration, &has_duration)) != OK ||
        (st = optional_int(COLUMN(G_UPSTREAM_DURATION), &upstream_duration,
                           &has_upstream_duration)) != OK ||
        (st = optional_text(COLUMN(G_UPSTREAM), &upstream)) != OK) {
        return st;
    }
#undef COLUMN
    /* route = request[G_ROUTE] or routes.template_of(request[G_PATH] or "/") */
    PyObject *template_text = truthy(route) ? canonical(w, route)
                                            : template_for(w, truthy(path) ? path : slash, template);
    if (template_text == NULL) {
        return FAIL;
    }
    PyObject *endpoint = template_text;
    if (method != NULL) {
        PyObject *verb = canonical(w, method);
        if (verb == NULL || (endpoint = joined(w, verb, ' ', template_text)) == NULL) {
            return FAIL;
        }
    }
    int64_t minute = floor_div(start, ns_per_minute);
    PyObject *caller = truthy(consumer) ? consumer : root_caller;
    int error = status >= 500, client_error = status >= 400 && status <= 499;
    Row side;
    side.duration = duration; /* ``or 0``: None is 0 */
    CellKey key = {minute, caller, gateway, endpoint, VIRTUAL, GATEWAY_SOURCE};
    if ((st = add(w, &key, &side, error, client_error, NULL)) != OK ||
        (st = set_node(w, caller, client_node, NULL)) != OK ||
        (st = set_node(w, gateway, gateway_node, NULL)) != OK) {
        return st;
    }
    if (upstream == NULL) {
        return OK;
    }
    int64_t overhead, *lag = NULL;
    if (!has_upstream_duration) {
        upstream_duration = duration;
    }
    else if (has_duration) {
        if (__builtin_sub_overflow(duration, upstream_duration, &overhead)) {
            return DECLINE;
        }
        lag = &overhead;
    }
    side.duration = upstream_duration;
    CellKey onward = {minute, gateway, upstream, endpoint, DIRECT, GATEWAY_SOURCE};
    if ((st = add(w, &onward, &side, error, client_error, lag)) != OK ||
        (st = set_node(w, upstream, service_node, NULL)) != OK) {
        return st;
    }
    if (w->sign <= 0) {
        return OK;
    }
    EndpointSeen seen = {upstream, http_protocol, truthy(method) ? method : any_method,
                         template_text, start, start};
    return record_endpoint(w, seen);
}

/* ---- the module ---- */

/* ``sign`` (an exact int) in 32 bits; 0 when it is beyond them (the Python path takes it). */
static int
small_sign(PyObject *sign, int *out)
{
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(sign, &overflow);
    if (overflow || value < INT32_MIN || value > INT32_MAX) {
        return 0;
    }
    *out = (int)value;
    return 1;
}

PyDoc_STRVAR(add_by_id_doc,
"add_by_id(by_id, sign, root_callers, cells, nodes, endpoints, add_chains) -> bool\n\n"
"Contributions.add_by_id of the rows in ``by_id`` ((trace id, span id) -> row) with ``sign``:\n"
"the Contributions' ``cells``, ``nodes`` and ``endpoints`` updated in place, and the spans\n"
"where failures begin handed to ``add_chains(chains, sign, root_callers)``\n"
"(FailingPaths.add_chains). False, with nothing changed, when the call needs the Python path.");

static PyObject *
add_by_id(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "add_by_id takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    if (cell_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "clew.pipeline._contributions is not configured");
        return NULL;
    }
    PyObject *by_id = args[0], *sign = args[1], *root_callers = args[2], *cells = args[3];
    PyObject *nodes = args[4], *endpoints = args[5], *add_chains = args[6];
    if (!PyDict_CheckExact(by_id) || !PyLong_CheckExact(sign) || !PyDict_CheckExact(root_callers) ||
        !PyDict_CheckExact(cells) || !PyDict_CheckExact(nodes) || !PyDict_CheckExact(endpoints)) {
        Py_RETURN_FALSE;
    }
    int sign_value;
    if (!small_sign(sign, &sign_value)) {
        Py_RETURN_FALSE;
    }
    if (PyDict_GET_SIZE(by_id) == 0) {
        Py_RETURN_TRUE;
    }
    Work w;
    memset(&w, 0, sizeof(w));
    w.sign = sign_value;
    w.root_callers = root_callers;
    int status = read_rows(&w, by_id);
    if (status == OK && (table_init(&w.cell_index, w.n_rows) < 0 ||
                         table_init(&w.bucket_index, w.n_rows) < 0 ||
                         table_init(&w.node_index, 64) < 0 ||
                         table_init(&w.endpoint_index, 64) < 0 ||
                         table_init(&w.joined_index, 64) < 0)) {
        status = FAIL;
    }
    if (status == OK) {
        status = pair_rows(&w);
    }
    if (status == OK) {
        PyObject *chains = failure_chains(&w), *done = NULL;
        if (chains != NULL && PyList_GET_SIZE(chains) > 0) {
            done = PyObject_CallFunctionObjArgs(add_chains, chains, sign, root_callers, NULL);
        }
        if (chains == NULL || (PyList_GET_SIZE(chains) > 0 && done == NULL)) {
            status = FAIL;
        }
        Py_XDECREF(done);
        Py_XDECREF(chains);
    }
    if (status == OK && (flush_cells(&w, cells) < 0 || flush_nodes(&w, nodes) < 0 ||
                         flush_endpoints(&w, endpoints) < 0)) {
        status = FAIL;
    }
    work_free(&w);
    if (status == FAIL) {
        return NULL;
    }
    return PyBool_FromLong(status == OK);
}

PyDoc_STRVAR(add_gateway_doc,
"add_gateway(requests, sign, cells, nodes, endpoints, template) -> bool\n\n"
"Contributions.add_gateway of the request rows in the list ``requests`` with ``sign``: the\n"
"Contributions' ``cells``, ``nodes`` and ``endpoints`` updated in place. ``template`` is\n"
"routes.template_of, called for the paths the compiled twin does not read exactly. False, with\n"
"nothing changed, when the call needs the Python path.");

static PyObject *
add_gateway(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "add_gateway takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    if (cell_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "clew.pipeline._contributions is not configured");
        return NULL;
    }
    PyObject *requests = args[0], *sign = args[1], *cells = args[2], *nodes = args[3];
    PyObject *endpoints = args[4], *template = args[5];
    if (!PyList_CheckExact(requests) || !PyLong_CheckExact(sign) || !PyDict_CheckExact(cells) ||
        !PyDict_CheckExact(nodes) || !PyDict_CheckExact(endpoints)) {
        Py_RETURN_FALSE;
    }
    int sign_value;
    if (!small_sign(sign, &sign_value)) {
        Py_RETURN_FALSE;
    }
    Py_ssize_t n = PyList_GET_SIZE(requests);
    if (n == 0) {
        Py_RETURN_TRUE;
    }
    Work w;
    memset(&w, 0, sizeof(w));
    w.sign = sign_value;
    int status = OK;
    if (table_init(&w.cell_index, 1024) < 0 || table_init(&w.bucket_index, 4096) < 0 ||
        table_init(&w.node_index, 64) < 0 || table_init(&w.endpoint_index, 64) < 0 ||
        table_init(&w.joined_index, 64) < 0 || table_init(&w.template_index, 1024) < 0 ||
        table_init(&w.canon_index, 64) < 0) {
        status = FAIL;
    }
    /* The list is read as it is: nothing here runs code that could change it, but for
     * ``template``, which is routes.template_of. */
    Py_INCREF(requests);
    for (Py_ssize_t i = 0; i < n && status == OK; i++) {
        status = gateway_request(&w, PyList_GET_ITEM(requests, i), template);
    }
    if (status == OK && (flush_cells(&w, cells) < 0 || flush_nodes(&w, nodes) < 0 ||
                         flush_endpoints(&w, endpoints) < 0)) {
        status = FAIL;
    }
    Py_DECREF(requests);
    work_free(&w);
    if (status == FAIL) {
        return NULL;
    }
    return PyBool_FromLong(status == OK);
}

PyDoc_STRVAR(template_of_doc,
"template_of(path) -> str | None\n\n"
"routes.template_of(path) compiled; None for a path only the Python function reads exactly\n"
"(not ASCII, or with a percent escape).");

static PyObject *
template_of(PyObject *Py_UNUSED(module), PyObject *path)
{
    if (!PyUnicode_Check(path)) {
        PyErr_SetString(PyExc_TypeError, "path must be a str");
        return NULL;
    }
    return route_template(path);
}

PyDoc_STRVAR(configure_doc,
"configure(*, cell, span, int_enums, root_caller, node_kinds, connection_types, sources,\n"
"          ns_per_minute, log_gamma, zero_bucket)\n\n"
"Hands in what add_by_id builds with: the Cell type, the Span type (read as a tuple), the int\n"
"enums a kind or status may be (SpanKind, StatusCode), ROOT_CALLER, the NodeKind and\n"
"ConnectionType classes, the (TRACE_SOURCE, RELAXED, GATEWAY_SOURCE) sources, the nanoseconds\n"
"of a minute and\n"
"histogram's _LOG_GAMMA and ZERO_BUCKET. Called once, when rollups is imported.");

/* A str class attribute of ``owner`` (NodeKind, ConnectionType), or NULL with an error. */
static PyObject *
text_attr(PyObject *owner, const char *name)
{
    PyObject *value = PyObject_GetAttrString(owner, name);
    if (value != NULL && !PyUnicode_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", name);
        Py_CLEAR(value);
    }
    return value;
}

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"cell",          "span",      "int_enums",   "root_caller",
                               "node_kinds",    "connection_types",        "sources",
                               "ns_per_minute", "log_gamma", "zero_bucket", NULL};
    PyObject *cell, *span, *enums, *caller, *node_kinds, *connections, *source_pair;
    long long minute;
    double gamma;
    long zero;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!O!UOOO!Ldl", keywords, &PyType_Type,
                                     &cell, &PyType_Type, &span, &PyTuple_Type, &enums, &caller,
                                     &node_kinds, &connections, &PyTuple_Type, &source_pair,
                                     &minute, &gamma, &zero)) {
        return NULL;
    }
    PyObject *fields = PyObject_GetAttrString(span, "_fields");
    int fits = fields != NULL && PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == ROW_SIZE;
    Py_XDECREF(fields);
    if (!fits || !PyType_IsSubtype((PyTypeObject *)span, &PyTuple_Type)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "span must be a named tuple type of %d fields", ROW_SIZE);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(enums); i++) {
        PyObject *type = PyTuple_GET_ITEM(enums, i);
        if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyLong_Type)) {
            PyErr_SetString(PyExc_TypeError, "int_enums must be int subclasses");
            return NULL;
        }
    }
    if (PyTuple_GET_SIZE(source_pair) != N_SOURCES ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(source_pair, 0)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(source_pair, 1)) ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(source_pair, 2)) || minute <= 0 ||
        !(gamma > 0.0)) {
        PyErr_SetString(PyExc_ValueError,
                        "sources must be three str, ns_per_minute and log_gamma positive");
        return NULL;
    }
    static const char *const node_names[] = {"CLIENT",   "DATABASE", "BROKER", "TOPIC",
                                             "EXTERNAL", "GATEWAY",  "SERVICE"};
    static const char *const connection_names[N_CONNECTIONS] = {"DIRECT", "MESSAGING",
                                                                "DATABASE", "VIRTUAL"};
    PyObject *kinds[7] = {NULL}, *types[N_CONNECTIONS] = {NULL};
    int found = 1;
    for (int i = 0; i < 7 && found; i++) {
        found = (kinds[i] = text_attr(node_kinds, node_names[i])) != NULL;
    }
    for (int i = 0; i < N_CONNECTIONS && found; i++) {
        found = (types[i] = text_attr(connections, connection_names[i])) != NULL;
    }
    if (!found) {
        for (int i = 0; i < 7; i++) {
            Py_XDECREF(kinds[i]);
        }
        for (int i = 0; i < N_CONNECTIONS; i++) {
            Py_XDECREF(types[i]);
        }
        return NULL;
    }
    Py_XSETREF(client_node, kinds[0]);
    Py_XSETREF(database_node, kinds[1]);
    Py_XSETREF(broker_node, kinds[2]);
    Py_XSETREF(topic_node, kinds[3]);
    Py_XSETREF(external_node, kinds[4]);
    Py_XSETREF(gateway_node, kinds[5]);
    Py_XSETREF(service_node, kinds[6]);
    for (int i = 0; i < N_CONNECTIONS; i++) {
        Py_XSETREF(connection_types[i], types[i]);
    }
    for (int i = 0; i < N_SOURCES; i++) {
        Py_XSETREF(sources[i], Py_NewRef(PyTuple_GET_ITEM(source_pair, i)));
    }
    Py_XSETREF(span_type, Py_NewRef(span));
    Py_XSETREF(int_enums, Py_NewRef(enums));
    Py_XSETREF(root_caller, Py_NewRef(caller));
    Py_XSETREF(cell_type, Py_NewRef(cell));
    ns_per_minute = minute;
    log_gamma = gamma;
    zero_bucket = zero;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"add_by_id", (PyCFunction)(void (*)(void))add_by_id, METH_FASTCALL, add_by_id_doc},
    {"add_gateway", (PyCFunction)(void (*)(void))add_gateway, METH_FASTCALL, add_gateway_doc},
    {"template_of", (PyCFunction)template_of, METH_O, template_of_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "clew.pipeline._contributions",
    "Contributions.add_by_id and add_gateway of clew.pipeline.rollups, compiled.",
    -1,
    methods,
    NULL, /* no slots: single-phase initialisation */
    NULL,
    NULL,
    NULL,
};

/* An interned str into ``*out``; 0 on failure. */
static int
intern(PyObject **out, const char *text)
{
    *out = PyUnicode_InternFromString(text);
    return *out != NULL;
}

PyMODINIT_FUNC
PyInit__contributions(void)
{
    /* rollups.py's literals: the default broker and the endpoint protocols and methods. */
    if (!intern(&default_broker, "broker") || !intern(&http_protocol, "http") ||
        !intern(&rpc_protocol, "rpc") || !intern(&messaging_protocol, "messaging") ||
        !intern(&process_method, "process") || !intern(&any_method, "ANY") ||
        !intern(&slash, "/") ||
        !intern(&count_attr, "count") || !intern(&errors_attr, "errors") ||
        !intern(&client_errors_attr, "client_errors") ||
        !intern(&duration_sum_attr, "duration_sum") ||
        !intern(&duration_max_attr, "duration_max") || !intern(&buckets_attr, "buckets") ||
        !intern(&max_count_attr, "max_count") || !intern(&taken_max_attr, "taken_max") ||
        !intern(&taken_count_attr, "taken_count") || !intern(&lag_count_attr, "lag_count") ||
        !intern(&lag_sum_attr, "lag_sum") || !intern(&lag_buckets_attr, "lag_buckets")) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
