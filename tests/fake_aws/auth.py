"""The fake's clock, its credential store and the check of each request's signature."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import string
import threading
import time
from dataclasses import dataclass

import sigv4
from protocol import ApiError

# AWS rejects a signature whose X-Amz-Date is more than 5 minutes from its own clock.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)

# Lifetime of the credentials that POST /__fake/expire {"scope": "next"} makes AssumeRole issue
# when the request gives no "lifetime_seconds": they expired this long before they were issued.
EXPIRED_AGO = dt.timedelta(minutes=1)


class Clock:
    """The fake's idea of the current time: the system clock plus an offset that tests set to
    simulate a client whose clock is off."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self.offset_seconds, dt.timezone.utc)


@dataclass
class Caller:
    """The identity behind the access key of an authenticated request."""

    access_key_id: str
    account_id: str
    arn: str
    user_id: str
    temporary: bool
    expiration: dt.datetime | None = None  # temporary credentials only
    session_token: str = ""
    secret_access_key: str = ""


def stable_id(prefix: str, seed: str) -> str:
    """Derive an AWS-style unique id, such as AIDA... for users, from a seed string."""
    alphabet = string.ascii_uppercase + "234567"
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return prefix + "".join(alphabet[byte % len(alphabet)] for byte in digest[:17])


class CredentialStore:
    """The base access keys from the key file and the temporary credentials that AssumeRole
    issued, each kept until the fake is reset."""

    def __init__(self, base_keys: dict[str, dict[str, str]], clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._base: dict[str, Caller] = {}
        for key_id, entry in base_keys.items():
            self._base[key_id] = Caller(
                access_key_id=key_id,
                account_id=entry["account_id"],
                arn=entry["user_arn"],
                user_id=stable_id("AIDA", entry["user_arn"]),
                temporary=False,
                secret_access_key=entry["secret_access_key"],
            )
        self._issued: dict[str, Caller] = {}
        self._issue_expired_next = 0
        self._next_lifetime = -EXPIRED_AGO

    def find(self, access_key_id: str) -> Caller | None:
        with self._lock:
            return self._base.get(access_key_id) or self._issued.get(access_key_id)

    def issue(self, account_id: str, arn: str, user_id: str, duration_seconds: int) -> Caller:
        now = self._clock.now().replace(microsecond=0)
        with self._lock:
            if self._issue_expired_next > 0:
                self._issue_expired_next -= 1
                expiration = now + self._next_lifetime
            else:
                expiration = now + dt.timedelta(seconds=duration_seconds)
            caller = Caller(
                access_key_id=stable_id("ASIA", secrets.token_hex(16))[:20],
                account_id=account_id,
                arn=arn,
                user_id=user_id,
                temporary=True,
                expiration=expiration,
                session_token=base64.b64encode(secrets.token_bytes(180)).decode("ascii"),
                secret_access_key=base64.b64encode(secrets.token_bytes(30)).decode("ascii"),
            )
            self._issued[caller.access_key_id] = caller
            return caller

    def issued_snapshot(self) -> list[dict]:
        """Every credential AssumeRole issued, secret parts included, oldest first."""
        with self._lock:
            return [
                {
                    "access_key_id": caller.access_key_id,
                    "secret_access_key": caller.secret_access_key,
                    "session_token": caller.session_token,
                    "arn": caller.arn,
                    "expiration": (
                        caller.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
                        if caller.expiration
                        else None
                    ),
                }
                for caller in self._issued.values()
            ]

    def expire_issued(self) -> int:
        """Set the expiration of every issued credential to one second ago; return their number."""
        past = self._clock.now() - dt.timedelta(seconds=1)
        with self._lock:
            for caller in self._issued.values():
                caller.expiration = min(caller.expiration or past, past)
            return len(self._issued)

    def issue_expired(self, count: int, lifetime: dt.timedelta = -EXPIRED_AGO) -> None:
        """Make the next `count` issued credentials expire `lifetime` after they are issued,
        whatever DurationSeconds asked for. The default lifetime is negative: already expired."""
        with self._lock:
            self._issue_expired_next = count
            self._next_lifetime = lifetime

    def reset(self) -> None:
        with self._lock:
            self._issued.clear()
            self._issue_expired_next = 0
            self._next_lifetime = -EXPIRED_AGO


@dataclass(frozen=True)
class AuthWording:
    """The error codes and statuses with which one service rejects a request's credentials."""

    missing_message: str
    invalid_key: tuple[int, str, str]  # unknown access key or a wrong session token
    skew_code: tuple[int, str]  # status and code for a time stamp too far from the clock
    skew_message_is_detailed: bool  # STS names the times, EC2 returns "Request has expired."


def _expired_message(amz_date: dt.datetime, now: dt.datetime) -> str:
    """Word a clock-skew rejection the way STS does, with times in the ISO 8601 basic form."""
    fmt = sigv4.format_amz_date
    if amz_date < now:
        return (
            f"Signature expired: {fmt(amz_date)} is now earlier than"
            f" {fmt(now - MAX_CLOCK_SKEW)} ({fmt(now)} - 5 min.)"
        )
    return (
        f"Signature not yet current: {fmt(amz_date)} is still later than"
        f" {fmt(now + MAX_CLOCK_SKEW)} ({fmt(now)} + 5 min.)"
    )


@dataclass
class SignedRequest:
    """What the signature check reads from an HTTP request, exactly as it arrived."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for header_name, value in self.headers:
            if header_name.lower() == name:
                return value
        return None


class Authenticator:
    """Check a request's SigV4 signature, scope, time stamp and session token."""

    def __init__(self, store: CredentialStore, clock: Clock, region: str) -> None:
        self._store = store
        self._clock = clock
        self._region = region

    def authenticate(self, request: SignedRequest, service: str, wording: AuthWording) -> Caller:
        """Return the caller of a correctly signed request for `service`, or raise ApiError
        with the code that AWS gives for the first problem found."""
        header = request.header("authorization")
        if header is None:
            raise ApiError(403, "MissingAuthenticationToken", wording.missing_message)
        try:
            authorization = sigv4.parse_authorization(header)
            amz_date_text = request.header("x-amz-date")
            amz_date = sigv4.parse_amz_date(amz_date_text)
        except sigv4.AuthorizationError as error:
            raise ApiError(400, "IncompleteSignature", str(error)) from None

        self._check_scope(authorization, amz_date_text or "", service)
        caller = self._find_caller(authorization, request, wording)
        self._check_signature(authorization, amz_date_text or "", request, caller)
        self._check_time(amz_date, wording)
        if caller.expiration is not None and caller.expiration <= self._clock.now():
            # NOTE: STS rejects an expired session token with ExpiredToken. EC2 is reported to
            # return RequestExpired for some expired tokens instead, but this fake always
            # returns ExpiredToken.
            raise ApiError(
                403, "ExpiredToken", "The security token included in the request is expired"
            )
        return caller

    def _check_scope(self, authorization: sigv4.Authorization, amz_date: str, service: str) -> None:
        if authorization.scope_date != amz_date[:8]:
            raise ApiError(
                403,
                "SignatureDoesNotMatch",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of"
                f" date from HTTP: '{authorization.scope_date}' != '{amz_date[:8]}',"
                f" from '{amz_date}'.",
            )
        if authorization.service != service:
            raise ApiError(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to correct service: '{service}'. ",
            )
        if authorization.region != self._region:
            raise ApiError(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to a valid region, not '{authorization.region}'."
                f" This fake serves '{self._region}'.",
            )

    def _find_caller(
        self, authorization: sigv4.Authorization, request: SignedRequest, wording: AuthWording
    ) -> Caller:
        status, code, message = wording.invalid_key
        caller = self._store.find(authorization.access_key_id)
        if caller is None:
            raise ApiError(status, code, message)
        token = request.header("x-amz-security-token")
        if caller.temporary:
            if token is None or not secrets.compare_digest(token, caller.session_token):
                raise ApiError(status, code, message)
        elif token is not None:
            raise ApiError(status, code, message)
        return caller

    def _check_signature(
        self,
        authorization: sigv4.Authorization,
        amz_date: str,
        request: SignedRequest,
        caller: Caller,
    ) -> None:
        for required in ("host", "x-amz-date"):
            if required not in authorization.signed_headers:
                raise ApiError(
                    403,
                    "SignatureDoesNotMatch",
                    f"'{required}' must be a 'SignedHeader' in the AWS Authorization.",
                )
        try:
            canonical = sigv4.canonical_request(
                request.method,
                request.raw_path,
                request.raw_query,
                request.headers,
                authorization.signed_headers,
                request.body,
            )
        except KeyError as error:
            raise ApiError(
                403,
                "SignatureDoesNotMatch",
                f"The header {error.args[0]} is listed in SignedHeaders but is not in the request.",
            ) from None
        expected = sigv4.expected_signature(
            caller.secret_access_key, authorization, amz_date, canonical
        )
        if not sigv4.signature_matches(expected, authorization.signature):
            raise ApiError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you"
                " provided. Check your AWS Secret Access Key and signing method. Consult the"
                " service documentation for details.",
            )

    def _check_time(self, amz_date: dt.datetime, wording: AuthWording) -> None:
        now = self._clock.now()
        if abs(now - amz_date) <= MAX_CLOCK_SKEW:
            return
        status, code = wording.skew_code
        if wording.skew_message_is_detailed:
            raise ApiError(status, code, _expired_message(amz_date, now.replace(microsecond=0)))
        raise ApiError(status, code, "Request has expired.")
