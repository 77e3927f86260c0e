/* NGINX ``combined`` access-log lines, a block of them at a time, read straight into Clew's
 * GatewayRequest records: the compiled twin of collectors/access_logs/nginx.py's parse_combined
 * together with AccessLogCollector's per-line loop (decode, strip_prefix, blank lines).
 *
 * nginx_block(data, start, end, most, gateway, by_client) reads the lines of data[start:end]
 * (each ending with "\n") one after the other, at most ``most`` of them, and stops before the
 * first line it does not read exactly as the Python path does: that line is handed back, and
 * the collector reads it in Python. It gives (records, position, lines): the records, the
 * offset it stopped at and how many lines it went past (blank lines count, and give no record).
 *
 * What it reads, and only that (anything else is handed back, never quarantined here):
 *
 *   [HOST ]ADDRESS - USER [DD/Mon/YYYY:HH:MM:SS +HHMM] "METHOD TARGET[ HTTP/x.y]" STATUS BYTES
 *   [ "REFERER" "USER_AGENT"[ TRAILING]]
 *
 * - the line, without its trailing "\r" and "\n", is printable ASCII without a backslash (so it
 *   decodes alike, no \xHH escape is to be undone and JSON escapes only '"'); a line that is
 *   empty then is blank;
 * - it does not start with '[', '{', '<', a space, a capital letter or "DDDD-": no container
 *   runtime or syslog prefix to strip, no IPv6 or Nginx Proxy Manager or JSON line;
 * - the head before " - " is ADDRESS or HOST ADDRESS, neither empty, without a comma or a quote
 *   (X-Forwarded-For lists in the head are handed back), ADDRESS of _ADDRESS's characters; its
 *   port is cut as without_port cuts it;
 * - the time is whole seconds with an offset, a valid date in the years 1678 to 2261;
 * - the request line is one NGINX read (an unreadable one is handed back), STATUS three digits,
 *   BYTES digits (18 at most) or "-";
 * - TRAILING (after the user agent) is quoted values and bare times in seconds only ("0.057",
 *   "-", "0.010, 0.020"); no key=value pair, no '[' (ingress-nginx's upstreaminfo), no other
 *   bare value. The first quoted value is the X-Forwarded-For, the second the host when it is
 *   an address, the first time the request time, the second the upstream response time.
 *
 * Times: the CLF time is converted as clf_time_ns does, the last time text cached (lines of a
 * log share their second by the hundreds); durations as _seconds does, through the same
 * correctly rounded double arithmetic (PyOS_string_to_double, a product by 1e9, rounding half
 * to even). The start is the logged time minus the request time when it is there and not 0.
 *
 * Attributes are the JSON text attributes_json writes (orjson, keys sorted, compact): protocol,
 * referer (up to its '?'), user, user_agent, x_forwarded_for, those whose value is not "" or
 * "-". The consumer is the user (``by_client`` false, consumer "auto") or the client address;
 * the collector does not use this path when client addresses are hashed.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_otlp_native.h"

static PyTypeObject *request_type; /* GatewayRequest, set by nginx_configure */

#define LONGEST_NS 10000000000000000LL /* _LONGEST_SECONDS (1e7 s) in nanoseconds */
#define ONES 0x0101010101010101ULL

typedef struct {
    const char *s;
    Py_ssize_t n;
} Text;

/* What one block's reading keeps: the last time text and its value, the last method's text. */
typedef struct {
    char time_text[26];
    int64_t time_ns;
    int has_time;
    PyObject *method; /* owned */
} Cache;

static PyObject *
ascii_text(const char *s, Py_ssize_t n)
{
    PyObject *text = PyUnicode_New(n, 127);
    if (text != NULL) {
        memcpy(PyUnicode_DATA(text), s, (size_t)n);
    }
    return text;
}

/* A cached str of short repeated text (a method, a protocol): a new reference. */
static PyObject *
cached_text(PyObject **slot, Text t)
{
    if (*slot == NULL || PyUnicode_GET_LENGTH(*slot) != t.n ||
        memcmp(PyUnicode_DATA(*slot), t.s, (size_t)t.n) != 0) {
        PyObject *text = ascii_text(t.s, t.n);
        if (text == NULL) {
            return NULL;
        }
        Py_XSETREF(*slot, text);
    }
    Py_INCREF(*slot);
    return *slot;
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* _ADDRESS's characters, [\w.:%\[\]-] (in ASCII). */
static int
address_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '.' || c == ':' || c == '%' || c == '[' || c == ']' || c == '-';
}

static int
is_address(Text t)
{
    if (t.n == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < t.n; i++) {
        if (!address_char(t.s[i])) {
            return 0;
        }
    }
    return 1;
}

static int
equals(Text t, const char *literal)
{
    size_t n = strlen(literal);
    return (size_t)t.n == n && memcmp(t.s, literal, n) == 0;
}

static int
number(const char *s, int digits)
{
    int value = 0;
    for (int i = 0; i < digits; i++) {
        if (!is_digit(s[i])) {
            return -1;
        }
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (calendar.timegm's arithmetic). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* clf_time_ns of "DD/Mon/YYYY:HH:MM:SS +HHMM" (exactly that shape); DECLINE otherwise. */
static int
clf_time(Text t, int64_t *ns)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *s = t.s;
    if (t.n != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' ||
        s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-')) {
        return DECLINE;
    }
    int month = 0;
    for (int i = 0; i < 12; i++) {
        if (memcmp(s + 3, months + 3 * i, 3) == 0) {
            month = i + 1;
        }
    }
    int day = number(s, 2), year = number(s + 7, 4), hour = number(s + 12, 2);
    int minute = number(s + 15, 2), second = number(s + 18, 2);
    int off_h = number(s + 22, 2), off_m = number(s + 24, 2);
    if (month == 0 || day < 0 || year < 0 || hour < 0 || minute < 0 || second < 0 || off_h < 0 ||
        off_m < 0) {
        return DECLINE;
    }
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int last = days_in[month - 1] + (month == 2 && leap);
    if (year < 1678 || year > 2261 || day < 1 || day > last || hour > 23 || minute > 59 ||
        second > 59) {
        return DECLINE; /* BadLine in Python */
    }
    int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                      second;
    int64_t offset = (int64_t)(off_h * 60 + off_m) * 60 * (s[21] == '-' ? -1 : 1);
    *ns = (seconds - offset) * 1000000000LL;
    return OK;
}

/* A float() of a bare time item ("0.057"): at most 11 characters. */
static int
item_seconds(Text t, double *value)
{
    char buffer[16];
    if (t.n >= (Py_ssize_t)sizeof buffer) {
        return DECLINE;
    }
    memcpy(buffer, t.s, (size_t)t.n);
    buffer[t.n] = '\0';
    char *end;
    *value = PyOS_string_to_double(buffer, &end, NULL);
    if (*value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return DECLINE;
    }
    return end == buffer + t.n ? OK : DECLINE;
}

/* A bare time item of _BARE_SECONDS: [0-9]{1,7}\.[0-9]{3} or "-". */
static int
time_item(Text t)
{
    if (equals(t, "-")) {
        return 1;
    }
    if (t.n < 5 || t.n > 11 || t.s[t.n - 4] != '.') {
        return 0;
    }
    for (Py_ssize_t i = 0; i < t.n; i++) {
        if (i != t.n - 4 && !is_digit(t.s[i])) {
            return 0;
        }
    }
    return 1;
}

/* _seconds of a bare time (one item, or a list of them split at ", " and " : "): *has 0 for
 * "-"; DECLINE where Python finds it no time in seconds. */
static int
seconds(Text t, int *has, int64_t *ns)
{
    *has = 0;
    if (equals(t, "-")) {
        return OK;
    }
    double total = 0.0;
    Py_ssize_t i = 0;
    while (i < t.n) { /* the items between separators; "-" items add nothing */
        Py_ssize_t j = i;
        while (j < t.n && t.s[j] != ',' && t.s[j] != ' ') {
            j++;
        }
        Text item = {t.s + i, j - i};
        if (!equals(item, "-")) {
            double value;
            if (item_seconds(item, &value) != OK) {
                return DECLINE;
            }
            total += value;
        }
        if (j < t.n) {
            j += t.s[j] == ',' ? 2 : 3; /* ", " or " : " */
        }
        i = j;
    }
    double scaled = rint(total * 1e9); /* round() of a float: half to even */
    if (!(scaled >= 0.0 && scaled < (double)LONGEST_NS)) {
        return DECLINE;
    }
    *has = 1;
    *ns = (int64_t)scaled;
    return OK;
}

/* A JSON string of printable ASCII without a backslash: only '"' is escaped. */
static char *
json_string(char *out, Text t)
{
    *out++ = '"';
    for (Py_ssize_t i = 0; i < t.n; i++) {
        if (t.s[i] == '"') {
            *out++ = '\\';
        }
        *out++ = t.s[i];
    }
    *out++ = '"';
    return out;
}

/* path_of of a target NGINX read (no "\xHH" in it): None for "-". */
static PyObject *
path_of(Text target)
{
    if (equals(target, "-")) {
        Py_RETURN_NONE;
    }
    const char *s = target.s;
    Py_ssize_t n = target.n;
    Py_ssize_t head = n < 10 ? n : 10;
    for (Py_ssize_t i = 0; i + 3 <= head; i++) {
        if (memcmp(s + i, "://", 3) == 0) {
            const char *rest = s + i + 3;
            const char *slash = memchr(rest, '/', (size_t)(s + n - rest));
            if (slash == NULL) {
                return ascii_text("/", 1);
            }
            n = s + n - slash;
            s = slash;
            break;
        }
    }
    const char *cut = memchr(s, '?', (size_t)n);
    if (cut != NULL) {
        n = cut - s;
    }
    cut = memchr(s, '#', (size_t)n);
    if (cut != NULL) {
        n = cut - s;
    }
    return n ? ascii_text(s, n) : ascii_text("/", 1);
}

/* The fields of one line; texts point into it. */
typedef struct {
    Text host, client, user, method, path, protocol, status, bytes, referer, agent, forwarded;
    Text duration, upstream_duration;
    int has_host, has_user, has_protocol, has_referer, has_forwarded, has_duration, has_upstream;
    int64_t end_ns;
} Line;

static Py_ssize_t
scan_to(const char *s, Py_ssize_t i, Py_ssize_t n, char c)
{
    const char *found = memchr(s + i, c, (size_t)(n - i));
    return found ? found - s : -1;
}

/* What follows the user agent: quoted values and bare times, each after spaces. */
static int
trailing(const char *s, Py_ssize_t i, Py_ssize_t n, Line *line)
{
    while (n > i && s[n - 1] == ' ') {
        n--; /* rest.rstrip() */
    }
    int quoted = 0, times = 0;
    while (i < n) {
        if (s[i] != ' ') {
            return DECLINE;
        }
        while (s[i] == ' ') {
            i++;
        }
        if (s[i] == '"') {
            Py_ssize_t close = scan_to(s, i + 1, n, '"');
            if (close < 0) {
                return DECLINE;
            }
            Text value = {s + i + 1, close - i - 1};
            if (quoted == 0 && value.n && !equals(value, "-")) {
                line->forwarded = value;
                line->has_forwarded = 1;
            }
            else if (quoted == 1 && is_address(value)) {
                line->host = value;
                line->has_host = 1;
            }
            quoted++;
            i = close + 1;
            continue;
        }
        /* A bare value: _LIST's items, split at ", " and " : ", each a time item. */
        Py_ssize_t start = i;
        for (;;) {
            Py_ssize_t j = i;
            if (s[j] == ',' || s[j] == ':' || s[j] == '"') {
                return DECLINE;
            }
            while (j < n && s[j] != ' ' && s[j] != ',' && s[j] != '"') {
                j++;
            }
            if (!time_item((Text){s + i, j - i})) {
                return DECLINE; /* NotThisFormat, or not the shape read here */
            }
            i = j;
            Py_ssize_t next;
            if (i + 2 < n && s[i] == ',' && s[i + 1] == ' ') {
                next = i + 2;
            }
            else if (i + 3 < n && s[i] == ' ' && s[i + 1] == ':' && s[i + 2] == ' ') {
                next = i + 3;
            }
            else {
                break;
            }
            char c = s[next];
            if (c == ' ' || c == ',' || c == '"' || c == ':') {
                break;
            }
            i = next;
        }
        Text value = {s + start, i - start};
        if (times == 0) {
            line->duration = value;
            line->has_duration = 1;
        }
        else if (times == 1) {
            line->upstream_duration = value;
            line->has_upstream = 1;
        }
        times++;
    }
    return OK;
}

/* The fields of a line (printable ASCII, no backslash, not blank); DECLINE when it is not the
 * shape read here. */
static int
fields_of(const char *s, Py_ssize_t n, Cache *cache, Line *line)
{
    char c = s[0];
    if (c == '[' || c == '{' || c == '<' || c == ' ' || (c >= 'A' && c <= 'Z') ||
        (n > 4 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) &&
         s[4] == '-')) {
        return DECLINE;
    }
    Py_ssize_t bracket = scan_to(s, 0, n, '[');
    if (bracket < 1 || s[bracket - 1] != ' ') {
        return DECLINE;
    }
    /* prefix.partition(" - "): the head, and the user up to its trailing spaces. */
    Py_ssize_t dash = -1;
    for (Py_ssize_t i = 0; i + 3 <= bracket; i++) {
        if (s[i] == ' ' && s[i + 1] == '-' && s[i + 2] == ' ') {
            dash = i;
            break;
        }
    }
    if (dash < 0) {
        return DECLINE;
    }
    Py_ssize_t user_end = bracket;
    while (user_end > dash + 3 && s[user_end - 1] == ' ') {
        user_end--;
    }
    line->user = (Text){s + dash + 3, user_end - dash - 3};
    line->has_user = line->user.n && !equals(line->user, "-");
    Py_ssize_t space = -1;
    for (Py_ssize_t i = 0; i < dash; i++) {
        if (s[i] == ',' || s[i] == '"') {
            return DECLINE;
        }
        if (s[i] == ' ') {
            if (space >= 0) {
                return DECLINE;
            }
            space = i;
        }
    }
    if (space >= 0) {
        line->host = (Text){s, space};
        line->client = (Text){s + space + 1, dash - space - 1};
        if (line->host.n == 0) {
            return DECLINE;
        }
    }
    else {
        line->client = (Text){s, dash};
    }
    if (!is_address(line->client)) {
        return DECLINE;
    }
    /* [TIME] " */
    Py_ssize_t close = scan_to(s, bracket + 1, n, ']');
    if (close < 0 || close + 2 >= n || s[close + 1] != ' ' || s[close + 2] != '"') {
        return DECLINE;
    }
    Text time = {s + bracket + 1, close - bracket - 1};
    if (!(cache->has_time && time.n == 26 && memcmp(cache->time_text, time.s, 26) == 0)) {
        if (clf_time(time, &cache->time_ns) != OK) {
            cache->has_time = 0;
            return DECLINE;
        }
        memcpy(cache->time_text, time.s, 26);
        cache->has_time = 1;
    }
    line->end_ns = cache->time_ns;
    /* "METHOD TARGET[ HTTP/x.y]" */
    Py_ssize_t i = close + 3;
    Py_ssize_t start = i;
    while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '-')) {
        i++;
    }
    if (i == start || i >= n || s[i] != ' ') {
        return DECLINE;
    }
    line->method = (Text){s + start, i - start};
    start = ++i;
    while (i < n && s[i] != ' ' && s[i] != '"') {
        i++;
    }
    if (i == start || i >= n) {
        return DECLINE;
    }
    line->path = (Text){s + start, i - start};
    line->has_protocol = 0;
    if (s[i] == ' ') {
        if (n - i < 7 || memcmp(s + i + 1, "HTTP/", 5) != 0) {
            return DECLINE;
        }
        start = i + 1;
        i += 6;
        Py_ssize_t digits = i;
        while (i < n && (is_digit(s[i]) || s[i] == '.')) {
            i++;
        }
        if (i == digits || i >= n || s[i] != '"') {
            return DECLINE;
        }
        line->protocol = (Text){s + start, i - start};
        line->has_protocol = 1;
    }
    i++; /* the closing quote */
    if (i >= n || s[i] != ' ') {
        return DECLINE;
    }
    /* STATUS BYTES */
    start = ++i;
    while (i < n && s[i] != ' ') {
        i++;
    }
    line->status = (Text){s + start, i - start};
    if (i - start != 3 || !is_digit(s[start]) || !is_digit(s[start + 1]) ||
        !is_digit(s[start + 2]) || i >= n) {
        return DECLINE;
    }
    start = ++i;
    while (i < n && s[i] != ' ') {
        i++;
    }
    line->bytes = (Text){s + start, i - start};
    if (line->bytes.n == 0 || line->bytes.n > 18) {
        return DECLINE;
    }
    if (!equals(line->bytes, "-")) {
        for (Py_ssize_t k = 0; k < line->bytes.n; k++) {
            if (!is_digit(line->bytes.s[k])) {
                return DECLINE;
            }
        }
    }
    /* [ "REFERER" "USER_AGENT"[ TRAILING]] */
    line->has_referer = line->has_forwarded = line->has_duration = line->has_upstream = 0;
    line->has_host = space >= 0;
    if (i == n) {
        return OK;
    }
    if (n - i < 2 || s[i] != ' ' || s[i + 1] != '"') {
        return DECLINE;
    }
    Py_ssize_t quote = scan_to(s, i + 2, n, '"');
    if (quote < 0 || n - quote < 3 || s[quote + 1] != ' ' || s[quote + 2] != '"') {
        return DECLINE;
    }
    line->referer = (Text){s + i + 2, quote - i - 2};
    i = quote + 3;
    quote = scan_to(s, i, n, '"');
    if (quote < 0) {
        return DECLINE;
    }
    line->agent = (Text){s + i, quote - i};
    line->has_referer = 1;
    i = quote + 1;
    if (i == n) {
        return OK;
    }
    for (Py_ssize_t k = i; k < n; k++) {
        if (s[k] == '[' || s[k] == '=') {
            return DECLINE;
        }
    }
    Text vhost = line->host;
    int had_vhost = line->has_host;
    if (trailing(s, i, n, line) != OK) {
        return DECLINE;
    }
    if (had_vhost) { /* the head's host is set after the trailing fields' */
        line->host = vhost;
        line->has_host = 1;
    }
    return OK;
}

/* The attributes' JSON text, or None. */
static PyObject *
attributes(const Line *line)
{
    Text referer = line->referer;
    if (line->has_referer) {
        const char *cut = memchr(referer.s, '?', (size_t)referer.n);
        if (cut != NULL) {
            referer.n = cut - referer.s;
        }
    }
    struct {
        const char *key;
        Text value;
        int has;
    } items[] = {
        {"protocol", line->protocol, line->has_protocol},
        {"referer", referer, line->has_referer},
        {"user", line->user, line->has_user},
        {"user_agent", line->agent, line->has_referer},
        {"x_forwarded_for", line->forwarded, line->has_forwarded},
    };
    Py_ssize_t size = 2;
    int kept = 0;
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
        if (items[k].has && (items[k].value.n == 0 || equals(items[k].value, "-"))) {
            items[k].has = 0;
        }
        if (items[k].has) {
            size += (Py_ssize_t)strlen(items[k].key) + 6 + 2 * items[k].value.n;
            kept = 1;
        }
    }
    if (!kept) {
        Py_RETURN_NONE;
    }
    char small[2048];
    char *buffer = size <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)size);
    if (buffer == NULL) {
        return PyErr_NoMemory();
    }
    char *out = buffer;
    *out++ = '{';
    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
        if (!items[k].has) {
            continue;
        }
        if (out != buffer + 1) {
            *out++ = ',';
        }
        out = json_string(out, (Text){items[k].key, (Py_ssize_t)strlen(items[k].key)});
        *out++ = ':';
        out = json_string(out, items[k].value);
    }
    *out++ = '}';
    PyObject *text = ascii_text(buffer, out - buffer);
    if (buffer != small) {
        PyMem_Free(buffer);
    }
    return text;
}

/* The GatewayRequest of a line's fields (new reference), or NULL with *status DECLINE or FAIL. */
static PyObject *
request_of(const Line *line, Cache *cache, PyObject *gateway, int by_client, int *status)
{
    int has_duration = 0, has_upstream = 0;
    int64_t duration = 0, upstream_duration = 0;
    if ((line->has_duration && seconds(line->duration, &has_duration, &duration) != OK) ||
        (line->has_upstream &&
         seconds(line->upstream_duration, &has_upstream, &upstream_duration) != OK)) {
        *status = DECLINE;
        return NULL;
    }
    *status = FAIL;
    PyObject *items[16] = {NULL};
    int64_t start = has_duration && duration ? line->end_ns - duration : line->end_ns;
    items[0] = PyLong_FromLongLong(start);
    Py_INCREF(gateway);
    items[1] = gateway;
    /* The client without its port (without_port; no '[' reaches here). */
    Text client = line->client;
    const char *colon = memchr(client.s, ':', (size_t)client.n);
    if (colon != NULL && memchr(colon + 1, ':', (size_t)(client.s + client.n - colon - 1)) == NULL &&
        !(client.n >= 5 && memcmp(client.s, "unix:", 5) == 0)) {
        client.n = colon - client.s;
    }
    items[3] = ascii_text(client.s, client.n);
    if (by_client) {
        items[2] = items[3];
        Py_XINCREF(items[2]);
    }
    else if (line->has_user) {
        items[2] = ascii_text(line->user.s, line->user.n);
    }
    else {
        items[2] = Py_NewRef(Py_None);
    }
    items[4] = cached_text(&cache->method, line->method);
    items[5] = line->has_host ? ascii_text(line->host.s, line->host.n) : Py_NewRef(Py_None);
    items[6] = path_of(line->path);
    items[7] = Py_NewRef(Py_None);
    items[8] = PyLong_FromLong(number(line->status.s, 3));
    items[9] = has_duration ? PyLong_FromLongLong(duration) : Py_NewRef(Py_None);
    items[10] = has_upstream ? PyLong_FromLongLong(upstream_duration) : Py_NewRef(Py_None);
    items[11] = Py_NewRef(Py_None);
    if (equals(line->bytes, "-")) {
        items[12] = Py_NewRef(Py_None);
    }
    else {
        long long bytes = 0;
        for (Py_ssize_t k = 0; k < line->bytes.n; k++) {
            bytes = bytes * 10 + (line->bytes.s[k] - '0');
        }
        items[12] = PyLong_FromLongLong(bytes);
    }
    items[13] = Py_NewRef(Py_None);
    items[14] = Py_NewRef(Py_None);
    items[15] = attributes(line);
    for (int k = 0; k < 16; k++) {
        if (items[k] == NULL) {
            for (int j = 0; j < 16; j++) {
                Py_XDECREF(items[j]);
            }
            return NULL;
        }
    }
    PyObject *record = new_record(request_type, items, 16);
    if (record != NULL) {
        PyObject_GC_UnTrack(record); /* of str, int and None only: in no cycle, not worth
                                        the collector's visits */
    }
    return record;
}

PyObject *
nginx_block(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "nginx_block(data, start, end, most, gateway, by_client)");
        return NULL;
    }
    if (request_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "nginx_configure() was not called");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t end = PyLong_AsSsize_t(args[2]);
    Py_ssize_t most = PyLong_AsSsize_t(args[3]);
    int by_client = PyObject_IsTrue(args[5]);
    if (PyErr_Occurred() || by_client < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "gateway must be a str");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "start and end are not within data");
        return NULL;
    }
    const char *data = view.buf;
    PyObject *out = PyList_New(0);
    Cache cache = {{0}, 0, 0, NULL};
    Py_ssize_t position = start, count = 0;
    int failed = out == NULL;
    while (!failed && position < end && count < most) {
        const char *newline = memchr(data + position, '\n', (size_t)(end - position));
        if (newline == NULL) {
            break;
        }
        const char *s = data + position;
        Py_ssize_t n = newline - s;
        while (n > 0 && s[n - 1] == '\r') {
            n--;
        }
        int plain = 1;
        Py_ssize_t k = 0;
        for (; k + 8 <= n; k += 8) { /* eight bytes at a time: any below ' ', above '~' or '\\' */
            uint64_t x;
            memcpy(&x, s + k, 8);
            uint64_t below = (x - ONES * 0x20) & ~x;
            uint64_t above = (x + ONES * (127 - 0x7e)) | x;
            uint64_t slash = x ^ (ONES * '\\');
            uint64_t zero = (slash - ONES) & ~slash;
            if ((below | above | zero) & (ONES * 0x80)) {
                break;
            }
        }
        for (; k < n; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c < 0x20 || c > 0x7e || c == '\\') {
                plain = 0;
                break;
            }
        }
        if (!plain) {
            break;
        }
        if (n > 0) {
            Line line;
            line.host = line.referer = (Text){NULL, 0};
            int status;
            if (fields_of(s, n, &cache, &line) != OK) {
                break;
            }
            PyObject *record =
                request_of(&line, &cache, args[4], by_client, &status);
            if (record == NULL) {
                failed = status == FAIL;
                break;
            }
            if (append_new(out, record) != OK) {
                failed = 1;
                break;
            }
        }
        position = newline + 1 - data;
        count++;
    }
    PyBuffer_Release(&view);
    Py_XDECREF(cache.method);
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    PyObject *result = Py_BuildValue("(Nnn)", out, position, count);
    return result;
}

const char nginx_block_doc[] =
    "nginx_block(data, start, end, most, gateway, by_client) -> (records, position, lines)\n\n"
    "The GatewayRequest records of NGINX combined lines in data[start:end], at most ``most``\n"
    "lines, up to the first line this reader hands back to the Python path.";

PyObject *
nginx_configure(PyObject *Py_UNUSED(module), PyObject *type)
{
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "nginx_configure takes the GatewayRequest type");
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(request_type, (PyTypeObject *)type);
    Py_RETURN_NONE;
}

const char nginx_configure_doc[] =
    "nginx_configure(GatewayRequest)\n\nHands in the record type nginx_block builds.";
