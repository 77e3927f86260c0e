/* The records of an OTLP/protobuf ExportTraceServiceRequest, read straight off its wire format,
 * and what both of the module's readers share: the text caches and semconv.build_span.
 *
 * The compiled twin of collectors/otlp_proto.py's records_of_message and semconv.build_span: it
 * gives the same Resource, Span and SpanLink records, or None whenever the message holds
 * anything it does not reproduce exactly (a span the Python path would quarantine, wire data
 * protobuf would reject or merge, ...), and the Python path then reads that message. Clew's
 * types, functions and rename tables are handed in by configure(), so nothing of Clew is
 * compiled in but the names of the few attributes build_span treats specially. The OTLP/JSON
 * reader is in _otlp_json.c.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "_otlp_native.h"

/* next_field's answers. */
#define FIELD 1
#define END 0
#define BAD 2

#define WIRE_VARINT 0
#define WIRE_I64 1
#define WIRE_LEN 2
#define WIRE_I32 5

/* Deeper AnyValue nesting is left to protobuf, which has its own recursion limit. */
#define MAX_DEPTH 24

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Cursor;

typedef struct {
    uint32_t number;
    int wire;
    uint64_t value;      /* varint, fixed64 or fixed32 */
    const uint8_t *data; /* a length-delimited field's bytes */
    Py_ssize_t len;
} Field;

/* ---- configuration (configure) ---- */

PyTypeObject *span_type, *link_type;
static PyObject *resource_from, *dumps, *json_text;
static PyObject *legacy_keys;   /* frozenset of every legacy name normalise looks for */
static PyObject *renames[2];    /* old -> (rank, old, new): [0] client side, [1] server side */
static PyObject *lifted_index;  /* lifted attribute name -> its index among the lifted columns */
static Py_ssize_t n_lifted, span_size;
static int status_column, server_column, url_path_column;
static long server_kind;
static uint32_t caller_kinds;   /* bit k set: kind k is a caller (its network peer is the server) */
static PyObject *http_target, *peer_address, *peer_port, *empty, *service_name;

/* ---- wire format ---- */

static inline int
read_varint(Cursor *c, uint64_t *out)
{
    if (c->p < c->end && !(*c->p & 0x80)) {
        *out = *c->p++;
        return 1;
    }
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && c->p < c->end; shift += 7) {
        uint8_t byte = *c->p++;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            if (shift == 63 && byte > 1) {
                return 0; /* more than 64 bits */
            }
            *out = value;
            return 1;
        }
    }
    return 0;
}

static inline uint64_t
load_le(const uint8_t *p, int size)
{
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; i--) {
        value = value << 8 | p[i];
    }
    return value;
}

/* A tag or a length: protobuf reads those in at most five bytes. */
static inline int
read_varint32(Cursor *c, uint64_t *out)
{
    const uint8_t *start = c->p;
    return read_varint(c, out) && c->p - start <= 5;
}

/* The next field of a message: FIELD, END, or BAD when the bytes are not protobuf's wire format
 * (or use groups, which only the Python path reads). */
static inline int
next_field(Cursor *c, Field *f)
{
    uint64_t tag, len;
    if (c->p >= c->end) {
        return END;
    }
    if (!read_varint32(c, &tag) || tag > UINT32_MAX || tag >> 3 == 0) {
        return BAD;
    }
    f->number = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    switch (f->wire) {
    case WIRE_VARINT:
        return read_varint(c, &f->value) ? FIELD : BAD;
    case WIRE_I64:
        if (c->end - c->p < 8) {
            return BAD;
        }
        f->value = load_le(c->p, 8);
        c->p += 8;
        return FIELD;
    case WIRE_I32:
        if (c->end - c->p < 4) {
            return BAD;
        }
        f->value = load_le(c->p, 4);
        c->p += 4;
        return FIELD;
    case WIRE_LEN:
        if (!read_varint32(c, &len) || len > (uint64_t)(c->end - c->p) || len > INT32_MAX) {
            return BAD;
        }
        f->data = c->p;
        f->len = (Py_ssize_t)len;
        c->p += len;
        return FIELD;
    default:
        return BAD;
    }
}

/* Well-formed UTF-8, as protobuf requires of a string field (and Python's strict decoder). */
int
utf8_valid(const uint8_t *s, Py_ssize_t n)
{
    const uint8_t *end = s + n;
    while (s < end) {
        if (end - s >= 8) {
            uint64_t word;
            memcpy(&word, s, 8);
            if (!(word & 0x8080808080808080ULL)) {
                s += 8;
                continue;
            }
        }
        uint8_t b = *s;
        if (b < 0x80) {
            s++;
            continue;
        }
        Py_ssize_t size;
        uint8_t low = 0x80, high = 0xBF; /* the range of the second byte */
        if (b >= 0xC2 && b <= 0xDF) {
            size = 2;
        }
        else if (b >= 0xE0 && b <= 0xEF) {
            size = 3;
            if (b == 0xE0) {
                low = 0xA0;
            }
            else if (b == 0xED) {
                high = 0x9F; /* no surrogates */
            }
        }
        else if (b >= 0xF0 && b <= 0xF4) {
            size = 4;
            if (b == 0xF0) {
                low = 0x90;
            }
            else if (b == 0xF4) {
                high = 0x8F; /* nothing beyond U+10FFFF */
            }
        }
        else {
            return 0;
        }
        if (end - s < size || s[1] < low || s[1] > high) {
            return 0;
        }
        for (Py_ssize_t i = 2; i < size; i++) {
            if ((s[i] & 0xC0) != 0x80) {
                return 0;
            }
        }
        s += size;
    }
    return 1;
}

/* ---- checking the parts no record is made of ---- */

/* Protobuf still decodes every field of a message it is given, so a bad string or a broken
 * message anywhere (an event's attribute, a scope's name) makes the whole request fail there:
 * these schemas say what to check in the parts the records leave out. */

enum { RULE_PLAIN, RULE_TEXT, RULE_MESSAGE };

typedef struct Schema Schema;

typedef struct {
    uint32_t number;
    uint8_t wire;
    uint8_t rule;
    const Schema *message;
} Rule;

struct Schema {
    const Rule *rules;
    int count;
};

static const Schema ANY_VALUE, KEY_VALUE;

static const Rule ARRAY_RULES[] = {{1, WIRE_LEN, RULE_MESSAGE, &ANY_VALUE}};
static const Schema ARRAY = {ARRAY_RULES, 1};
static const Rule KEY_VALUE_LIST_RULES[] = {{1, WIRE_LEN, RULE_MESSAGE, &KEY_VALUE}};
static const Schema KEY_VALUE_LIST = {KEY_VALUE_LIST_RULES, 1};

static const Rule ANY_VALUE_RULES[] = {
    {1, WIRE_LEN, RULE_TEXT, NULL},         {2, WIRE_VARINT, RULE_PLAIN, NULL},
    {3, WIRE_VARINT, RULE_PLAIN, NULL},     {4, WIRE_I64, RULE_PLAIN, NULL},
    {5, WIRE_LEN, RULE_MESSAGE, &ARRAY},    {6, WIRE_LEN, RULE_MESSAGE, &KEY_VALUE_LIST},
    {7, WIRE_LEN, RULE_PLAIN, NULL},        {8, WIRE_VARINT, RULE_PLAIN, NULL},
};
static const Schema ANY_VALUE = {ANY_VALUE_RULES, 8};

static const Rule KEY_VALUE_RULES[] = {
    {1, WIRE_LEN, RULE_TEXT, NULL},
    {2, WIRE_LEN, RULE_MESSAGE, &ANY_VALUE},
    {3, WIRE_VARINT, RULE_PLAIN, NULL},
};
static const Schema KEY_VALUE = {KEY_VALUE_RULES, 3};

static const Rule SCOPE_RULES[] = {
    {1, WIRE_LEN, RULE_TEXT, NULL},
    {2, WIRE_LEN, RULE_TEXT, NULL},
    {3, WIRE_LEN, RULE_MESSAGE, &KEY_VALUE},
    {4, WIRE_VARINT, RULE_PLAIN, NULL},
};
static const Schema SCOPE = {SCOPE_RULES, 4};

static const Rule EVENT_RULES[] = {
    {1, WIRE_I64, RULE_PLAIN, NULL},
    {2, WIRE_LEN, RULE_TEXT, NULL},
    {3, WIRE_LEN, RULE_MESSAGE, &KEY_VALUE},
    {4, WIRE_VARINT, RULE_PLAIN, NULL},
};
static const Schema EVENT = {EVENT_RULES, 4};

static const Rule LINK_RULES[] = {
    {1, WIRE_LEN, RULE_PLAIN, NULL},  {2, WIRE_LEN, RULE_PLAIN, NULL},
    {3, WIRE_LEN, RULE_TEXT, NULL},   {4, WIRE_LEN, RULE_MESSAGE, &KEY_VALUE},
    {5, WIRE_VARINT, RULE_PLAIN, NULL}, {6, WIRE_I32, RULE_PLAIN, NULL},
};
static const Schema LINK = {LINK_RULES, 6};

static const Rule ENTITY_REF_RULES[] = {
    {1, WIRE_LEN, RULE_TEXT, NULL},
    {2, WIRE_LEN, RULE_TEXT, NULL},
    {3, WIRE_LEN, RULE_TEXT, NULL},
    {4, WIRE_LEN, RULE_TEXT, NULL},
};
static const Schema ENTITY_REF = {ENTITY_REF_RULES, 4};

/* OK when protobuf would decode the message as ``schema`` without changing its meaning, else
 * DECLINE (a known field with another wire type, too deep, malformed). */
static int
check(const uint8_t *data, Py_ssize_t len, const Schema *schema, int depth)
{
    Cursor c = {data, data + len};
    Field f;
    int r;
    if (depth > MAX_DEPTH) {
        return DECLINE;
    }
    while ((r = next_field(&c, &f)) == FIELD) {
        for (int i = 0; i < schema->count; i++) {
            const Rule *rule = &schema->rules[i];
            if (rule->number != f.number) {
                continue;
            }
            if (rule->wire != f.wire ||
                (rule->rule == RULE_TEXT && !utf8_valid(f.data, f.len)) ||
                (rule->rule == RULE_MESSAGE &&
                 check(f.data, f.len, rule->message, depth + 1) != OK)) {
                return DECLINE;
            }
            break;
        }
    }
    return r == END ? OK : DECLINE;
}

/* ---- text ---- */

/* Attribute keys and short values repeat from span to span: each is decoded once and kept in a
 * direct-mapped cache (a new text replaces the old one in its slot). */
#define KEY_SLOTS 1024
#define VALUE_SLOTS 4096
#define CACHED_LEN 48

typedef struct {
    PyObject *text; /* NULL while the slot is empty */
    uint32_t hash;
    uint32_t len;
    int8_t lifted;  /* a key's index among the lifted columns, or -1 */
    uint8_t legacy; /* a key normalise renames */
    uint8_t bytes[CACHED_LEN];
} Cached;

static Cached key_cache[KEY_SLOTS], value_cache[VALUE_SLOTS];

/* Up to eight bytes as a word, read without passing ``s + n`` (a string may end its buffer). */
static inline uint64_t
load_short(const uint8_t *s, Py_ssize_t n)
{
    uint32_t lo, hi;
    if (n >= 4) {
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4); /* overlaps ``lo`` when n < 8: the bytes are all in */
        return (uint64_t)hi << 32 | lo;
    }
    return n ? (uint64_t)s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16 : 0;
}

/* A text's slot hash, taken eight bytes at a time (a byte at a time, FNV-1a's chain of
 * multiplications was a tenth of the JSON reader's time). Equal texts hash alike; the slot's
 * length and bytes are compared before a hit is trusted. */
static inline uint32_t
text_hash(const uint8_t *s, Py_ssize_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * k, w;
    for (; n > 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    h = (h ^ load_short(s, n)) * k;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* Whether ``n`` bytes at ``a`` and ``b`` are the same (inline: short texts, where calling memcmp
 * costs more than comparing). */
static inline int
same_bytes(const uint8_t *a, const uint8_t *b, Py_ssize_t n)
{
    uint64_t x, y;
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
            return 0;
        }
    }
    return load_short(a, n) == load_short(b, n);
}

static void
clear_caches(void)
{
    for (int i = 0; i < KEY_SLOTS; i++) {
        Py_CLEAR(key_cache[i].text);
    }
    for (int i = 0; i < VALUE_SLOTS; i++) {
        Py_CLEAR(value_cache[i].text);
    }
}

/* A str of UTF-8 that is already known to be valid. */
static inline PyObject *
decode(const uint8_t *s, Py_ssize_t n)
{
    return PyUnicode_DecodeUTF8((const char *)s, n, NULL);
}

/* How build_span treats a key: its lifted column (or -1), and whether it is a legacy name. */
static int
key_kind(PyObject *key, int *lifted, int *legacy)
{
    PyObject *index = PyDict_GetItemWithError(lifted_index, key);
    if (index == NULL && PyErr_Occurred()) {
        return FAIL;
    }
    *lifted = index ? (int)PyLong_AsLong(index) : -1;
    *legacy = PySet_Contains(legacy_keys, key);
    return *legacy < 0 ? FAIL : OK;
}

/* A new reference to the str of a string field (checked here), or NULL: DECLINE in *status
 * for invalid UTF-8, FAIL for a Python error. Keys also get their kind. */
PyObject *
text_of(const uint8_t *s, Py_ssize_t n, int is_key, int *lifted, int *legacy, int *status)
{
    Cached *cache = is_key ? key_cache : value_cache;
    uint32_t hash = 0;
    Cached *slot = NULL;
    if (n <= CACHED_LEN) {
        hash = text_hash(s, n);
        slot = &cache[hash & ((is_key ? KEY_SLOTS : VALUE_SLOTS) - 1)];
        if (slot->text && slot->hash == hash && slot->len == (uint32_t)n &&
            same_bytes(slot->bytes, s, n)) {
            if (is_key) {
                *lifted = slot->lifted;
                *legacy = slot->legacy;
            }
            return Py_NewRef(slot->text);
        }
    }
    if (!utf8_valid(s, n)) {
        *status = DECLINE;
        return NULL;
    }
    PyObject *text = decode(s, n);
    int kind_lifted = -1, kind_legacy = 0;
    if (text == NULL || (is_key && key_kind(text, &kind_lifted, &kind_legacy) != OK)) {
        Py_XDECREF(text);
        *status = FAIL;
        return NULL;
    }
    if (is_key) {
        *lifted = kind_lifted;
        *legacy = kind_legacy;
    }
    if (slot) {
        /* Filled only after everything that may allocate (and so run other Python code). */
        PyObject *old = slot->text;
        slot->text = Py_NewRef(text);
        slot->hash = hash;
        slot->len = (uint32_t)n;
        slot->lifted = (int8_t)kind_lifted;
        slot->legacy = (uint8_t)kind_legacy;
        memcpy(slot->bytes, s, n);
        Py_XDECREF(old);
    }
    return text;
}

static PyObject *
hex_of(const uint8_t *b, Py_ssize_t n)
{
    static const char digits[] = "0123456789abcdef";
    PyObject *text = PyUnicode_New(2 * n, 127);
    if (text == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    return text;
}

/* base64.b64encode(b).decode(): bytes values as OTLP/JSON has them. */
static PyObject *
base64_of(const uint8_t *b, Py_ssize_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    PyObject *text = PyUnicode_New(4 * ((n + 2) / 3), 127);
    if (text == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = alphabet[v >> 6 & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *out++ = '=';
    }
    return text;
}

/* ---- attributes ---- */

static int key_values_into(const uint8_t *data, Py_ssize_t len, int depth, PyObject *out);

/* A new reference to an AnyValue as a plain value (otlp_proto.any_value), in *out. */
static int
any_value(const uint8_t *data, Py_ssize_t len, int depth, PyObject **out)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status = OK, unused;
    PyObject *value = NULL;
    if (depth > MAX_DEPTH) {
        return DECLINE;
    }
    while ((r = next_field(&c, &f)) == FIELD) {
        if (f.number > 8) {
            continue;
        }
        if (value != NULL) {
            status = DECLINE; /* a second value: protobuf keeps the last, or merges two */
            break;
        }
        static const int wires[9] = {-1,       WIRE_LEN, WIRE_VARINT, WIRE_VARINT, WIRE_I64,
                                     WIRE_LEN, WIRE_LEN, WIRE_LEN,    WIRE_VARINT};
        if (f.number == 8 || f.wire != wires[f.number]) {
            status = DECLINE; /* string_value_strindex, or a field protobuf keeps as unknown */
            break;
        }
        switch (f.number) {
        case 1:
            value = text_of(f.data, f.len, 0, &unused, &unused, &status);
            break;
        case 2:
            value = Py_NewRef(f.value ? Py_True : Py_False);
            break;
        case 3:
            value = PyLong_FromLongLong((long long)f.value);
            break;
        case 4: {
            double d;
            memcpy(&d, &f.value, sizeof d);
            value = PyFloat_FromDouble(d);
            break;
        }
        case 5: {
            Cursor items = {f.data, f.data + f.len};
            Field item;
            int more;
            value = PyList_New(0);
            if (value == NULL) {
                break;
            }
            while ((more = next_field(&items, &item)) == FIELD) {
                if (item.number != 1) {
                    continue;
                }
                PyObject *element = NULL;
                if (item.wire != WIRE_LEN) {
                    status = DECLINE;
                }
                else {
                    status = any_value(item.data, item.len, depth + 1, &element);
                }
                if (status == OK && PyList_Append(value, element) < 0) {
                    status = FAIL;
                }
                Py_XDECREF(element);
                if (status != OK) {
                    break;
                }
            }
            if (status == OK && more == BAD) {
                status = DECLINE;
            }
            break;
        }
        case 6:
            value = PyDict_New();
            if (value != NULL) {
                status = key_values_into(f.data, f.len, depth + 1, value);
            }
            break;
        case 7:
            value = base64_of(f.data, f.len);
            break;
        }
        if (value == NULL && status == OK) {
            status = FAIL;
        }
        if (status != OK) {
            break;
        }
    }
    if (status == OK && r == BAD) {
        status = DECLINE;
    }
    if (status != OK) {
        Py_XDECREF(value);
        return status;
    }
    *out = value ? value : Py_NewRef(Py_None);
    return OK;
}

/* One KeyValue: its key's str and kind, and its value (new references). */
static int
key_value(const uint8_t *data, Py_ssize_t len, int depth, PyObject **key, PyObject **value,
          int *lifted, int *legacy)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status = OK;
    const uint8_t *key_data = data, *value_data = NULL;
    Py_ssize_t key_len = 0, value_len = 0;
    while ((r = next_field(&c, &f)) == FIELD) {
        if (f.number == 1) {
            if (f.wire != WIRE_LEN || !utf8_valid(f.data, f.len)) {
                return DECLINE;
            }
            key_data = f.data, key_len = f.len; /* the last one counts */
        }
        else if (f.number == 2) {
            if (f.wire != WIRE_LEN || value_data != NULL) {
                return DECLINE; /* a second value is merged into the first */
            }
            value_data = f.data, value_len = f.len;
        }
        else if (f.number == 3 && f.wire != WIRE_VARINT) {
            return DECLINE;
        }
    }
    if (r == BAD) {
        return DECLINE;
    }
    *key = text_of(key_data, key_len, 1, lifted, legacy, &status);
    if (*key == NULL) {
        return status;
    }
    if (value_data == NULL) {
        *value = Py_NewRef(Py_None);
        return OK;
    }
    status = any_value(value_data, value_len, depth, value);
    if (status != OK) {
        Py_CLEAR(*key);
    }
    return status;
}

int
store_attribute(PyObject *key, PyObject *value, int column, int is_legacy, PyObject *out,
                PyObject **lifted, int *legacy)
{
    int status = OK;
    if (lifted != NULL && column >= 0) {
        Py_XSETREF(lifted[column], value); /* the last one counts, as in a dict */
    }
    else {
        if (PyDict_SetItem(out, key, value) < 0) {
            status = FAIL;
        }
        Py_DECREF(value);
    }
    if (legacy != NULL && is_legacy) {
        *legacy = 1;
    }
    return status;
}

/* Adds one KeyValue to ``out``, or with ``lifted`` given, puts a lifted key's value in its slot
 * instead; ``legacy`` is set when the key is a legacy name. */
static int
add_key_value(const uint8_t *data, Py_ssize_t len, int depth, PyObject *out, PyObject **lifted,
              int *legacy)
{
    PyObject *key = NULL, *value = NULL;
    int column = -1, is_legacy = 0;
    int status = key_value(data, len, depth, &key, &value, &column, &is_legacy);
    if (status != OK) {
        return status;
    }
    status = store_attribute(key, value, column, is_legacy, out, lifted, legacy);
    Py_DECREF(key);
    return status;
}

/* The KeyValue entries of a KeyValueList (field 1) added to the dict ``out``. */
static int
key_values_into(const uint8_t *data, Py_ssize_t len, int depth, PyObject *out)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status;
    while ((r = next_field(&c, &f)) == FIELD) {
        if (f.number != 1) {
            continue;
        }
        if (f.wire != WIRE_LEN) {
            return DECLINE;
        }
        status = add_key_value(f.data, f.len, depth + 1, out, NULL, NULL);
        if (status != OK) {
            return status;
        }
    }
    return r == END ? OK : DECLINE;
}

/* ---- build_span ---- */

/* semconv.normalise over the attributes left in ``attrs`` and the lifted ones in their slots
 * (lifted names are never legacy ones, so only their presence and value matter here). */
static int
normalise(PyObject *attrs, PyObject **lifted, long kind)
{
    PyObject *table = renames[kind == server_kind];
    PyObject *found[64];
    Py_ssize_t n = 0, position = 0;
    PyObject *key, *value;
    while (PyDict_Next(attrs, &position, &key, &value)) {
        PyObject *entry = PyDict_GetItemWithError(table, key);
        if (entry == NULL) {
            if (PyErr_Occurred()) {
                return FAIL;
            }
            continue;
        }
        if (n == 64) {
            return DECLINE;
        }
        /* In rank order, as sorted() puts the (rank, old, new) entries. */
        long rank = PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
        Py_ssize_t i = n++;
        while (i > 0 && PyLong_AsLong(PyTuple_GET_ITEM(found[i - 1], 0)) > rank) {
            found[i] = found[i - 1];
            i--;
        }
        found[i] = entry;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *old = PyTuple_GET_ITEM(found[i], 1), *new = PyTuple_GET_ITEM(found[i], 2);
        value = PyDict_GetItemWithError(attrs, old);
        if (value == NULL) {
            return PyErr_Occurred() ? FAIL : DECLINE;
        }
        Py_INCREF(value);
        if (PyDict_DelItem(attrs, old) < 0) {
            Py_DECREF(value);
            return FAIL;
        }
        PyObject *index = PyDict_GetItemWithError(lifted_index, new);
        if (index != NULL) {
            PyObject **slot = &lifted[PyLong_AsLong(index)];
            if (*slot == NULL) {
                *slot = value;
                continue;
            }
        }
        else if (PyErr_Occurred() || PyDict_SetDefault(attrs, new, value) == NULL) {
            Py_DECREF(value);
            return FAIL;
        }
        Py_DECREF(value);
    }
    PyObject *target = PyDict_GetItemWithError(attrs, http_target);
    if (target == NULL) {
        return PyErr_Occurred() ? FAIL : OK;
    }
    Py_INCREF(target);
    int status = PyDict_DelItem(attrs, http_target) < 0 ? FAIL : OK;
    if (status == OK && PyUnicode_Check(target) && lifted[url_path_column] == NULL) {
        Py_ssize_t query = PyUnicode_FindChar(target, '?', 0, PyUnicode_GET_LENGTH(target), 1);
        if (query == -2) {
            status = FAIL;
        }
        else {
            lifted[url_path_column] =
                query < 0 ? Py_NewRef(target) : PyUnicode_Substring(target, 0, query);
            if (lifted[url_path_column] == NULL) {
                status = FAIL;
            }
        }
    }
    Py_DECREF(target);
    return status;
}

/* A new reference to the HTTP status build_span keeps for ``value``: an int from 100 to 599 as
 * it is, else semconv.status_code's reading of it (an int, or None). */
static PyObject *
http_status(PyObject *value)
{
    PyObject *code;
    int overflow;
    if (PyLong_CheckExact(value)) {
        code = Py_NewRef(value);
    }
    else if (PyUnicode_Check(value)) {
        code = PyLong_FromUnicodeObject(value, 10);
        if (code == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                return NULL;
            }
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    else {
        Py_RETURN_NONE; /* bools, floats, lists, dicts */
    }
    long long n = PyLong_AsLongLongAndOverflow(code, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        Py_DECREF(code);
        return NULL;
    }
    if (!overflow && n >= 100 && n <= 599) {
        return code;
    }
    Py_DECREF(code);
    Py_RETURN_NONE;
}

/* The lifted columns and the attributes' JSON text (semconv.build_span's second half), into
 * ``columns`` (n_lifted + 1 new references). ``lifted`` slots are consumed. */
static int
lifted_columns(PyObject *attrs, PyObject **lifted, long kind, int legacy, PyObject **columns)
{
    int status = legacy ? normalise(attrs, lifted, kind) : OK;
    if (status != OK) {
        return status;
    }
    PyObject *status_value = lifted[status_column];
    if (status_value != NULL && status_value != Py_None) {
        /* http_status keeps an int from 100 to 599 as it is, and settles everything else. */
        PyObject *code = http_status(status_value);
        if (code == NULL) {
            return FAIL;
        }
        Py_SETREF(lifted[status_column], code);
    }
    PyObject *server = lifted[server_column];
    if ((server == NULL || server == Py_None) && kind >= 0 && kind < 32 &&
        (caller_kinds >> kind & 1)) {
        /* For a caller the network peer is the server: the last name for it before the system. */
        PyObject *address = PyDict_GetItemWithError(attrs, peer_address);
        if (address != NULL) {
            PyObject *port = PyDict_GetItemWithError(attrs, peer_port);
            if (port == NULL && PyErr_Occurred()) {
                return FAIL;
            }
            if (port != NULL && port != Py_None) {
                PyObject *left = PyObject_Format(address, empty);
                PyObject *right = left ? PyObject_Format(port, empty) : NULL;
                server = right ? PyUnicode_FromFormat("%U:%U", left, right) : NULL;
                Py_XDECREF(left);
                Py_XDECREF(right);
                if (server == NULL) {
                    return FAIL;
                }
            }
            else {
                server = Py_NewRef(address);
            }
            Py_XSETREF(lifted[server_column], server);
        }
        else if (PyErr_Occurred()) {
            return FAIL;
        }
    }
    for (Py_ssize_t i = 0; i < n_lifted; i++) {
        PyObject *value = lifted[i];
        lifted[i] = NULL;
        if (value == NULL) {
            value = Py_NewRef(Py_None);
        }
        else if (i != status_column && value != Py_None && !PyUnicode_CheckExact(value)) {
            Py_SETREF(value, PyObject_Str(value));
            if (value == NULL) {
                return FAIL;
            }
        }
        columns[i] = value;
    }
    PyObject *text = Py_NewRef(Py_None);
    if (PyDict_GET_SIZE(attrs)) {
        PyObject *json = PyObject_CallOneArg(dumps, attrs);
        if (json != NULL && PyBytes_Check(json)) {
            Py_SETREF(text, decode((const uint8_t *)PyBytes_AS_STRING(json),
                                   PyBytes_GET_SIZE(json)));
        }
        else if (json == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear(); /* an integer beyond 64 bits: semconv.json_text knows what to do */
            Py_SETREF(text, PyObject_CallOneArg(json_text, attrs));
        }
        else {
            if (json != NULL) {
                PyErr_SetString(PyExc_TypeError, "dumps did not return bytes");
            }
            Py_CLEAR(text);
        }
        Py_XDECREF(json);
    }
    columns[n_lifted] = text;
    return text ? OK : FAIL;
}

int
append_span(PyObject **items, PyObject **lifted, PyObject *attrs, long kind, int legacy,
            PyObject *out, PyObject **span)
{
    int status = lifted_columns(attrs, lifted, kind, legacy, items + 10);
    if (status != OK) {
        return status;
    }
    PyObject *record = new_record(span_type, items, span_size);
    memset(items, 0, SPAN_ITEMS * sizeof *items); /* stolen, even when it failed */
    if (record == NULL || PyList_Append(out, record) < 0) {
        Py_XDECREF(record);
        return FAIL;
    }
    Py_DECREF(record);
    *span = record;
    return OK;
}

int
release_span(PyObject **items, PyObject **lifted, PyObject *attrs, int status)
{
    for (int i = 0; i < SPAN_ITEMS; i++) {
        Py_XDECREF(items[i]);
    }
    for (int i = 0; i < MAX_LIFTED; i++) {
        Py_XDECREF(lifted[i]);
    }
    Py_DECREF(attrs);
    return status;
}

PyObject *
append_resource(PyObject *attrs, PyObject *out)
{
    PyObject *record = PyObject_CallOneArg(resource_from, attrs);
    PyObject *service = record ? PyObject_GetAttr(record, service_name) : NULL;
    if (service == NULL || PyList_Append(out, record) < 0) {
        Py_XDECREF(record);
        Py_XDECREF(service);
        return NULL;
    }
    Py_DECREF(record);
    return service;
}

/* ---- messages ---- */

typedef struct {
    Slice trace_id, span_id, parent, name, message;
    uint64_t kind, start, end, code;
    int has_status, links;
} RawSpan;

/* Status{message=2, code=3}. */
static int
read_status(const uint8_t *data, Py_ssize_t len, RawSpan *raw)
{
    Cursor c = {data, data + len};
    Field f;
    int r;
    while ((r = next_field(&c, &f)) == FIELD) {
        if (f.number == 2) {
            if (f.wire != WIRE_LEN || !utf8_valid(f.data, f.len)) {
                return DECLINE;
            }
            raw->message = (Slice){f.data, f.len};
        }
        else if (f.number == 3) {
            if (f.wire != WIRE_VARINT) {
                return DECLINE;
            }
            raw->code = f.value;
        }
    }
    return r == END ? OK : DECLINE;
}

/* An enum field's value: protobuf keeps the low 32 bits of the varint, as an int32. */
static inline long
enum_value(uint64_t varint)
{
    return (long)(int32_t)(uint32_t)varint;
}

static int
is_zero(Slice s)
{
    for (Py_ssize_t i = 0; i < s.len; i++) {
        if (s.data[i]) {
            return 0;
        }
    }
    return 1;
}

PyObject *
new_record(PyTypeObject *type, PyObject **items, Py_ssize_t n)
{
    PyObject *record = type->tp_alloc(type, n);
    if (record == NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_DECREF(items[i]);
        }
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(record, i, items[i]);
    }
    return record;
}

int
append_new(PyObject *out, PyObject *record)
{
    if (record == NULL) {
        return FAIL;
    }
    int status = PyList_Append(out, record) < 0 ? FAIL : OK;
    Py_DECREF(record);
    return status;
}

/* The span's links that otlp_proto keeps (16- and 8-byte ids) as SpanLink records. */
static int
append_links(const uint8_t *data, Py_ssize_t len, PyObject *trace_hex, PyObject *span_hex,
             PyObject *out)
{
    Cursor c = {data, data + len};
    Field f;
    while (next_field(&c, &f) == FIELD) {
        if (f.number != 13) {
            continue;
        }
        Cursor link = {f.data, f.data + f.len};
        Field g;
        Slice ids[2] = {{NULL, 0}, {NULL, 0}};
        while (next_field(&link, &g) == FIELD) {
            if ((g.number == 1 || g.number == 2) && g.wire == WIRE_LEN) {
                ids[g.number - 1] = (Slice){g.data, g.len};
            }
        }
        if (ids[0].len != 16 || ids[1].len != 8) {
            continue;
        }
        PyObject *items[4] = {Py_NewRef(trace_hex), Py_NewRef(span_hex),
                              hex_of(ids[0].data, 16), hex_of(ids[1].data, 8)};
        if (items[2] == NULL || items[3] == NULL) {
            for (int i = 0; i < 4; i++) {
                Py_XDECREF(items[i]);
            }
            return FAIL;
        }
        if (append_new(out, new_record(link_type, items, 4)) != OK) {
            return FAIL;
        }
    }
    return OK;
}

/* One Span (and its SpanLinks) appended to ``out``. */
static int
read_span(const uint8_t *data, Py_ssize_t len, PyObject *service, LastTrace *last,
          PyObject *out)
{
    Cursor c = {data, data + len};
    Field f;
    RawSpan raw = {0};
    PyObject *lifted[MAX_LIFTED] = {NULL};
    PyObject *items[SPAN_ITEMS] = {NULL};
    int r, status = OK, legacy = 0;
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) {
        return FAIL;
    }
    /* Which wire type each field of Span has (-1: none below 17 has that number). */
    static const int wires[17] = {-1,           WIRE_LEN,    WIRE_LEN,    WIRE_LEN,    WIRE_LEN,
                                  WIRE_LEN,     WIRE_VARINT, WIRE_I64,    WIRE_I64,    WIRE_LEN,
                                  WIRE_VARINT,  WIRE_LEN,    WIRE_VARINT, WIRE_LEN,    WIRE_VARINT,
                                  WIRE_LEN,     WIRE_I32};
    while (status == OK && (r = next_field(&c, &f)) == FIELD) {
        if (f.number > 16) {
            continue;
        }
        if (f.wire != wires[f.number]) {
            status = DECLINE;
            break;
        }
        switch (f.number) {
        case 1:
            raw.trace_id = (Slice){f.data, f.len};
            break;
        case 2:
            raw.span_id = (Slice){f.data, f.len};
            break;
        case 3:
            status = utf8_valid(f.data, f.len) ? OK : DECLINE;
            break;
        case 4:
            raw.parent = (Slice){f.data, f.len};
            break;
        case 5:
            status = utf8_valid(f.data, f.len) ? OK : DECLINE;
            raw.name = (Slice){f.data, f.len};
            break;
        case 6:
            raw.kind = f.value;
            break;
        case 7:
            raw.start = f.value;
            break;
        case 8:
            raw.end = f.value;
            break;
        case 9:
            status = add_key_value(f.data, f.len, 0, attrs, lifted, &legacy);
            break;
        case 11:
            status = check(f.data, f.len, &EVENT, 0);
            break;
        case 13:
            status = check(f.data, f.len, &LINK, 0);
            raw.links++;
            break;
        case 15:
            /* A second status is merged into the first. */
            status = raw.has_status ? DECLINE : read_status(f.data, f.len, &raw);
            raw.has_status = 1;
            break;
        }
    }
    if (status == OK && r == BAD) {
        status = DECLINE;
    }
    /* What otlp_proto quarantines is left to it, with its reasons. */
    if (status == OK &&
        (raw.trace_id.len != 16 || is_zero(raw.trace_id) || raw.span_id.len != 8 ||
         is_zero(raw.span_id) || (raw.parent.len && raw.parent.len != 8) || raw.start == 0 ||
         enum_value(raw.kind) < 0 || enum_value(raw.kind) > 5 || enum_value(raw.code) < 0 ||
         enum_value(raw.code) > 2)) {
        status = DECLINE;
    }
    if (status != OK) {
        goto done;
    }
    long kind = enum_value(raw.kind);
    PyObject *trace_hex;
    if (last->text != NULL && memcmp(last->trace_id.data, raw.trace_id.data, 16) == 0) {
        trace_hex = Py_NewRef(last->text);
    }
    else {
        trace_hex = hex_of(raw.trace_id.data, 16);
    }
    int unused;
    items[0] = trace_hex;
    items[1] = hex_of(raw.span_id.data, 8);
    items[2] = raw.parent.len && !is_zero(raw.parent) ? hex_of(raw.parent.data, 8)
                                                       : Py_NewRef(Py_None);
    items[3] = Py_NewRef(service);
    items[4] = text_of(raw.name.data, raw.name.len, 0, &unused, &unused, &status);
    items[5] = PyLong_FromLong(kind);
    items[6] = PyLong_FromUnsignedLongLong(raw.start);
    items[7] = PyLong_FromUnsignedLongLong(raw.end >= raw.start ? raw.end - raw.start : 0);
    items[8] = PyLong_FromLong(enum_value(raw.code));
    items[9] = raw.message.len
                   ? text_of(raw.message.data, raw.message.len, 0, &unused, &unused, &status)
                   : Py_NewRef(Py_None);
    for (int i = 0; i < 10; i++) {
        if (items[i] == NULL) {
            status = status == DECLINE ? DECLINE : FAIL;
            goto done;
        }
    }
    PyObject *span;
    status = append_span(items, lifted, attrs, kind, legacy, out, &span);
    if (status != OK) {
        goto done;
    }
    last->trace_id = raw.trace_id;
    last->text = PyTuple_GET_ITEM(span, 0);
    if (raw.links) {
        status = append_links(data, len, PyTuple_GET_ITEM(span, 0), PyTuple_GET_ITEM(span, 1),
                              out);
    }
done:
    return release_span(items, lifted, attrs, status);
}

/* ScopeSpans{scope=1, spans=2, schema_url=3}. */
static int
read_scope_spans(const uint8_t *data, Py_ssize_t len, PyObject *service, PyObject *out)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status = OK;
    LastTrace last = {{NULL, 0}, NULL};
    while (status == OK && (r = next_field(&c, &f)) == FIELD) {
        if (f.number > 3) {
            continue;
        }
        if (f.wire != WIRE_LEN) {
            return DECLINE;
        }
        if (f.number == 1) {
            status = check(f.data, f.len, &SCOPE, 0); /* a second scope merges: no record sees it */
        }
        else if (f.number == 2) {
            status = read_span(f.data, f.len, service, &last, out);
        }
        else if (!utf8_valid(f.data, f.len)) {
            status = DECLINE;
        }
    }
    return status != OK ? status : r == END ? OK : DECLINE;
}

/* Resource{attributes=1, dropped_attributes_count=2, entity_refs=3}: its attributes into the
 * dict ``attrs``. */
static int
read_resource(const uint8_t *data, Py_ssize_t len, PyObject *attrs)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status = OK;
    while (status == OK && (r = next_field(&c, &f)) == FIELD) {
        if (f.number == 2) {
            status = f.wire == WIRE_VARINT ? OK : DECLINE;
        }
        else if (f.number == 1 || f.number == 3) {
            if (f.wire != WIRE_LEN) {
                return DECLINE;
            }
            status = f.number == 1 ? add_key_value(f.data, f.len, 0, attrs, NULL, NULL)
                                   : check(f.data, f.len, &ENTITY_REF, 0);
        }
    }
    return status != OK ? status : r == END ? OK : DECLINE;
}

/* ResourceSpans{resource=1, scope_spans=2, schema_url=3}: the Resource record first (wherever
 * the resource is in the message), then its spans. */
static int
read_resource_spans(const uint8_t *data, Py_ssize_t len, PyObject *out)
{
    Cursor c = {data, data + len};
    Field f;
    int r, status = OK;
    Slice resource = {NULL, 0};
    while ((r = next_field(&c, &f)) == FIELD) {
        if (f.number > 3) {
            continue;
        }
        if (f.wire != WIRE_LEN || (f.number == 1 && resource.data != NULL) ||
            (f.number == 3 && !utf8_valid(f.data, f.len))) {
            return DECLINE; /* a second resource is merged into the first */
        }
        if (f.number == 1) {
            resource = (Slice){f.data, f.len};
        }
    }
    if (r == BAD) {
        return DECLINE;
    }
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) {
        return FAIL;
    }
    if (resource.data != NULL) {
        status = read_resource(resource.data, resource.len, attrs);
    }
    PyObject *service = status == OK ? append_resource(attrs, out) : NULL;
    Py_DECREF(attrs);
    if (status != OK) {
        return status;
    }
    if (service == NULL) {
        return FAIL;
    }
    c = (Cursor){data, data + len};
    while (status == OK && next_field(&c, &f) == FIELD) {
        if (f.number == 2) {
            status = read_scope_spans(f.data, f.len, service, out);
        }
    }
    Py_DECREF(service);
    return status;
}

/* ---- the module ---- */

PyDoc_STRVAR(records_doc,
"records(data) -> list | None\n\n"
"The Resource, Span and SpanLink records of one ExportTraceServiceRequest (or TracesData) in\n"
"``data`` (any buffer), as otlp_proto.records_of_message gives them; None when the message\n"
"needs the Python path (a span it quarantines, wire data protobuf rejects or merges, no\n"
"resource_spans, ...).");

static PyObject *
records(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    Field f;
    int r, status = OK, count = 0;
    if (span_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "collectors._otlp_native is not configured");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Cursor c = {view.buf, (const uint8_t *)view.buf + view.len};
    while (status == OK && (r = next_field(&c, &f)) == FIELD) {
        if (f.number != 1) {
            continue;
        }
        status = f.wire == WIRE_LEN ? read_resource_spans(f.data, f.len, out) : DECLINE;
        count++;
    }
    PyBuffer_Release(&view);
    if (status == OK && (r == BAD || count == 0)) {
        status = DECLINE;
    }
    if (status == OK) {
        return out;
    }
    Py_DECREF(out);
    if (status == DECLINE) {
        Py_RETURN_NONE;
    }
    return NULL;
}

PyDoc_STRVAR(configure_doc,
"configure(*, span, link, resource_from, dumps, json_text, lifted, legacy_keys, renames,\n"
"          server_kind, caller_kinds)\n\n"
"Hands in what records() builds with: the Span and SpanLink types, semconv.resource_from,\n"
"orjson.dumps, semconv.json_text, the lifted attribute names in Span column order, the legacy\n"
"names, the (client side, server side) rename tables, and the span kinds normalise and the\n"
"network-peer fallback look at. Called once, when otlp_proto is imported.");

static int
column_of(PyObject *lifted, const char *name, int *column)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(lifted); i++) {
        PyObject *item = PyTuple_GET_ITEM(lifted, i);
        if (PyUnicode_Check(item) && PyUnicode_CompareWithASCIIString(item, name) == 0) {
            *column = (int)i;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "lifted has no %s", name);
    return -1;
}

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"span",        "link",         "resource_from", "dumps",
                               "json_text",   "lifted",       "legacy_keys",   "renames",
                               "server_kind", "caller_kinds", NULL};
    PyTypeObject *span, *link;
    PyObject *resource, *dump, *text, *lifted, *legacy, *tables, *callers, *index = NULL;
    long server;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!OOOO!O!O!lO!", keywords, &PyType_Type,
                                     &span, &PyType_Type, &link, &resource, &dump, &text,
                                     &PyTuple_Type, &lifted, &PyFrozenSet_Type, &legacy,
                                     &PyTuple_Type, &tables, &server, &PyTuple_Type, &callers)) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(lifted);
    PyObject *fields = PyObject_GetAttrString((PyObject *)span, "_fields");
    Py_ssize_t size = fields && PyTuple_Check(fields) ? PyTuple_GET_SIZE(fields) : -1;
    Py_XDECREF(fields);
    if (size < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "span must be a named tuple type");
        return NULL;
    }
    if (!PyType_IsSubtype(span, &PyTuple_Type) || !PyType_IsSubtype(link, &PyTuple_Type) ||
        n > MAX_LIFTED || size != 10 + n + 1 || PyTuple_GET_SIZE(tables) != 2 ||
        !PyDict_Check(PyTuple_GET_ITEM(tables, 0)) || !PyDict_Check(PyTuple_GET_ITEM(tables, 1))) {
        PyErr_SetString(PyExc_ValueError,
                        "span and link must be tuple types, span with 10 + len(lifted) + 1 "
                        "fields, and renames two dicts");
        return NULL;
    }
    int status, server_at, url_at;
    if (column_of(lifted, "http.response.status_code", &status) < 0 ||
        column_of(lifted, "server.address", &server_at) < 0 ||
        column_of(lifted, "url.path", &url_at) < 0) {
        return NULL;
    }
    uint32_t kinds = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(callers); i++) {
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(callers, i));
        if (kind == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (kind < 0 || kind > 31) {
            PyErr_SetString(PyExc_ValueError, "caller_kinds must be span kinds");
            return NULL;
        }
        kinds |= 1u << kind;
    }
    index = PyDict_New();
    if (index == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *column = PyLong_FromSsize_t(i);
        if (column == NULL || PyDict_SetItem(index, PyTuple_GET_ITEM(lifted, i), column) < 0) {
            Py_XDECREF(column);
            Py_DECREF(index);
            return NULL;
        }
        Py_DECREF(column);
    }
    clear_caches(); /* the keys' kinds may have changed */
    Py_XSETREF(span_type, (PyTypeObject *)Py_NewRef(span));
    Py_XSETREF(link_type, (PyTypeObject *)Py_NewRef(link));
    Py_XSETREF(resource_from, Py_NewRef(resource));
    Py_XSETREF(dumps, Py_NewRef(dump));
    Py_XSETREF(json_text, Py_NewRef(text));
    Py_XSETREF(legacy_keys, Py_NewRef(legacy));
    Py_XSETREF(renames[0], Py_NewRef(PyTuple_GET_ITEM(tables, 0)));
    Py_XSETREF(renames[1], Py_NewRef(PyTuple_GET_ITEM(tables, 1)));
    Py_XSETREF(lifted_index, index);
    n_lifted = n;
    span_size = size;
    status_column = status;
    server_column = server_at;
    url_path_column = url_at;
    server_kind = server;
    caller_kinds = kinds;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"records", records, METH_O, records_doc},
    {"json_records", json_records, METH_O, json_records_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     configure_doc},
    {"nginx_block", (PyCFunction)(void (*)(void))nginx_block, METH_FASTCALL, nginx_block_doc},
    {"nginx_configure", nginx_configure, METH_O, nginx_configure_doc},
    {"json_index", (PyCFunction)(void (*)(void))json_index, METH_FASTCALL, json_index_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "collectors._otlp_native",
    "OTLP/protobuf and OTLP/JSON trace requests read straight into Clew's records.",
    -1,
    methods,
    NULL, /* no slots: single-phase initialisation */
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__otlp_native(void)
{
    /* The attribute names build_span gives a meaning of their own, beyond the lifted ones. */
    http_target = PyUnicode_InternFromString("http.target");
    peer_address = PyUnicode_InternFromString("network.peer.address");
    peer_port = PyUnicode_InternFromString("network.peer.port");
    empty = PyUnicode_InternFromString("");
    service_name = PyUnicode_InternFromString("service");
    if (!http_target || !peer_address || !peer_port || !empty || !service_name) {
        return NULL;
    }
    json_init();
    return PyModule_Create(&module_def);
}
