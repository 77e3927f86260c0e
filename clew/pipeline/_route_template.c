/* clew.routes.template_of compiled, for the paths it can read exactly: ASCII with no percent
 * escape (unquote leaves them as they are). Anything else is left to the Python function, which
 * stays the reference; tests compare the two on generated and real paths.
 *
 * Each regular expression of clew/routes.py is a hand-written matcher here, named after it; the
 * comment above each gives the pattern. ``fullmatch`` is what every one of them is used with
 * (searches are marked as such). Only ``service=None`` is done here, as the writer calls it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "_route_template.h"

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }
static inline int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static inline int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static inline int is_alpha(char c) { return is_lower(c) || is_upper(c); }
static inline int is_alnum(char c) { return is_alpha(c) || is_digit(c); }
static inline int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static inline int is_lower_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

/* Python's \s in a str pattern, on ASCII: space, \t \n \v \f \r and the separators 0x1c-0x1f. */
static inline int is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int
all_of(const char *s, Py_ssize_t n, int (*test)(char))
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!test(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Digits from ``*at``; how many. */
static Py_ssize_t
digits(const char *s, Py_ssize_t n, Py_ssize_t *at)
{
    Py_ssize_t start = *at;
    while (*at < n && is_digit(s[*at])) {
        (*at)++;
    }
    return *at - start;
}

/* _VERSION: [vV][0-9]+(?:\.[0-9]+)*(?:[a-z]+[0-9]*)?|[0-9]+(?:\.[0-9]+)+ */
static int
version(const char *s, Py_ssize_t n)
{
    Py_ssize_t at = 0;
    if (n > 0 && (s[0] == 'v' || s[0] == 'V')) {
        at = 1;
        if (digits(s, n, &at) == 0) {
            return 0;
        }
        while (at + 1 < n && s[at] == '.' && is_digit(s[at + 1])) {
            at++;
            digits(s, n, &at);
        }
        if (at < n && is_lower(s[at])) {
            while (at < n && is_lower(s[at])) {
                at++;
            }
            digits(s, n, &at);
        }
        return at == n;
    }
    if (digits(s, n, &at) == 0) {
        return 0;
    }
    int groups = 0;
    while (at + 1 < n && s[at] == '.' && is_digit(s[at + 1])) {
        at++;
        digits(s, n, &at);
        groups++;
    }
    return groups > 0 && at == n;
}

/* _YEAR: (?:19|20)[0-9]{2} */
static int
year(const char *s, Py_ssize_t n)
{
    return n == 4 && ((s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0')) &&
           is_digit(s[2]) && is_digit(s[3]);
}

/* _MONTH: 0[1-9]|1[0-2] */
static int
month(const char *s, Py_ssize_t n)
{
    return n == 2 && ((s[0] == '0' && s[1] >= '1' && s[1] <= '9') ||
                      (s[0] == '1' && s[1] >= '0' && s[1] <= '2'));
}

/* _DAY: 0[1-9]|[12][0-9]|3[01] */
static int
day(const char *s, Py_ssize_t n)
{
    return n == 2 && ((s[0] == '0' && s[1] >= '1' && s[1] <= '9') ||
                      ((s[0] == '1' || s[0] == '2') && is_digit(s[1])) ||
                      (s[0] == '3' && (s[1] == '0' || s[1] == '1')));
}

/* _DATE: YEAR-MONTH-DAY */
static int
date(const char *s, Py_ssize_t n)
{
    return n == 10 && year(s, 4) && s[4] == '-' && month(s + 5, 2) && s[7] == '-' &&
           day(s + 8, 2);
}

/* _DATE_TIME: DATE T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})? */
static int
date_time(const char *s, Py_ssize_t n)
{
    if (n < 16 || !date(s, 10) || s[10] != 'T' || !is_digit(s[11]) || !is_digit(s[12]) ||
        s[13] != ':' || !is_digit(s[14]) || !is_digit(s[15])) {
        return 0;
    }
    Py_ssize_t at = 16;
    if (at < n && s[at] == ':') {
        if (at + 2 >= n || !is_digit(s[at + 1]) || !is_digit(s[at + 2])) {
            return 0;
        }
        at += 3;
        if (at < n && s[at] == '.') {
            at++;
            if (digits(s, n, &at) == 0) {
                return 0;
            }
        }
    }
    if (at == n) {
        return 1;
    }
    if (s[at] == 'Z') {
        return at + 1 == n;
    }
    if (s[at] != '+' && s[at] != '-') {
        return 0;
    }
    at++;
    if (at + 2 > n || !is_digit(s[at]) || !is_digit(s[at + 1])) {
        return 0;
    }
    at += 2;
    if (at < n && s[at] == ':') {
        at++;
    }
    return at + 2 == n && is_digit(s[at]) && is_digit(s[at + 1]);
}

/* _UUID: [0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32} */
static int
uuid(const char *s, Py_ssize_t n)
{
    if (n == 32) {
        return all_of(s, n, is_hex);
    }
    if (n != 36) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i])) {
            return 0;
        }
    }
    return 1;
}

/* _CAPITAL_PREFIXED_HEX: [A-Z]{1,4}[0-9a-f]{16,} */
static int
capital_prefixed_hex(const char *s, Py_ssize_t n)
{
    Py_ssize_t capitals = 0;
    while (capitals < n && is_upper(s[capitals])) {
        capitals++;
    }
    return capitals >= 1 && capitals <= 4 && n - capitals >= 16 &&
           all_of(s + capitals, n - capitals, is_lower_hex);
}

/* _HEX: [0-9a-fA-F]{16,} */
static int
hex(const char *s, Py_ssize_t n)
{
    return n >= 16 && all_of(s, n, is_hex);
}

/* Crockford's base 32 without I, L, O and U, either case. */
static int
crockford(char c)
{
    if (is_digit(c)) {
        return 1;
    }
    char upper = is_lower(c) ? (char)(c - 'a' + 'A') : c;
    return is_upper(upper) && upper != 'I' && upper != 'L' && upper != 'O' && upper != 'U';
}

/* _ULID: [0-7][0-9A-HJKMNP-TV-Z]{25}, ignoring case */
static int
ulid(const char *s, Py_ssize_t n)
{
    return n == 26 && s[0] >= '0' && s[0] <= '7' && all_of(s + 1, 25, crockford);
}

/* _PREFIXED_ID: (?:[a-z]{1,8}[_-]){1,3}(?=[A-Za-z]*[0-9])[A-Za-z0-9]{8,}
 * The tail has no separator, so the prefix runs to the last one: one to three lowercase words
 * of one to eight letters, each ended by a separator; the tail, eight or more letters and digits,
 * has a digit (its first character that is not a letter is one). */
static int
prefixed_id(const char *s, Py_ssize_t n)
{
    Py_ssize_t last = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '_' || s[i] == '-') {
            last = i;
        }
    }
    if (last < 0) {
        return 0;
    }
    Py_ssize_t tail = n - last - 1;
    if (tail < 8 || !all_of(s + last + 1, tail, is_alnum)) {
        return 0;
    }
    int has_digit = 0;
    for (Py_ssize_t i = last + 1; i < n && !has_digit; i++) {
        has_digit = is_digit(s[i]);
    }
    if (!has_digit) {
        return 0;
    }
    int words = 0;
    Py_ssize_t word = 0;
    for (Py_ssize_t i = 0; i <= last; i++) {
        if (s[i] == '_' || s[i] == '-') {
            if (word < 1 || word > 8 || ++words > 3) {
                return 0;
            }
            word = 0;
        }
        else if (is_lower(s[i])) {
            word++;
        }
        else {
            return 0;
        }
    }
    return words >= 1;
}

/* _EMAIL: [^@\s]+@[^@\s]+\.[A-Za-z]{2,} */
static int
email(const char *s, Py_ssize_t n)
{
    Py_ssize_t at = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_space(s[i])) {
            return 0;
        }
        if (s[i] == '@') {
            if (at >= 0) {
                return 0;
            }
            at = i;
        }
    }
    if (at < 1) {
        return 0;
    }
    Py_ssize_t dot = -1;
    for (Py_ssize_t i = n - 1; i > at; i--) {
        if (s[i] == '.') {
            dot = i;
            break;
        }
    }
    /* a character between the @ and the dot; two letters or more after it, nothing else */
    return dot > at + 1 && n - dot - 1 >= 2 && all_of(s + dot + 1, n - dot - 1, is_alpha);
}

static int
token_character(char c)
{
    return is_alnum(c) || c == '+' || c == '=' || c == '_' || c == '-';
}

/* _TOKEN: [A-Za-z0-9+=_-]{20,}, with a search of _INNER_CAPITAL ([a-z0-9][A-Z]) and of
 * _DIGIT_BY_LETTER ([A-Za-z][0-9]|[0-9][A-Za-z]) */
static int
token(const char *s, Py_ssize_t n)
{
    if (n < 20 || !all_of(s, n, token_character)) {
        return 0;
    }
    int inner_capital = 0, digit_by_letter = 0;
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        inner_capital = inner_capital || ((is_lower(s[i]) || is_digit(s[i])) && is_upper(s[i + 1]));
        digit_by_letter = digit_by_letter || (is_alpha(s[i]) && is_digit(s[i + 1])) ||
                          (is_digit(s[i]) && is_alpha(s[i + 1]));
    }
    return inner_capital && digit_by_letter;
}

/* routes._parameter_name with after_service false: the parameter an identifier stands for, or
 * NULL for a literal. */
static const char *
parameter_name(const char *s, Py_ssize_t n, int version_position)
{
    if (version(s, n)) {
        return NULL;
    }
    if (n > 0 && all_of(s, n, is_digit)) {
        return version_position && n == 1 ? NULL : "id";
    }
    if (date(s, n)) {
        return version_position ? NULL : "date";
    }
    if (uuid(s, n)) {
        return "uuid";
    }
    if (date_time(s, n)) {
        return "date";
    }
    if (capital_prefixed_hex(s, n)) {
        return "id";
    }
    if (hex(s, n)) {
        return "hash";
    }
    if (ulid(s, n) || prefixed_id(s, n)) {
        return "id";
    }
    if (email(s, n)) {
        return "email";
    }
    if (token(s, n)) {
        return "token";
    }
    return NULL;
}

/* A search of _PARAMETER, \{[^{}/]+\}, in a segment (which has no slash). */
static int
has_parameter(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] != '{') {
            continue;
        }
        Py_ssize_t k = i + 1;
        while (k < n && s[k] != '{' && s[k] != '}') {
            k++;
        }
        if (k < n && s[k] == '}' && k > i + 1) {
            return 1;
        }
    }
    return 0;
}

/* ``out`` gets ``text`` (n bytes); returns where it ends. */
static char *
put(char *out, const char *text, Py_ssize_t n)
{
    memcpy(out, text, (size_t)n);
    return out + n;
}

static char *
put_parameter(char *out, const char *name)
{
    *out++ = '{';
    out = put(out, name, (Py_ssize_t)strlen(name));
    *out++ = '}';
    return out;
}

/* routes._template_segment, after_service false. */
static char *
template_segment(char *out, const char *s, Py_ssize_t n, int version_position)
{
    if (has_parameter(s, n)) {
        return put(out, s, n);
    }
    const char *name = parameter_name(s, n, version_position);
    if (name != NULL) {
        return put_parameter(out, name);
    }
    /* _EXTENSION: (.+)(\.[A-Za-z][A-Za-z0-9]{0,4}), DOTALL: the greedy stem ends at the last dot */
    Py_ssize_t dot = -1;
    for (Py_ssize_t i = n - 1; i >= 1; i--) {
        if (s[i] == '.') {
            dot = i;
            break;
        }
    }
    Py_ssize_t suffix = dot >= 1 ? n - dot : 0;
    if (suffix >= 2 && suffix <= 6 && is_alpha(s[dot + 1]) &&
        all_of(s + dot + 2, suffix - 2, is_alnum)) {
        name = parameter_name(s, dot, version_position);
        if (name != NULL) {
            out = put_parameter(out, name);
            return put(out, s + dot, suffix);
        }
    }
    return put(out, s, n);
}

static int
digit_or_at(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (is_digit(s[i]) || s[i] == '@') {
            return 1;
        }
    }
    return 0;
}

static int
is_api(const char *s, Py_ssize_t n)
{
    return n == 3 && (s[0] | 0x20) == 'a' && (s[1] | 0x20) == 'p' && (s[2] | 0x20) == 'i';
}

PyObject *
route_template(PyObject *path)
{
    if (!PyUnicode_CheckExact(path) || !PyUnicode_IS_ASCII(path)) {
        return Py_NewRef(Py_None);
    }
    const char *text = (const char *)PyUnicode_DATA(path);
    Py_ssize_t n = PyUnicode_GET_LENGTH(path);
    if (memchr(text, '%', (size_t)n) != NULL) {
        return Py_NewRef(Py_None);
    }
    /* _without_query: up to the first ? or # */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text[i] == '?' || text[i] == '#') {
            n = i;
            break;
        }
    }
    /* the segments, as str.split("/") gives them */
    Py_ssize_t count = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        count += text[i] == '/';
    }
    Py_ssize_t *starts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(count + 1));
    /* a parameter's text is at most 7 characters with its braces, over a segment of 1 or more */
    char *buffer = PyMem_Malloc((size_t)(n + 8 * count + 1));
    if (starts == NULL || buffer == NULL) {
        PyMem_Free(starts);
        PyMem_Free(buffer);
        return PyErr_NoMemory();
    }
    Py_ssize_t k = 0;
    starts[k++] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text[i] == '/') {
            starts[k++] = i + 1;
        }
    }
    starts[count] = n + 1; /* segment i is text[starts[i] .. starts[i + 1] - 1) */
#define SEGMENT(i) (text + starts[i])
#define LENGTH(i) (starts[(i) + 1] - 1 - starts[i])
    Py_ssize_t first = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (LENGTH(i) > 0) {
            first = i;
            break;
        }
    }
    char *out = buffer;
    Py_ssize_t index = 0;
    while (index < count) {
        if (index > 0) {
            *out++ = '/';
        }
        const char *s = SEGMENT(index);
        Py_ssize_t length = LENGTH(index);
        if (!digit_or_at(s, length)) {
            out = put(out, s, length);
            index++;
            continue;
        }
        /* _date_run: year/month[/day] */
        if (index + 1 < count && year(s, length) && month(SEGMENT(index + 1), LENGTH(index + 1))) {
            out = put(out, "{year}/{month}", 14);
            if (index + 2 < count && day(SEGMENT(index + 2), LENGTH(index + 2))) {
                out = put(out, "/{day}", 6);
                index += 3;
            }
            else {
                index += 2;
            }
            continue;
        }
        int version_position =
            index == first || (index > 0 && is_api(SEGMENT(index - 1), LENGTH(index - 1)));
        out = template_segment(out, s, length, version_position);
        index++;
    }
#undef SEGMENT
#undef LENGTH
    PyObject *result = PyUnicode_FromStringAndSize(buffer, out - buffer);
    PyMem_Free(starts);
    PyMem_Free(buffer);
    return result;
}
