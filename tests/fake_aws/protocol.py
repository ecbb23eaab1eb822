"""Parts of the AWS Query protocol that the fake STS and the fake EC2 share.

The Query protocol sends an Action, a Version and flat parameters such as
`TagSpecification.1.Tag.2.Key=Name`, in the query string or in a form-encoded body, and
returns XML. This module holds the error type, the parameter reader and XML helpers.
It is test code for jitbox and never talks to AWS.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Iterable

# Parameters that the request log shows as "***" because they are secrets or hold policy text
# that tests have no reason to read back.
MASKED_PARAMETERS = frozenset({"Policy", "TokenCode", "SessionToken", "SecretAccessKey"})
MASK = "***"


class ApiError(Exception):
    """An error response of an AWS service: HTTP status, AWS error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Dialect:
    """The error codes and wording that one service uses for bad parameters."""

    missing: Callable[[str], ApiError]
    unknown: Callable[[str], ApiError]
    invalid: Callable[[str, str, str], ApiError]  # name, value, reason


class Params:
    """The parameters of one request, read by name so that leftovers can be rejected.

    Every `take*` call marks the names it reads. `reject_unread` raises the dialect's
    unknown-parameter error for the first name that no handler read, so a misspelled or
    unsupported parameter fails the request instead of being ignored.
    """

    def __init__(self, values: dict[str, str], dialect: Dialect) -> None:
        self._values = values
        self._unread = set(values)
        self.dialect = dialect

    def unread_values(self) -> dict[str, str]:
        """Return the names and values that no `take*` call has read yet."""
        return {name: self._values[name] for name in self._unread}

    def take(self, name: str) -> str | None:
        self._unread.discard(name)
        return self._values.get(name)

    def require(self, name: str) -> str:
        value = self.take(name)
        if value is None or value == "":
            raise self.dialect.missing(name)
        return value

    def take_int(self, name: str, minimum: int, maximum: int) -> int | None:
        text = self.take(name)
        if text is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,12}", text):
            raise self.dialect.invalid(name, text, "must be an integer")
        value = int(text)
        if not minimum <= value <= maximum:
            raise self.dialect.invalid(name, text, f"must be between {minimum} and {maximum}")
        return value

    def take_bool(self, name: str) -> bool | None:
        text = self.take(name)
        if text is None:
            return None
        if text not in ("true", "false"):
            raise self.dialect.invalid(name, text, "must be true or false")
        return text == "true"

    def take_choice(self, name: str, choices: Iterable[str]) -> str | None:
        text = self.take(name)
        allowed = tuple(choices)
        if text is not None and text not in allowed:
            raise self.dialect.invalid(name, text, "must be one of " + ", ".join(allowed))
        return text

    def take_indexed(self, prefix: str) -> list[tuple[int, dict[str, str]]]:
        """Read every parameter `PREFIX.N` and `PREFIX.N.REST`, grouped by N in rising order.

        Each group maps REST to its value, with "" for `PREFIX.N` itself. N must be a
        positive integer without leading zeros, as the AWS CLI and SDKs send it.
        """
        groups: dict[int, dict[str, str]] = {}
        start = prefix + "."
        for name in [name for name in self._values if name.startswith(start)]:
            index_text, _, rest = name[len(start) :].partition(".")
            if not re.fullmatch(r"[1-9][0-9]{0,5}", index_text):
                raise self.dialect.invalid(name, self._values[name], "has an invalid list index")
            self._unread.discard(name)
            groups.setdefault(int(index_text), {})[rest] = self._values[name]
        return sorted(groups.items())

    def take_list(self, prefix: str) -> list[str]:
        """Read a list of plain values `PREFIX.1`, `PREFIX.2`, ... in index order."""
        values = []
        for index, group in self.take_indexed(prefix):
            extra = [rest for rest in group if rest != ""]
            if extra:
                raise self.dialect.unknown(f"{prefix}.{index}.{extra[0]}")
            values.append(group[""])
        return values

    def reject_unread(self) -> None:
        for name in sorted(self._unread):
            raise self.dialect.unknown(name)


def check_struct_fields(
    dialect: Dialect, prefix: str, group: dict[str, str], allowed: Iterable[str]
) -> None:
    """Raise the unknown-parameter error for a member of `PREFIX.N.*` outside `allowed`."""
    known = set(allowed)
    for rest in sorted(group):
        if rest not in known:
            name = f"{prefix}.{rest}" if rest else prefix
            raise dialect.unknown(name)


def masked(parameters: dict[str, str]) -> dict[str, str]:
    """Copy request parameters with secret and policy values replaced by "***"."""
    return {
        name: MASK if name in MASKED_PARAMETERS else value
        for name, value in sorted(parameters.items())
    }


# --- XML ------------------------------------------------------------------------------------------


def add(parent: ET.Element, tag: str, text: object = None) -> ET.Element:
    """Append a child element, with `text` as its text unless it is None."""
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text).lower() if isinstance(text, bool) else str(text)
    return child


def to_bytes(root: ET.Element) -> bytes:
    """Serialize a response document with the XML declaration that AWS sends."""
    text = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode("utf-8")
