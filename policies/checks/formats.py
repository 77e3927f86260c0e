"""The string and number formats Spectral's example rules check (those of ajv-formats 2.1.1 in
its full mode, which Spectral's validator loads), as predicates over one value. A format applies
to values of its own type only: any other value passes, as an unknown format does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|[01]?\d\d?)\.){3}(?:25[0-5]|2[0-4]\d|[01]?\d\d?)"
_H16 = "[0-9a-f]{1,4}"
#: ipv6's embedded IPv4 (no leading zeros), as ajv-formats writes it there.
_IPV4_IN_6 = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_IP_LITERAL = (
    r"\[(?:(?:(?:(?:[0-9a-f]{1,4}:){6}|::(?:[0-9a-f]{1,4}:){5}|(?:[0-9a-f]{1,4})?::"
    r"(?:[0-9a-f]{1,4}:){4}|(?:(?:[0-9a-f]{1,4}:){0,1}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){3}|"
    r"(?:(?:[0-9a-f]{1,4}:){0,2}[0-9a-f]{1,4})?::(?:[0-9a-f]{1,4}:){2}|(?:(?:[0-9a-f]{1,4}:)"
    r"{0,3}[0-9a-f]{1,4})?::[0-9a-f]{1,4}:|(?:(?:[0-9a-f]{1,4}:){0,4}[0-9a-f]{1,4})?::)"
    rf"(?:[0-9a-f]{{1,4}}:[0-9a-f]{{1,4}}|{_IPV4})|(?:(?:[0-9a-f]{{1,4}}:){{0,5}}[0-9a-f]{{1,4}})?"
    r"::[0-9a-f]{1,4}|(?:(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})?::)|[Vv][0-9a-f]+\."
    r"[a-z0-9\-._~!$&'()*+,;=:]+)\]"
)


def _uri_pattern(quote: str) -> str:
    """RFC 3986's URI after its scheme (``quote`` is ``"`` where ajv-formats lets one in)."""
    sub = rf"[a-z0-9\-._~!$&'{quote}()*+,;=:@]|%[0-9a-f]{{2}}"
    host = rf"{_IP_LITERAL}|{_IPV4}|(?:[a-z0-9\-._~!$&'{quote}()*+,;=]|%[0-9a-f]{{2}})*"
    return (
        rf"(?:\/?\/(?:(?:[a-z0-9\-._~!$&'()*+,;=:]|%[0-9a-f]{{2}})*@)?(?:{host})(?::\d*)?"
        rf"(?:\/(?:{sub})*)*|\/(?:(?:{sub})+(?:\/(?:{sub})*)*)?|(?:{sub})+(?:\/(?:{sub})*)*)"
        rf"(?:\?(?:[a-z0-9\-._~!$&'{quote}()*+,;=:@/?]|%[0-9a-f]{{2}})*)?"
        rf"(?:#(?:[a-z0-9\-._~!$&'{quote}()*+,;=:@/?]|%[0-9a-f]{{2}})*)?"
    )


_FLAGS = re.IGNORECASE | re.ASCII
_URI = re.compile(rf"(?:[a-z][a-z0-9+\-.]*:){_uri_pattern('')}\Z", _FLAGS)
_URI_REFERENCE = re.compile(rf"(?:[a-z][a-z0-9+\-.]*:)?{_uri_pattern(chr(34))}\Z", _FLAGS)
_DATE = re.compile(r"(\d\d\d\d)-(\d\d)-(\d\d)\Z", re.ASCII)
_TIME = re.compile(r"(\d\d):(\d\d):(\d\d)(\.\d+)?(z|[+-]\d\d(?::?\d\d)?)?\Z", _FLAGS)
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_PATTERNS = {
    "duration": r"P(?!\Z)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)\Z",
    "uri-template": r"(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?"
    r"(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+"
    r"(?::[1-9][0-9]{0,3}|\*)?)*\})*\Z",
    "email": r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9]"
    r"(?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z",
    "hostname": r"(?=.{1,253}\.?\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9]"
    r"(?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?\Z",
    "ipv4": rf"{_IPV4}\Z",
    "uuid": r"(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\Z",
    "json-pointer": r"(?:\/(?:[^~/]|~0|~1)*)*\Z",
    "json-pointer-uri-fragment": r"#(?:\/(?:[a-z0-9_\-.!$&'()*+,;:=@]|%[0-9a-f]{2}|~0|~1)*)*\Z",
    "relative-json-pointer": r"(?:0|[1-9][0-9]*)(?:#|(?:\/(?:[^~/]|~0|~1)*)*)\Z",
}
_COMPILED = {name: re.compile(pattern, _FLAGS) for name, pattern in _PATTERNS.items()}
_URL = re.compile(
    r"(?:https?|ftp):\/\/(?:\S+(?::\S*)?@)?(?:(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|"
    r"192\.168)(?:\.\d{1,3}){2})(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})(?:[1-9]\d?|1\d\d|"
    r"2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|"
    r"25[0-4]))|(?:(?:[a-z0-9\u00a1-\uffff]+-)*[a-z0-9\u00a1-\uffff]+)(?:\.(?:[a-z0-9\u00a1-\uffff]+"
    r"-)*[a-z0-9\u00a1-\uffff]+)*(?:\.(?:[a-z\u00a1-\uffff]{2,})))(?::\d{2,5})?(?:\/[^\s]*)?\Z",
    re.IGNORECASE,
)
_BYTE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$", re.M)
_IPV6 = re.compile(
    rf"(?:(?:{_H16}:){{7}}(?:{_H16}|:)|(?:{_H16}:){{6}}(?::{_H16}|{_IPV4_IN_6}|:)|"
    rf"(?:{_H16}:){{5}}(?:(?::{_H16}){{1,2}}|:{_IPV4_IN_6}|:)|(?:{_H16}:){{4}}(?:(?::{_H16}){{1,3}}|"
    rf"(?::{_H16})?:{_IPV4_IN_6}|:)|(?:{_H16}:){{3}}(?:(?::{_H16}){{1,4}}|(?::{_H16}){{0,2}}:{_IPV4_IN_6}|:)|"
    rf"(?:{_H16}:){{2}}(?:(?::{_H16}){{1,5}}|(?::{_H16}){{0,3}}:{_IPV4_IN_6}|:)|"
    rf"(?:{_H16}:){{1}}(?:(?::{_H16}){{1,6}}|(?::{_H16}){{0,4}}:{_IPV4_IN_6}|:)|"
    rf"(?::(?:(?::{_H16}){{1,7}}|(?::{_H16}){{0,5}}:{_IPV4_IN_6}|:)))\Z",
    _FLAGS,
)


def _date(text: str) -> bool:
    found = _DATE.match(text)
    if not found:
        return False
    year, month, day = (int(g) for g in found.groups())
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= month <= 12 and 1 <= day <= (29 if month == 2 and leap else _DAYS[month])


def _time(text: str) -> bool:
    # ajv-formats 2.1.1 asks a date-time for a time zone but never finds one missing (it
    # compares an absent group with ""), so neither form requires one here.
    found = _TIME.match(text)
    if not found:
        return False
    hour, minute, second = int(found[1]), int(found[2]), int(found[3])
    return (hour <= 23 and minute <= 59 and second <= 59) or (hour, minute, second) == (23, 59, 60)


def _date_time(text: str) -> bool:
    parts = re.split(r"[tT\s]", text)
    return len(parts) == 2 and _date(parts[0]) and _time(parts[1])


def _regex(text: str) -> bool:
    if re.search(r"[^\\]\\Z", text):
        return False
    try:
        re.compile(text)
    except re.error:
        return False
    return True


def _integer(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _date,
    "time": _time,
    "date-time": _date_time,
    "uri": lambda text: re.search("[/:]", text) is not None and _URI.match(text) is not None,
    "uri-reference": lambda text: _URI_REFERENCE.match(text) is not None,
    "url": lambda text: _URL.match(text) is not None,
    "ipv6": lambda text: _IPV6.match(text) is not None,
    "regex": _regex,
    "byte": lambda text: _BYTE.search(text) is not None,
    **{name: pattern.match for name, pattern in _COMPILED.items()},  # type: ignore[dict-item]
}
_NUMBER_FORMATS: dict[str, Callable[[float], bool]] = {
    "int32": lambda value: _integer(value) and -(2**31) <= value <= 2**31 - 1,
    "int64": _integer,
}


def conforms(value: Any, format_name: str) -> bool:
    """Whether ``value`` is of ``format_name``, as ajv-formats (full) says."""
    if isinstance(value, str):
        check = _STRING_FORMATS.get(format_name)
        return check is None or bool(check(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        number_check = _NUMBER_FORMATS.get(format_name)
        return number_check is None or bool(number_check(value))
    return True


#: The formats ``conforms`` knows (others pass every value).
KNOWN = frozenset(_STRING_FORMATS) | frozenset(_NUMBER_FORMATS)
