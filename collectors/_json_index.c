/* One JSON container's members, found without building a Python object for any value: the
 * compiled twin of policies/locate.py's JsonIndex._index, for pointing findings into large
 * contracts (Stripe's 4 MB OpenAPI) without decoding the subtrees nobody asks about.
 *
 * json_index(data, start) takes the UTF-8 bytes of a JSON text and the offset of a '{' or '['
 * in it. For an object it gives ("object", [(key_start, key_end, escaped, value_start), ...],
 * end): each key's bytes are data[key_start:key_end] (between its quotes; ``escaped`` when they
 * hold a backslash, to be decoded as JSON), each value starts at value_start. For an array it
 * gives ("array", [value_start, ...], end). ``end`` is the offset just after the container.
 *
 * A value is stepped over by its brackets (strings skipped whole, escapes included); a scalar
 * runs to the next ',', ']', '}' or whitespace. Anything that is not JSON's shape (a key
 * without quotes, a missing ':' or ',', a text that ends inside the container) raises
 * ValueError, so that YAML opening with a flow mapping is not taken for JSON.
 */

#include "_otlp_native.h"

static Py_ssize_t
skip_space(const char *s, Py_ssize_t i, Py_ssize_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
        i++;
    }
    return i;
}

/* The offset after the string whose opening quote is at i; -1 when it does not close. */
static Py_ssize_t
skip_string(const char *s, Py_ssize_t i, Py_ssize_t n, int *escaped)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            *escaped = 1;
            i++;
        }
        else if (s[i] == '"') {
            return i + 1;
        }
    }
    return -1;
}

/* The offset after the value starting at i; -1 when it is not one. */
static Py_ssize_t
skip_value(const char *s, Py_ssize_t i, Py_ssize_t n)
{
    int escaped = 0;
    if (i >= n) {
        return -1;
    }
    if (s[i] == '"') {
        return skip_string(s, i, n, &escaped);
    }
    if (s[i] == '{' || s[i] == '[') {
        Py_ssize_t depth = 0;
        for (; i < n; i++) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n, &escaped);
                if (i < 0) {
                    return -1;
                }
                i--; /* the loop steps past the closing quote */
            }
            else if (c == '{' || c == '[') {
                depth++;
            }
            else if (c == '}' || c == ']') {
                if (--depth == 0) {
                    return i + 1;
                }
            }
        }
        return -1;
    }
    Py_ssize_t start = i;
    while (i < n && s[i] != ',' && s[i] != ']' && s[i] != '}' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r') {
        i++;
    }
    return i > start ? i : -1;
}

static PyObject *
not_json(Py_ssize_t at, const char *what)
{
    PyErr_Format(PyExc_ValueError, "%s expected at byte %zd", what, at);
    return NULL;
}

const char json_index_doc[] =
    "json_index(data, start) -> (kind, members, end): the members of the JSON object or "
    "array at data[start] (offsets into the UTF-8 bytes), values stepped over unread.";

PyObject *
json_index(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "json_index(data: bytes, start: int)");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t at = PyLong_AsSsize_t(args[1]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (at < 0 || at >= n || (s[at] != '{' && s[at] != '[')) {
        return not_json(at, "'{' or '['");
    }
    int object = s[at] == '{';
    char close = object ? '}' : ']';
    PyObject *members = PyList_New(0);
    if (members == NULL) {
        return NULL;
    }
    at = skip_space(s, at + 1, n);
    if (at < n && s[at] == close) {
        at++;
        goto done;
    }
    for (;;) {
        PyObject *member;
        if (object) {
            int escaped = 0;
            if (at >= n || s[at] != '"') {
                Py_DECREF(members);
                return not_json(at, "a key");
            }
            Py_ssize_t key_end = skip_string(s, at, n, &escaped);
            if (key_end < 0) {
                Py_DECREF(members);
                return not_json(at, "a closed key");
            }
            Py_ssize_t colon = skip_space(s, key_end, n);
            if (colon >= n || s[colon] != ':') {
                Py_DECREF(members);
                return not_json(colon, "':'");
            }
            Py_ssize_t value = skip_space(s, colon + 1, n);
            member = Py_BuildValue("(nnOn)", at + 1, key_end - 1, escaped ? Py_True : Py_False,
                                   value);
            at = value;
        }
        else {
            member = PyLong_FromSsize_t(at);
        }
        if (member == NULL || PyList_Append(members, member) < 0) {
            Py_XDECREF(member);
            Py_DECREF(members);
            return NULL;
        }
        Py_DECREF(member);
        Py_ssize_t after = skip_value(s, at, n);
        if (after < 0) {
            Py_DECREF(members);
            return not_json(at, "a value");
        }
        at = skip_space(s, after, n);
        if (at < n && s[at] == close) {
            at++;
            break;
        }
        if (at >= n || s[at] != ',') {
            Py_DECREF(members);
            return not_json(at, object ? "',' or '}'" : "',' or ']'");
        }
        at = skip_space(s, at + 1, n);
    }
done:
    return Py_BuildValue("(sNn)", object ? "object" : "array", members, at);
}
