"""The fake STS: AssumeRole and GetCallerIdentity of API version 2011-06-15.

Parameters are checked against the limits in the STS API reference, and every violation is
listed in one ValidationError, as STS words it: "2 validation errors detected: Value 'x' at
'roleSessionName' failed to satisfy constraint: ...". Any role ARN of the right form may be
assumed unless the key file lists roles, and no IAM policy is evaluated.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from auth import Caller, CredentialStore, stable_id
from protocol import ApiError, Dialect, Params, add, to_bytes

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"
ACTIONS = ("AssumeRole", "GetCallerIdentity")

ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
SESSION_NAME = re.compile(r"[\w+=,.@-]*")
SERIAL_NUMBER = re.compile(r"[\w+=/:,.@-]*")
# \w covers the letters and digits of every script, as \p{L} and \p{N} do in the STS pattern.
TAG_TEXT = re.compile(r"[\w\s.:/=+@-]*")

MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
# Credentials from AssumeRole called with temporary credentials (role chaining) last an hour.
ROLE_CHAINING_MAX_DURATION = 3600
MAX_POLICY_LENGTH = 2048
MAX_SESSION_TAGS = 50


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _validation_error(violations: list[str]) -> ApiError:
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return ApiError(
        400, "ValidationError", f"{count} validation {noun} detected: " + "; ".join(violations)
    )


def _violation(name: str, value: str | None, constraint: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return (
        f"Value {shown} at '{_camel(name)}' failed to satisfy constraint: Member must {constraint}"
    )


DIALECT = Dialect(
    missing=lambda name: _validation_error([_violation(name, None, "not be null")]),
    unknown=lambda name: ApiError(
        400, "ValidationError", f"The parameter {name} is not a parameter of this action"
    ),
    invalid=lambda name, value, reason: _validation_error(
        [_violation(name, value, reason.removeprefix("must "))]
    ),
)


def error_body(error: ApiError, request_id: str) -> bytes:
    root = ET.Element("ErrorResponse", xmlns=NAMESPACE)
    detail = add(root, "Error")
    add(detail, "Type", "Receiver" if error.status >= 500 else "Sender")
    add(detail, "Code", error.code)
    add(detail, "Message", error.message)
    add(root, "RequestId", request_id)
    return to_bytes(root)


@dataclass
class StsSettings:
    """What the key file configures for STS."""

    mfa_serial_number: str | None = None
    mfa_token_code: str | None = None
    # Role ARN -> {"max_session_duration": seconds, "mfa_required": bool}. Empty: any role.
    roles: dict[str, dict] = field(default_factory=dict)


class LengthChecks:
    """Collects STS constraint violations so that one ValidationError lists them all."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def text(
        self, name: str, value: str | None, minimum: int, maximum: int, pattern: re.Pattern
    ) -> None:
        if value is None:
            return
        if len(value) < minimum:
            self.violations.append(
                _violation(name, value, f"have length greater than or equal to {minimum}")
            )
        if len(value) > maximum:
            self.violations.append(
                _violation(name, value, f"have length less than or equal to {maximum}")
            )
        if not pattern.fullmatch(value):
            self.violations.append(
                _violation(name, value, f"satisfy regular expression pattern: {pattern.pattern}")
            )

    def raise_any(self) -> None:
        if self.violations:
            raise _validation_error(self.violations)


class Sts:
    def __init__(self, store: CredentialStore, settings: StsSettings) -> None:
        self._store = store
        self._settings = settings

    def handle(self, action: str, params: Params, caller: Caller, request_id: str) -> bytes:
        if action == "AssumeRole":
            root = self._assume_role(params, caller)
        else:
            params.reject_unread()
            root = self._get_caller_identity(caller)
        metadata = add(root, "ResponseMetadata")
        add(metadata, "RequestId", request_id)
        return to_bytes(root)

    def _get_caller_identity(self, caller: Caller) -> ET.Element:
        root = ET.Element("GetCallerIdentityResponse", xmlns=NAMESPACE)
        result = add(root, "GetCallerIdentityResult")
        add(result, "Arn", caller.arn)
        add(result, "UserId", caller.user_id)
        add(result, "Account", caller.account_id)
        return root

    def _assume_role(self, params: Params, caller: Caller) -> ET.Element:
        role_arn = params.require("RoleArn")
        session_name = params.require("RoleSessionName")
        duration_text = params.take("DurationSeconds")
        policy = params.take("Policy")
        source_identity = params.take("SourceIdentity")
        serial_number = params.take("SerialNumber")
        token_code = params.take("TokenCode")
        tags = params.take_indexed("Tags.member")
        params.reject_unread()

        checks = LengthChecks()
        match = ROLE_ARN.fullmatch(role_arn)
        if match is None or not 20 <= len(role_arn) <= 2048:
            checks.violations.append(
                _violation(
                    "RoleArn",
                    role_arn,
                    "be an IAM role ARN such as" " arn:aws:iam::123456789012:role/NAME",
                )
            )
        checks.text("RoleSessionName", session_name, 2, 64, SESSION_NAME)
        checks.text("SourceIdentity", source_identity, 2, 64, SESSION_NAME)
        checks.text("SerialNumber", serial_number, 9, 256, SERIAL_NUMBER)
        checks.text("TokenCode", token_code, 6, 6, re.compile(r"[0-9]*"))
        duration = self._check_duration(duration_text, checks)
        if policy is not None and len(policy) > MAX_POLICY_LENGTH:
            checks.violations.append(
                _violation(
                    "Policy", "***", f"have length less than or equal to {MAX_POLICY_LENGTH}"
                )
            )
        self._check_tags(tags, checks)
        checks.raise_any()

        if source_identity is not None and source_identity.lower().startswith("aws:"):
            raise ApiError(400, "ValidationError", "SourceIdentity must not start with 'aws:'")
        if policy is not None:
            self._check_policy(policy)
        role = self._find_role(role_arn, caller)
        self._check_mfa(serial_number, token_code, role.get("mfa_required", False))
        self._check_duration_limits(duration, role, caller)

        assert match is not None
        account_id, role_name = match.group(1), match.group(2)
        role_id = stable_id("AROA", role_arn)
        issued = self._store.issue(
            account_id=account_id,
            arn=f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}",
            user_id=f"{role_id}:{session_name}",
            duration_seconds=duration,
        )
        return self._assume_role_response(issued, source_identity)

    @staticmethod
    def _check_duration(text: str | None, checks: LengthChecks) -> int:
        if text is None:
            return DEFAULT_DURATION
        if not re.fullmatch(r"[0-9]{1,9}", text):
            checks.violations.append(_violation("DurationSeconds", text, "be an integer"))
            return DEFAULT_DURATION
        value = int(text)
        if value < MIN_DURATION:
            checks.violations.append(
                _violation(
                    "DurationSeconds", text, f"have value greater than or equal to {MIN_DURATION}"
                )
            )
        if value > MAX_DURATION:
            checks.violations.append(
                _violation(
                    "DurationSeconds", text, f"have value less than or equal to {MAX_DURATION}"
                )
            )
        return value

    @staticmethod
    def _check_tags(tags: list[tuple[int, dict[str, str]]], checks: LengthChecks) -> None:
        if len(tags) > MAX_SESSION_TAGS:
            checks.violations.append(
                _violation("Tags", f"{len(tags)} tags", f"have at most {MAX_SESSION_TAGS} members")
            )
        seen = set()
        for index, group in tags:
            for rest in sorted(set(group) - {"Key", "Value"}):
                raise DIALECT.unknown(f"Tags.member.{index}.{rest}")
            key, value = group.get("Key"), group.get("Value")
            if key is None or value is None:
                raise DIALECT.missing(f"Tags.member.{index}." + ("Key" if key is None else "Value"))
            checks.text(f"Tags.member.{index}.Key", key, 1, 128, TAG_TEXT)
            checks.text(f"Tags.member.{index}.Value", value, 0, 256, TAG_TEXT)
            if key.lower() in seen:
                checks.violations.append(
                    _violation(
                        f"Tags.member.{index}.Key",
                        key,
                        "be unique, compared without regard to case",
                    )
                )
            seen.add(key.lower())

    @staticmethod
    def _check_policy(policy: str) -> None:
        try:
            document = json.loads(policy)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ApiError(
                400, "MalformedPolicyDocument", "The policy is not in the valid JSON format."
            )

    def _find_role(self, role_arn: str, caller: Caller) -> dict:
        if not self._settings.roles:
            return {}
        role = self._settings.roles.get(role_arn)
        if role is None:
            raise ApiError(
                403,
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource:"
                f" {role_arn}",
            )
        return role

    def _check_mfa(self, serial_number: str | None, token_code: str | None, required: bool) -> None:
        if serial_number is None and token_code is None:
            if required:
                raise ApiError(
                    403,
                    "AccessDenied",
                    "MultiFactorAuthentication failed: the role requires"
                    " SerialNumber and TokenCode",
                )
            return
        if serial_number is None or token_code is None:
            raise ApiError(
                400, "ValidationError", "SerialNumber and TokenCode must be given together"
            )
        if (
            serial_number != self._settings.mfa_serial_number
            or token_code != self._settings.mfa_token_code
        ):
            raise ApiError(
                403,
                "AccessDenied",
                "MultiFactorAuthentication failed with invalid MFA one time pass code.",
            )

    @staticmethod
    def _check_duration_limits(duration: int, role: dict, caller: Caller) -> None:
        if caller.temporary and duration > ROLE_CHAINING_MAX_DURATION:
            raise ApiError(
                400,
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles"
                " assumed by role chaining.",
            )
        if duration > role.get("max_session_duration", MAX_DURATION):
            raise ApiError(
                400,
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )

    @staticmethod
    def _assume_role_response(issued: Caller, source_identity: str | None) -> ET.Element:
        assert issued.expiration is not None
        root = ET.Element("AssumeRoleResponse", xmlns=NAMESPACE)
        result = add(root, "AssumeRoleResult")
        if source_identity is not None:
            add(result, "SourceIdentity", source_identity)
        user = add(result, "AssumedRoleUser")
        add(user, "Arn", issued.arn)
        add(user, "AssumedRoleId", issued.user_id)
        credentials = add(result, "Credentials")
        add(credentials, "AccessKeyId", issued.access_key_id)
        add(credentials, "SecretAccessKey", issued.secret_access_key)
        add(credentials, "SessionToken", issued.session_token)
        add(credentials, "Expiration", issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return root
