"""Verification of AWS Signature Version 4 in the Authorization header, for the fake.

This is an implementation of its own, written from the published signing rules and not
shared with jitbox's C++ signer, so that a bug in one does not hide the same bug in the
other. It rebuilds the canonical request from what arrived on the wire:

    METHOD \\n CANONICAL_PATH \\n CANONICAL_QUERY \\n CANONICAL_HEADERS \\n
    SIGNED_HEADERS \\n hex(sha256(body))

The canonical path is the received path with dot segments removed and repeated slashes
merged, percent-encoded once more (the rule for every service except S3). The canonical
query decodes each name and value and encodes them again with only A-Z a-z 0-9 - _ . ~
left as they are, sorted by name and then value. Header values are trimmed and inner runs of
spaces become one space. Presigned URLs (X-Amz-Signature in the query) are not supported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import posixpath
import re
import urllib.parse
from dataclasses import dataclass

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


class AuthorizationError(Exception):
    """A malformed Authorization header or X-Amz-Date, which AWS calls IncompleteSignature."""


@dataclass(frozen=True)
class Authorization:
    """The parsed parts of an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
    header."""

    access_key_id: str
    scope_date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthorizationError(f"Unsupported AWS 'algorithm': '{algorithm}'")

    fields = {}
    for part in rest.split(","):
        name, equals, field_value = part.strip().partition("=")
        if equals:
            fields[name] = field_value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise AuthorizationError(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )

    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request" or not credential[0]:
        raise AuthorizationError(
            "Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request,"
            f" got '{fields['Credential']}'"
        )
    if not re.fullmatch(r"[0-9]{8}", credential[1]):
        raise AuthorizationError(f"Invalid date '{credential[1]}' in the credential scope")
    signed_headers = tuple(fields["SignedHeaders"].split(";"))
    if list(signed_headers) != sorted(signed_headers) or any(
        name != name.lower() or not name for name in signed_headers
    ):
        raise AuthorizationError(
            "SignedHeaders must list lower-case header names sorted and separated by ';'"
        )
    if not re.fullmatch(r"[0-9a-f]{64}", fields["Signature"]):
        raise AuthorizationError("Signature must be 64 lower-case hex digits")
    return Authorization(
        access_key_id=credential[0],
        scope_date=credential[1],
        region=credential[2],
        service=credential[3],
        signed_headers=signed_headers,
        signature=fields["Signature"],
    )


def parse_amz_date(text: str | None) -> dt.datetime:
    if not text:
        raise AuthorizationError(
            "Authorization header requires existence of an 'X-Amz-Date' header"
            " (this fake does not accept the 'Date' header in its place)"
        )
    try:
        return dt.datetime.strptime(text, AMZ_DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise AuthorizationError(
            f"X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ, got '{text}'"
        ) from None


def format_amz_date(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime(AMZ_DATE_FORMAT)


def _uri_encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def canonical_path(raw_path: str) -> str:
    path = posixpath.normpath(raw_path) if raw_path not in ("", "/") else "/"
    # normpath keeps a leading "//" and drops a trailing slash, which the signing rules keep.
    path = "/" + path.lstrip("/")
    if raw_path.endswith("/") and not path.endswith("/"):
        path += "/"
    return urllib.parse.quote(path, safe="/-_.~")


def canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        pairs.append(
            (
                _uri_encode(urllib.parse.unquote(name)),
                _uri_encode(urllib.parse.unquote(value)),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(headers: list[tuple[str, str]], signed_headers: tuple[str, ...]) -> str:
    """Build the canonical header block. A signed header missing from the request raises
    KeyError with its name."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = []
    for name in signed_headers:
        if name not in values:
            raise KeyError(name)
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    signed_headers: tuple[str, ...],
    body: bytes,
) -> str:
    return "\n".join(
        [
            method,
            canonical_path(raw_path),
            canonical_query(raw_query),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def expected_signature(
    secret_access_key: str, authorization: Authorization, amz_date: str, request: str
) -> str:
    key = signing_key(
        secret_access_key, authorization.scope_date, authorization.region, authorization.service
    )
    text = string_to_sign(amz_date, authorization.scope, request)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_matches(expected: str, received: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), received.encode("ascii"))
