/* The records of an OTLP/JSON ExportTraceServiceRequest, read straight from its text.
 *
 * The compiled twin of collectors/otlp_json.py's typed_records: the same Resource, Span and
 * SpanLink records, built by the protobuf reader's build_span (_otlp_native.c), or None whenever
 * it cannot vouch for that, and the Python path then reads the request. It declines text that is
 * not JSON exactly as msgspec and orjson read it (control characters or lone surrogates in a
 * string, invalid UTF-8, a trailing comma, a leading zero, trailing characters), a duplicate key,
 * anything the typed structs reject (an unknown field, a null where none is allowed, a value of
 * another type), and whatever typed_records hands to the dict path (a span it would quarantine,
 * an AnyValue with two fields, an integer beyond 64 bits). Python's int() of an intValue or a
 * time given as a string is reproduced for plain decimal digits only: any other string is
 * declined rather than emulated.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_otlp_native.h"

/* Besides OK, DECLINE and FAIL: another member or item follows, or the object or array ended. */
#define ITEM 2
#define DONE 3

/* Deeper arrayValue/kvlistValue nesting is left to the Python path (whose limit is 100). */
#define MAX_DEPTH 24
/* skip_value's limit: far beyond any OTLP shape that is read, well within orjson's 1024. */
#define MAX_SKIP_DEPTH 256

typedef struct {
    const uint8_t *text, *p, *end;
    uint8_t *arena;  /* strings with escapes, unescaped; never longer than the text in all */
    Py_ssize_t used; /* ... so the arena, as long as the text, never moves */
    Slice *links;    /* the current span's links' ids, a trace id and a span id each */
    Py_ssize_t n_links, links_size;
} Json;

/* What read_number finds: the token, and for an integer its value when it has one in 64 bits. */
typedef struct {
    const uint8_t *text;
    Py_ssize_t len;
    int integer; /* no fraction, no exponent */
    int fits;    /* an integer in [-2**63, 2**64) */
    __int128 value;
} Number;

/* ---- the JSON text ---- */

/* A string's bytes: 1 taken as they are, 2 the same but not ASCII (UTF-8 to check), 0 the end
 * quote, an escape or a control character. */
static uint8_t string_class[256];

static inline int
peek(Json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) {
        j->p++;
    }
    return j->p < j->end ? *j->p : -1;
}

static inline int
hex_digit(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Four hex digits after \u, or -1. */
static int
code_unit(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 4) {
        return -1;
    }
    int unit = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(p[i]);
        if (digit < 0) {
            return -1;
        }
        unit = unit << 4 | digit;
    }
    return unit;
}

/* The rest of a string from its first escape (at ``q``), unescaped into the arena. */
static int
unescape(Json *j, const uint8_t *start, const uint8_t *q, int high, Slice *s)
{
    if (j->arena == NULL) {
        j->arena = PyMem_Malloc(j->end - j->text + 1);
        if (j->arena == NULL) {
            PyErr_NoMemory();
            return FAIL;
        }
    }
    uint8_t *out = j->arena + j->used, *o = out;
    memcpy(o, start, q - start);
    o += q - start;
    while (q < j->end) {
        uint8_t c = *q;
        if (string_class[c]) {
            high |= string_class[c] == 2;
            *o++ = c;
            q++;
            continue;
        }
        if (c == '"') {
            if (high && !utf8_valid(out, o - out)) {
                return DECLINE;
            }
            *s = (Slice){out, o - out};
            j->used += o - out;
            j->p = q + 1;
            return OK;
        }
        if (c != '\\' || j->end - q < 2) {
            return DECLINE; /* a control character, or the text ends */
        }
        static const char plain[] = "\"\\/bfnrt", escaped[] = "\"\\/\b\f\n\r\t";
        const char *at = q[1] ? strchr(plain, q[1]) : NULL;
        if (at != NULL) {
            *o++ = (uint8_t)escaped[at - plain];
            q += 2;
            continue;
        }
        if (q[1] != 'u') {
            return DECLINE;
        }
        int unit = code_unit(q + 2, j->end);
        uint32_t code = (uint32_t)unit;
        q += 6;
        if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) {
            return DECLINE; /* a low surrogate alone */
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            int low = j->end - q >= 2 && q[0] == '\\' && q[1] == 'u' ? code_unit(q + 2, j->end)
                                                                    : -1;
            if (low < 0xDC00 || low > 0xDFFF) {
                return DECLINE; /* a high surrogate alone */
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (uint32_t)(low - 0xDC00);
            q += 6;
        }
        if (code < 0x80) {
            *o++ = (uint8_t)code;
        }
        else if (code < 0x800) {
            *o++ = (uint8_t)(0xC0 | code >> 6);
            *o++ = (uint8_t)(0x80 | (code & 0x3F));
        }
        else if (code < 0x10000) {
            *o++ = (uint8_t)(0xE0 | code >> 12);
            *o++ = (uint8_t)(0x80 | (code >> 6 & 0x3F));
            *o++ = (uint8_t)(0x80 | (code & 0x3F));
        }
        else {
            *o++ = (uint8_t)(0xF0 | code >> 18);
            *o++ = (uint8_t)(0x80 | (code >> 12 & 0x3F));
            *o++ = (uint8_t)(0x80 | (code >> 6 & 0x3F));
            *o++ = (uint8_t)(0x80 | (code & 0x3F));
        }
    }
    return DECLINE;
}

/* Eight bytes of the text as one word, the first in its lowest byte whatever the machine. */
static inline uint64_t
word_at(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The high bit of each byte of ``w`` that ends a string's plain run: a quote, a backslash or a
 * control character. Only the lowest set bit is exact (a borrow runs upward from a byte that
 * matched, and may mark the bytes above it), which is all that read_string asks of it. */
static inline uint64_t
stops_in(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) |
            ((backslash - ones) & ~backslash)) &
           highs;
}

/* A string (the next token) as its UTF-8 bytes: a slice of the text, or of the arena when it
 * has escapes. Eight bytes are looked at a time: most strings are short keys and values, and
 * a byte at a time the scan was the reader's largest cost. */
static int
read_string(Json *j, Slice *s)
{
    if (peek(j) != '"') {
        return DECLINE;
    }
    const uint8_t *start = j->p + 1, *q = start;
    uint64_t high = 0; /* the bytes passed over, OR-ed: their high bits tell of UTF-8 to check */
    while (j->end - q >= 8) {
        uint64_t word = word_at(q), stops = stops_in(word);
        if (stops) {
            int at = __builtin_ctzll(stops) >> 3;
            high |= word & ((1ULL << 8 * at) - 1);
            q += at;
            goto stopped;
        }
        high |= word;
        q += 8;
    }
    while (q < j->end && string_class[*q]) {
        high |= *q++;
    }
stopped:
    high &= 0x8080808080808080ULL;
    if (q < j->end && *q == '"') {
        if (high && !utf8_valid(start, q - start)) {
            return DECLINE;
        }
        *s = (Slice){start, q - start};
        j->p = q + 1;
        return OK;
    }
    return unescape(j, start, q, high != 0, s);
}

/* A number (the next token), to JSON's grammar. */
static int
read_number(Json *j, Number *n)
{
    peek(j);
    const uint8_t *p = j->p, *end = j->end;
    unsigned __int128 magnitude = 0;
    int digits = 0, negative = p < end && *p == '-';
    p += negative;
    if (p < end && *p == '0') {
        p++;
        digits = 1;
    }
    else {
        for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 21) {
                magnitude = magnitude * 10 + (unsigned)(*p - '0');
            }
        }
    }
    if (digits == 0) {
        return DECLINE;
    }
    n->integer = 1;
    if (p < end && *p == '.') {
        const uint8_t *first = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == first) {
            return DECLINE;
        }
        n->integer = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p += p + 1 < end && (p[1] == '+' || p[1] == '-') ? 2 : 1;
        const uint8_t *first = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == first) {
            return DECLINE;
        }
        n->integer = 0;
    }
    n->text = j->p;
    n->len = p - j->p;
    n->fits = n->integer && digits <= 20 &&
              (negative ? magnitude <= (unsigned __int128)1 << 63
                        : magnitude < (unsigned __int128)1 << 64);
    n->value = negative ? -(__int128)magnitude : (__int128)magnitude;
    j->p = p;
    return OK;
}

static int
read_literal(Json *j, const char *word, Py_ssize_t len)
{
    if (peek(j) < 0 || j->end - j->p < len || memcmp(j->p, word, len) != 0) {
        return DECLINE;
    }
    j->p += len;
    return OK;
}

/* Consumes a null when one comes next. */
static inline int
is_null(Json *j)
{
    return peek(j) == 'n' && read_literal(j, "null", 4) == OK;
}

static inline int
open_with(Json *j, int bracket)
{
    if (peek(j) != bracket) {
        return DECLINE;
    }
    j->p++;
    return OK;
}

/* The next member of an object: ITEM with its key in *key (positioned at its value), DONE after
 * the closing brace. ``first`` is 1 until the first member is read. */
static int
next_member(Json *j, int *first, Slice *key)
{
    int c = peek(j);
    if (c == '}') {
        j->p++; /* a comma before it was declined as a missing key */
        return DONE;
    }
    if (!*first) {
        if (c != ',') {
            return DECLINE;
        }
        j->p++;
    }
    *first = 0;
    int status = read_string(j, key);
    if (status != OK) {
        return status;
    }
    if (peek(j) != ':') {
        return DECLINE;
    }
    j->p++;
    return ITEM;
}

/* The next item of an array: ITEM (positioned at it), DONE after the closing bracket. */
static int
next_item(Json *j, int *first)
{
    int c = peek(j);
    if (c == ']') {
        j->p++; /* after an item: a comma before it was declined by the call that read it */
        return DONE;
    }
    if (!*first) {
        if (c != ',') {
            return DECLINE;
        }
        j->p++;
        if (peek(j) == ']') {
            return DECLINE; /* a trailing comma */
        }
    }
    *first = 0;
    return ITEM;
}

/* Any JSON value, checked and passed over (strings are unescaped, then forgotten). */
static int
skip_value(Json *j, int depth)
{
    Slice s;
    Number n;
    int first = 1, r, status;
    if (depth > MAX_SKIP_DEPTH) {
        return DECLINE;
    }
    switch (peek(j)) {
    case '{':
        j->p++;
        while ((r = next_member(j, &first, &s)) == ITEM) {
            if ((status = skip_value(j, depth + 1)) != OK) {
                return status;
            }
        }
        return r == DONE ? OK : r;
    case '[':
        j->p++;
        while ((r = next_item(j, &first)) == ITEM) {
            if ((status = skip_value(j, depth + 1)) != OK) {
                return status;
            }
        }
        return r == DONE ? OK : r;
    case '"': {
        Py_ssize_t used = j->used;
        status = read_string(j, &s);
        j->used = used;
        return status;
    }
    case 't':
        return read_literal(j, "true", 4);
    case 'f':
        return read_literal(j, "false", 5);
    case 'n':
        return read_literal(j, "null", 4);
    default:
        return read_number(j, &n);
    }
}

/* ---- the structs' fields ---- */

/* A struct's field names (or an enum's), with their lengths. */
typedef struct {
    const char *text;
    Py_ssize_t len;
} Name;

#define NAME(text) {text, sizeof text - 1}

/* The index of a field name in ``names``, looked for from ``from`` on (fields mostly come in
 * their order), or -1 (an unknown field: msgspec rejects it). */
static int
field_of(Slice key, const Name *names, int count, int from)
{
    for (int n = 0, i = from; n < count; n++, i = i + 1 == count ? 0 : i + 1) {
        if (names[i].len == key.len && memcmp(names[i].text, key.data, key.len) == 0) {
            return i;
        }
    }
    return -1;
}

/* Whether the text at ``p`` is the string ``name``, quotes and all. A field's name has no
 * quote, backslash or control character in it, so this is the string read_string would read
 * there, found without scanning for its end or looking it up. */
static inline __attribute__((always_inline)) int
is_quoted(const uint8_t *p, const uint8_t *end, Name name)
{
    const uint8_t *a = p + 1;
    const char *b = name.text;
    Py_ssize_t n = name.len;
    if (end - p < n + 2 || p[n + 1] != '"') {
        return 0;
    }
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
            return 0;
        }
    }
    for (; n > 0; n--) {
        if (*a++ != (uint8_t)*b++) {
            return 0;
        }
    }
    return 1;
}

/* The next member that is a field of the struct, marked in *seen: a second one is declined
 * (msgspec keeps the last, the dict path the first). Fields mostly come in their order, written
 * plainly: the one expected is tried first, straight against the text. Inlined into each
 * struct's reader, where its table and count are constants: it runs for every member. */
static inline __attribute__((always_inline)) int
next_field(Json *j, int *first, const Name *names, int count, uint32_t *seen, int *field)
{
    int from = *first ? 0 : *field + 1 == count ? 0 : *field + 1;
    int c = peek(j);
    if (c == '}') {
        j->p++; /* a comma before it was declined as a missing key */
        return DONE;
    }
    if (!*first) {
        if (c != ',') {
            return DECLINE;
        }
        j->p++;
        c = peek(j);
    }
    *first = 0;
    *field = -1;
    if (c == '"') {
        for (int n = 0, i = from; n < count; n++, i = i + 1 == count ? 0 : i + 1) {
            if (is_quoted(j->p, j->end, names[i])) {
                *field = i;
                j->p += names[i].len + 2;
                break;
            }
        }
    }
    if (*field < 0) { /* an unknown field, or a known one written with escapes */
        Slice key;
        int status = read_string(j, &key);
        if (status != OK) {
            return status;
        }
        *field = field_of(key, names, count, from);
    }
    if (peek(j) != ':') {
        return DECLINE;
    }
    j->p++;
    if (*field < 0 || *seen >> *field & 1) {
        return DECLINE;
    }
    *seen |= 1u << *field;
    return ITEM;
}

/* A field typed ``str | None`` or ``int | None`` whose value no record holds. */
static int
unused_text(Json *j)
{
    Slice s;
    return is_null(j) ? OK : read_string(j, &s);
}

static int
unused_int(Json *j)
{
    Number n;
    if (is_null(j)) {
        return OK;
    }
    int status = read_number(j, &n);
    /* Any integer is msgspec's, but one beyond 64 bits is left to it. */
    return status != OK ? status : n.fits ? OK : DECLINE;
}

/* An integer written as plain decimal digits (``-?[0-9]+``) in [-2**63, 2**64): int() gives the
 * same; any other text is left to the Python path. */
static int
decimal_of(Slice s, __int128 *value)
{
    const uint8_t *p = s.data, *end = s.data + s.len;
    int negative = p < end && *p == '-';
    p += negative;
    if (p == end) {
        return DECLINE;
    }
    while (end - p > 1 && *p == '0') {
        p++;
    }
    if (end - p > 20) {
        return DECLINE;
    }
    /* In 64 bits, overflow checked: a 128-bit multiplication for each digit cost more. */
    uint64_t magnitude = 0;
    for (; p < end; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (digit > 9) {
            return DECLINE;
        }
        if (__builtin_mul_overflow(magnitude, 10, &magnitude) ||
            __builtin_add_overflow(magnitude, digit, &magnitude)) {
            return DECLINE; /* 2**64 or more */
        }
    }
    if (negative && magnitude > (uint64_t)1 << 63) {
        return DECLINE;
    }
    *value = negative ? -(__int128)magnitude : (__int128)magnitude;
    return OK;
}

static PyObject *
int_of(__int128 value)
{
    return value >= 0 ? PyLong_FromUnsignedLongLong((unsigned long long)value)
                      : PyLong_FromLongLong((long long)value);
}

/* A time (``int | str | None``) in 64 bits: *present is 0 for a null. */
static int
read_time(Json *j, int *present, __int128 *value)
{
    Slice s;
    Number n;
    *present = 0;
    if (is_null(j)) {
        return OK;
    }
    if (peek(j) == '"') {
        int status = read_string(j, &s);
        if (status != OK) {
            return status;
        }
        status = decimal_of(s, value);
        *present = status == OK;
        return status;
    }
    int status = read_number(j, &n);
    if (status != OK) {
        return status;
    }
    if (!n.fits) {
        return DECLINE; /* a float (msgspec rejects it), or beyond 64 bits (orjson's float) */
    }
    *present = 1;
    *value = n.value;
    return OK;
}

/* An enum (``int | str``): its number, or its name among ``names``; -1 for anything else. */
static int
read_enum(Json *j, const Name *names, int count, long *value)
{
    if (peek(j) == '"') {
        Slice s;
        int status = read_string(j, &s);
        if (status != OK) {
            return status;
        }
        *value = field_of(s, names, count, 0);
        return OK;
    }
    Number n;
    int status = read_number(j, &n);
    if (status != OK) {
        return status;
    }
    if (!n.integer) {
        return DECLINE;
    }
    *value = n.fits && n.value >= 0 && n.value < count ? (long)n.value : -1;
    return OK;
}

/* ---- attributes ---- */

static int key_values(Json *j, int depth, PyObject *out, PyObject **lifted, int *legacy);

static const Name ANY_VALUE_FIELDS[] = {
    NAME("stringValue"), NAME("intValue"), NAME("boolValue"), NAME("doubleValue"), NAME("arrayValue"), NAME("kvlistValue"),
    NAME("bytesValue"),
};

/* intValue: a number, or a string. */
static int
int_value(Json *j, PyObject **out)
{
    __int128 value;
    if (peek(j) == '"') {
        Slice s;
        int status = read_string(j, &s);
        if (status != OK || out == NULL) {
            return status;
        }
        if (decimal_of(s, &value) != OK) {
            return DECLINE; /* int() may read it, or not: the Python path knows */
        }
    }
    else {
        Number n;
        int status = read_number(j, &n);
        if (status != OK) {
            return status;
        }
        if (!n.integer || (out != NULL && !n.fits)) {
            return DECLINE; /* beyond 64 bits orjson reads a float, and typed_records declines */
        }
        if (out == NULL) {
            return n.fits ? OK : DECLINE;
        }
        value = n.value;
    }
    *out = int_of(value);
    return *out ? OK : FAIL;
}

/* doubleValue: a number, as float() makes of it. */
static int
double_value(Json *j, PyObject **out)
{
    Number n;
    char small[64];
    int status = read_number(j, &n);
    if (status != OK) {
        return status;
    }
    if (n.integer && !n.fits) {
        return DECLINE;
    }
    char *text = n.len < (Py_ssize_t)sizeof small ? small : PyMem_Malloc(n.len + 1);
    if (text == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    memcpy(text, n.text, n.len);
    text[n.len] = '\0';
    char *stop;
    double d = PyOS_string_to_double(text, &stop, NULL);
    int whole = stop == text + n.len;
    if (text != small) {
        PyMem_Free(text);
    }
    if (d == -1.0 && PyErr_Occurred()) {
        return FAIL;
    }
    if (!whole || isinf(d)) {
        return DECLINE; /* msgspec: number out of range */
    }
    if (out == NULL) {
        return OK;
    }
    if (n.integer && d == 0.0) {
        d = 0.0; /* float(int("-0")) is 0.0, not -0.0 */
    }
    *out = PyFloat_FromDouble(d);
    return *out ? OK : FAIL;
}

/* An AnyValue: in *out (a new reference) what typed_records makes of it, or with ``out`` NULL,
 * only checked as msgspec checks it (several fields are then allowed: nothing reads them). */
static int
any_value(Json *j, int depth, PyObject **out)
{
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    PyObject *value = NULL, **into = out ? &value : NULL;
    Slice s;
    if (depth > MAX_DEPTH || open_with(j, '{') != OK) {
        return DECLINE;
    }
    while ((r = next_field(j, &first, ANY_VALUE_FIELDS, 7, &seen, &field)) == ITEM) {
        if (value != NULL) {
            status = DECLINE; /* two fields: the dict path takes the first in the file */
            break;
        }
        switch (field) {
        case 0: /* stringValue */
        case 6: /* bytesValue, kept as the text has it */
            status = read_string(j, &s);
            if (status == OK && into) {
                int unused;
                value = text_of(s.data, s.len, 0, &unused, &unused, &status);
            }
            break;
        case 1:
            status = int_value(j, into);
            break;
        case 2:
            if (peek(j) == 't') {
                status = read_literal(j, "true", 4);
                value = status == OK && into ? Py_NewRef(Py_True) : NULL;
            }
            else {
                status = read_literal(j, "false", 5);
                value = status == OK && into ? Py_NewRef(Py_False) : NULL;
            }
            break;
        case 3:
            status = double_value(j, into);
            break;
        case 4: { /* arrayValue: {values: list[AnyValue] | None} */
            uint32_t inner_seen = 0;
            int inner_first = 1, inner = DONE, more = DONE;
            static const Name values[] = {NAME("values")};
            if (into && (value = PyList_New(0)) == NULL) {
                status = FAIL;
                break;
            }
            if ((status = open_with(j, '{')) != OK) {
                break;
            }
            while (status == OK && (inner = next_field(j, &inner_first, values, 1, &inner_seen,
                                                       &field)) == ITEM) {
                int item_first = 1;
                if (is_null(j)) {
                    continue;
                }
                if ((status = open_with(j, '[')) != OK) {
                    break;
                }
                while (status == OK && (more = next_item(j, &item_first)) == ITEM) {
                    PyObject *element = NULL;
                    status = any_value(j, depth + 1, into ? &element : NULL);
                    if (status == OK && element && PyList_Append(value, element) < 0) {
                        status = FAIL;
                    }
                    Py_XDECREF(element);
                }
                if (status == OK && more != DONE) {
                    status = more;
                }
            }
            if (status == OK && inner != DONE) {
                status = inner;
            }
            break;
        }
        case 5: { /* kvlistValue: {values: list[KeyValue] | None} */
            uint32_t inner_seen = 0;
            int inner_first = 1, inner = DONE;
            static const Name values[] = {NAME("values")};
            if (into && (value = PyDict_New()) == NULL) {
                status = FAIL;
                break;
            }
            if ((status = open_with(j, '{')) != OK) {
                break;
            }
            while (status == OK && (inner = next_field(j, &inner_first, values, 1, &inner_seen,
                                                       &field)) == ITEM) {
                status = key_values(j, depth + 1, value, NULL, NULL);
            }
            if (status == OK && inner != DONE) {
                status = inner;
            }
            break;
        }
        }
        if (status != OK) {
            break;
        }
        if (into && value == NULL) {
            status = FAIL;
            break;
        }
    }
    if (status == OK && r != DONE) {
        status = r;
    }
    if (status != OK) {
        Py_XDECREF(value);
        return status;
    }
    if (out) {
        *out = value ? value : Py_NewRef(Py_None);
    }
    return OK;
}

static const Name KEY_VALUE_FIELDS[] = {NAME("key"), NAME("value")};

/* A KeyValue into ``out`` (a dict, or NULL to check it only); see store_attribute. */
static int
key_value(Json *j, int depth, PyObject *out, PyObject **lifted, int *legacy)
{
    uint32_t seen = 0;
    int first = 1, field, r, status = OK, column = -1, is_legacy = 0;
    PyObject *key = NULL, *value = NULL;
    Slice s;
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, KEY_VALUE_FIELDS, 2, &seen, &field)) == ITEM) {
        if (field == 0) {
            status = read_string(j, &s);
            if (status == OK && out) {
                key = text_of(s.data, s.len, 1, &column, &is_legacy, &status);
            }
        }
        else if (!is_null(j)) {
            status = any_value(j, depth, out ? &value : NULL);
        }
    }
    if (status == OK && (r != DONE || !(seen & 1))) {
        status = r != DONE ? r : DECLINE; /* no key: msgspec rejects the KeyValue */
    }
    if (status == OK && out) {
        status = store_attribute(key, value ? value : Py_NewRef(Py_None), column, is_legacy, out,
                                 lifted, legacy);
        value = NULL;
    }
    Py_XDECREF(key);
    Py_XDECREF(value);
    return status;
}

/* ``list[KeyValue] | None`` into ``out`` (or with ``out`` NULL, checked only). */
static int
key_values(Json *j, int depth, PyObject *out, PyObject **lifted, int *legacy)
{
    int first = 1, r, status;
    if (is_null(j)) {
        return OK;
    }
    if (open_with(j, '[') != OK) {
        return DECLINE;
    }
    while ((r = next_item(j, &first)) == ITEM) {
        if ((status = key_value(j, depth, out, lifted, legacy)) != OK) {
            return status;
        }
    }
    return r == DONE ? OK : r;
}

/* ---- the parts no record is made of ---- */

/* ``list[<struct>] | None``, each item read by ``read``. */
static int
each(Json *j, int (*read)(Json *))
{
    int first = 1, r, status;
    if (is_null(j)) {
        return OK;
    }
    if (open_with(j, '[') != OK) {
        return DECLINE;
    }
    while ((r = next_item(j, &first)) == ITEM) {
        if ((status = read(j)) != OK) {
            return status;
        }
    }
    return r == DONE ? OK : r;
}

/* Event, Scope, and a link's fields but its ids: checked only. */
static int
unused_struct(Json *j, const Name *names, int count, const uint8_t *kinds)
{
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, count, &seen, &field)) == ITEM) {
        switch (kinds[field]) {
        case 's':
            status = unused_text(j);
            break;
        case 'i':
            status = unused_int(j);
            break;
        case 't': {
            int present;
            __int128 value;
            Slice s;
            /* timeUnixNano: int | str | None, and any string will do. */
            status = peek(j) == '"' ? read_string(j, &s) : read_time(j, &present, &value);
            break;
        }
        case 'a':
            status = key_values(j, 0, NULL, NULL, NULL);
            break;
        }
    }
    return status != OK ? status : r == DONE ? OK : r;
}

static int
read_event(Json *j)
{
    static const Name names[] = {NAME("timeUnixNano"), NAME("name"), NAME("attributes"),
                                        NAME("droppedAttributesCount")};
    return unused_struct(j, names, 4, (const uint8_t *)"tsai");
}

static int
read_scope(Json *j)
{
    static const Name names[] = {NAME("name"), NAME("version"), NAME("attributes"),
                                        NAME("droppedAttributesCount")};
    return is_null(j) ? OK : unused_struct(j, names, 4, (const uint8_t *)"ssai");
}

/* A link: its ids (str | None, NULL data for a null) kept for the span's SpanLinks. */
static int
read_link(Json *j)
{
    static const Name names[] = {NAME("traceId"),    NAME("spanId"), NAME("traceState"), NAME("attributes"),
                                        NAME("droppedAttributesCount"), NAME("flags")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    Slice ids[2] = {{NULL, 0}, {NULL, 0}};
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, 6, &seen, &field)) == ITEM) {
        if (field < 2) {
            status = is_null(j) ? OK : read_string(j, &ids[field]);
        }
        else {
            status = field == 2 ? unused_text(j)
                     : field == 3 ? key_values(j, 0, NULL, NULL, NULL)
                                  : unused_int(j);
        }
    }
    if (status != OK || r != DONE) {
        return status != OK ? status : r;
    }
    if (j->n_links + 2 > j->links_size) {
        Py_ssize_t size = j->links_size ? 2 * j->links_size : 16;
        Slice *links = PyMem_Realloc(j->links, size * sizeof *links);
        if (links == NULL) {
            PyErr_NoMemory();
            return FAIL;
        }
        j->links = links;
        j->links_size = size;
    }
    j->links[j->n_links++] = ids[0];
    j->links[j->n_links++] = ids[1];
    return OK;
}

/* ---- spans ---- */

/* Each byte's hex digit in lower case, or 0 for a byte that is none: ids are checked and
 * lowered through it without a branch on each digit (which a random id mispredicts often). */
static uint8_t hex_lower[256];

/* otlp_json._hex_id's test: ``n`` hex digits of either case, not all zeros. */
static int
is_hex_id(Slice s, Py_ssize_t n)
{
    uint8_t none = 0, nonzero = 0;
    if (s.data == NULL || s.len != n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t digit = hex_lower[s.data[i]];
        none |= digit == 0;
        nonzero |= digit ^ '0';
    }
    return !none && nonzero;
}

/* A hex id (checked) in lower case. */
static PyObject *
lower_hex(Slice s)
{
    PyObject *text = PyUnicode_New(s.len, 127);
    if (text == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < s.len; i++) {
        out[i] = hex_lower[s.data[i]];
    }
    return text;
}

static const Name SPAN_FIELDS[] = {
    NAME("traceId"),    NAME("spanId"),           NAME("traceState"),  NAME("parentSpanId"),
    NAME("flags"),      NAME("name"),             NAME("kind"),        NAME("startTimeUnixNano"),
    NAME("endTimeUnixNano"), NAME("attributes"),  NAME("droppedAttributesCount"), NAME("events"),
    NAME("droppedEventsCount"), NAME("links"),    NAME("droppedLinksCount"), NAME("status"),
};
/* OTLP/JSON's enum names, as otlp_json._KIND_NAMES and _STATUS_NAMES have them. */
static const Name KIND_NAMES[] = {
    NAME("SPAN_KIND_UNSPECIFIED"), NAME("SPAN_KIND_INTERNAL"), NAME("SPAN_KIND_SERVER"),
    NAME("SPAN_KIND_CLIENT"),      NAME("SPAN_KIND_PRODUCER"), NAME("SPAN_KIND_CONSUMER"),
};
static const Name STATUS_NAMES[] = {NAME("STATUS_CODE_UNSET"), NAME("STATUS_CODE_OK"),
                                           NAME("STATUS_CODE_ERROR")};

typedef struct {
    Slice trace_id, span_id, parent, name, message;
    long kind, code;
    int has_start, has_end;
    __int128 start, end;
} JsonSpan;

/* Status {code: int | str = 0, message: str | None}. */
static int
read_status(Json *j, JsonSpan *raw)
{
    static const Name names[] = {NAME("code"), NAME("message")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    if (is_null(j)) {
        return OK;
    }
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, 2, &seen, &field)) == ITEM) {
        if (field == 0) {
            status = read_enum(j, STATUS_NAMES, 3, &raw->code);
        }
        else if (!is_null(j)) {
            status = read_string(j, &raw->message);
        }
    }
    return status != OK ? status : r == DONE ? OK : r;
}

/* One span (and its SpanLinks) appended to ``out``, as otlp_json._typed_span does. */
static int
read_span(Json *j, PyObject *service, LastTrace *last, PyObject *out)
{
    JsonSpan raw = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, 0, 0, 0, 0, 0, 0};
    PyObject *lifted[MAX_LIFTED] = {NULL};
    PyObject *items[SPAN_ITEMS] = {NULL};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK, legacy = 0, unused;
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) {
        return FAIL;
    }
    j->n_links = 0;
    while (status == OK && (r = next_field(j, &first, SPAN_FIELDS, 16, &seen, &field)) == ITEM) {
        switch (field) {
        case 0:
            status = read_string(j, &raw.trace_id);
            break;
        case 1:
            status = read_string(j, &raw.span_id);
            break;
        case 3:
            status = is_null(j) ? OK : read_string(j, &raw.parent);
            break;
        case 5:
            status = is_null(j) ? OK : read_string(j, &raw.name);
            break;
        case 2:
            status = unused_text(j);
            break;
        case 4:
        case 10:
        case 12:
        case 14:
            status = unused_int(j);
            break;
        case 6:
            status = read_enum(j, KIND_NAMES, 6, &raw.kind);
            break;
        case 7:
            status = read_time(j, &raw.has_start, &raw.start);
            break;
        case 8:
            status = read_time(j, &raw.has_end, &raw.end);
            break;
        case 9:
            status = key_values(j, 0, attrs, lifted, &legacy);
            break;
        case 11:
            status = each(j, read_event);
            break;
        case 13:
            status = each(j, read_link);
            break;
        case 15:
            status = read_status(j, &raw);
            break;
        }
    }
    if (status == OK && r != DONE) {
        status = r;
    }
    /* What typed_records leaves to the dict path, which quarantines it with its reason. */
    if (status == OK &&
        (!is_hex_id(raw.trace_id, 32) || !is_hex_id(raw.span_id, 16) ||
         (raw.parent.len && !is_hex_id(raw.parent, 16)) || !raw.has_start || raw.start <= 0 ||
         raw.kind < 0 || raw.code < 0)) {
        status = DECLINE;
    }
    if (status != OK) {
        goto done;
    }
    if (last->text != NULL && memcmp(last->trace_id.data, raw.trace_id.data, 32) == 0) {
        items[0] = Py_NewRef(last->text);
    }
    else {
        items[0] = lower_hex(raw.trace_id);
    }
    items[1] = lower_hex(raw.span_id);
    items[2] = raw.parent.len ? lower_hex(raw.parent) : Py_NewRef(Py_None);
    items[3] = Py_NewRef(service);
    items[4] = raw.name.len ? text_of(raw.name.data, raw.name.len, 0, &unused, &unused, &status)
                            : PyUnicode_New(0, 0); /* no name (or null): "" */
    items[5] = PyLong_FromLong(raw.kind);
    items[6] = int_of(raw.start);
    items[7] = int_of(raw.has_end && raw.end >= raw.start ? raw.end - raw.start : 0);
    items[8] = PyLong_FromLong(raw.code);
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
    status = append_span(items, lifted, attrs, raw.kind, legacy, out, &span);
    if (status != OK) {
        goto done;
    }
    last->trace_id = raw.trace_id;
    last->text = PyTuple_GET_ITEM(span, 0);
    for (Py_ssize_t i = 0; i < j->n_links; i += 2) {
        if (!is_hex_id(j->links[i], 32) || !is_hex_id(j->links[i + 1], 16)) {
            continue; /* the dict path leaves such a link out too */
        }
        PyObject *ids[4] = {Py_NewRef(PyTuple_GET_ITEM(span, 0)),
                            Py_NewRef(PyTuple_GET_ITEM(span, 1)), lower_hex(j->links[i]),
                            lower_hex(j->links[i + 1])};
        if (ids[2] == NULL || ids[3] == NULL) {
            for (int k = 0; k < 4; k++) {
                Py_XDECREF(ids[k]);
            }
            status = FAIL;
            break;
        }
        if ((status = append_new(out, new_record(link_type, ids, 4))) != OK) {
            break;
        }
    }
done:
    return release_span(items, lifted, attrs, status);
}

/* ---- the request ---- */

/* ScopeSpans {spans: list[Span], scope: Scope | None, schemaUrl: str | None}. */
static int
read_scope_spans(Json *j, PyObject *service, PyObject *out)
{
    static const Name names[] = {NAME("spans"), NAME("scope"), NAME("schemaUrl")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    LastTrace last = {{NULL, 0}, NULL};
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, 3, &seen, &field)) == ITEM) {
        if (field == 0) {
            int item_first = 1, more;
            if (open_with(j, '[') != OK) {
                return DECLINE; /* not even null */
            }
            while (status == OK && (more = next_item(j, &item_first)) == ITEM) {
                status = read_span(j, service, &last, out);
            }
            if (status == OK && more != DONE) {
                status = more;
            }
        }
        else {
            status = field == 1 ? read_scope(j) : unused_text(j);
        }
    }
    if (status == OK && (r != DONE || !(seen & 1))) {
        status = r != DONE ? r : DECLINE; /* no spans: msgspec rejects the ScopeSpans */
    }
    return status;
}

/* list[ScopeSpans] | None. */
static int
read_all_scope_spans(Json *j, PyObject *service, PyObject *out)
{
    int first = 1, r, status;
    if (is_null(j)) {
        return OK;
    }
    if (open_with(j, '[') != OK) {
        return DECLINE;
    }
    while ((r = next_item(j, &first)) == ITEM) {
        if ((status = read_scope_spans(j, service, out)) != OK) {
            return status;
        }
    }
    return r == DONE ? OK : r;
}

/* Resource {attributes: list[KeyValue] | None, droppedAttributesCount: int | None} into the
 * dict ``attrs``. */
static int
read_resource(Json *j, PyObject *attrs)
{
    static const Name names[] = {NAME("attributes"), NAME("droppedAttributesCount")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    if (is_null(j)) {
        return OK;
    }
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, 2, &seen, &field)) == ITEM) {
        status = field == 0 ? key_values(j, 0, attrs, NULL, NULL) : unused_int(j);
    }
    return status != OK ? status : r == DONE ? OK : r;
}

/* ResourceSpans {resource, scopeSpans, schemaUrl}: the Resource record first, then its spans.
 * Exporters write the resource first; spans before it are passed over (checked) and read once
 * the resource is. */
static int
read_resource_spans(Json *j, PyObject *out)
{
    static const Name names[] = {NAME("resource"), NAME("scopeSpans"), NAME("schemaUrl")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    const uint8_t *scopes_before = NULL; /* scopeSpans met before the resource */
    PyObject *service = NULL;
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) {
        return FAIL;
    }
    while (status == OK && (r = next_field(j, &first, names, 3, &seen, &field)) == ITEM) {
        if (field == 0) {
            status = read_resource(j, attrs);
            if (status == OK && (service = append_resource(attrs, out)) == NULL) {
                status = FAIL;
            }
        }
        else if (field == 1 && service == NULL) {
            peek(j);
            scopes_before = j->p;
            status = skip_value(j, 0);
        }
        else {
            status = field == 1 ? read_all_scope_spans(j, service, out) : unused_text(j);
        }
    }
    if (status == OK && r != DONE) {
        status = r;
    }
    if (status == OK && service == NULL && (service = append_resource(attrs, out)) == NULL) {
        status = FAIL; /* no resource: resource_from({}) */
    }
    if (status == OK && scopes_before != NULL) {
        const uint8_t *after = j->p;
        j->p = scopes_before;
        status = read_all_scope_spans(j, service, out);
        j->p = after;
    }
    Py_XDECREF(service);
    Py_DECREF(attrs);
    return status;
}

/* ExportTraceServiceRequest {resourceSpans: list[ResourceSpans]}. */
static int
read_request(Json *j, PyObject *out)
{
    static const Name names[] = {NAME("resourceSpans")};
    uint32_t seen = 0;
    int first = 1, field, r, status = OK;
    if (open_with(j, '{') != OK) {
        return DECLINE;
    }
    while (status == OK && (r = next_field(j, &first, names, 1, &seen, &field)) == ITEM) {
        int item_first = 1, more;
        if (open_with(j, '[') != OK) {
            return DECLINE;
        }
        while (status == OK && (more = next_item(j, &item_first)) == ITEM) {
            status = read_resource_spans(j, out);
        }
        if (status == OK && more != DONE) {
            status = more;
        }
    }
    if (status == OK && (r != DONE || !seen)) {
        status = r != DONE ? r : DECLINE; /* no resourceSpans: msgspec rejects the request */
    }
    if (status == OK && peek(j) >= 0) {
        status = DECLINE; /* trailing characters */
    }
    return status;
}

const char json_records_doc[] = "json_records(data) -> list | None\n\n"
"The Resource, Span and SpanLink records of one OTLP/JSON ExportTraceServiceRequest in ``data``\n"
"(any buffer of UTF-8 text: a document, or one line of the one-request-per-line layout), as\n"
"otlp_json.typed_records gives them; None when the request needs the Python path (text that\n"
"is not strict JSON, a shape the typed structs reject, a duplicate key, a span the Python path\n"
"quarantines, ...).";

void
json_init(void)
{
    for (int c = 0x20; c < 256; c++) {
        string_class[c] = c < 0x80 ? 1 : 2;
    }
    string_class['"'] = string_class['\\'] = 0;
    for (int c = 0; c < 256; c++) {
        int digit = hex_digit(c);
        hex_lower[c] = digit < 0 ? 0 : "0123456789abcdef"[digit];
    }
}

PyObject *
json_records(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (span_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "collectors._otlp_native is not configured");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    int status = FAIL;
    if (out != NULL) {
        Json j = {view.buf, view.buf, (const uint8_t *)view.buf + view.len, NULL, 0, NULL, 0, 0};
        status = read_request(&j, out);
        PyMem_Free(j.arena);
        PyMem_Free(j.links);
    }
    PyBuffer_Release(&view);
    if (status == OK) {
        return out;
    }
    Py_XDECREF(out);
    if (status == DECLINE) {
        Py_RETURN_NONE;
    }
    return NULL;
}
