#!/usr/bin/env python3
"""A fake of the AWS STS and EC2 Query APIs on 127.0.0.1, for jitbox's tests. Not AWS.

It serves both services on one port and distinguishes them by the service in the credential
scope of the Authorization header (`sts` or `ec2`), or by the Action when that header is
missing. Every request must carry a SigV4 signature that the fake verifies itself (see
sigv4.py) with a key from the key file or a temporary key that its AssumeRole issued. Errors
come in the XML shapes of the real services, with their codes.

Usage:
    fake_aws.py --keys KEYS.json [--port-file FILE] [--port N] [--region us-east-1]
                [--pending-seconds S] [--shutting-down-seconds S] [--max-instances N]
                [--exit-with-pid PID] [--verbose]

The key file is JSON:
    {
      "access_keys": {"AKIA...": {"secret_access_key": "...", "account_id": "123456789012",
                                  "user_arn": "arn:aws:iam::123456789012:user/NAME"}},
      "mfa": {"serial_number": "arn:aws:iam::123456789012:mfa/NAME", "token_code": "123456"},
      "roles": {"arn:aws:iam::123456789012:role/NAME": {"max_session_duration": 3600,
                                                         "mfa_required": false}},
      "images": {"ami-0123456789abcdef0": {"name": "NAME", "root_device_name": "/dev/xvda"}}
    }
Only "access_keys" is required. Without "roles", any well-formed role ARN can be assumed.

A control interface on the same port takes unsigned requests:
    GET  /__fake/requests   every request: action, masked parameters, status and verdict
    GET  /__fake/instances  every instance with its tags and decoded user data
    GET  /__fake/credentials  every credential AssumeRole issued, with its secret access key
                            and session token, so that a test can search for them
    POST /__fake/fail       {"action": A, "count": N, "status": S, "code": C, "message": M}
                            makes the next N authenticated calls of A fail with that error
    POST /__fake/delay      {"action": A, "milliseconds": N} delays every call of A (0 ends it)
    POST /__fake/clock      {"offset_seconds": N} sets the fake's clock to system time + N
    POST /__fake/expire     {"scope": "issued"} expires every credential AssumeRole issued;
                            {"scope": "next", "count": N} makes the next N AssumeRole calls
                            issue credentials that expired a minute before, or that expire
                            "lifetime_seconds": S after they are issued when S is given
    POST /__fake/reset      forgets instances, issued credentials, the request log, failures,
                            delays and the clock offset
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import ec2
import sts
from auth import Authenticator, AuthWording, Caller, Clock, CredentialStore, SignedRequest
from protocol import ApiError, Dialect, Params, masked

LISTEN_ADDRESS = "127.0.0.1"
MAX_BODY_BYTES = 1024 * 1024
MAX_LOGGED_REQUESTS = 10000
# The maximum "lifetime_seconds" of POST /__fake/expire {"scope": "next"}. It is the minimum
# DurationSeconds of STS, so the credentials it issues are always shorter than AssumeRole's.
MAX_SHORT_LIFETIME = 900

log = logging.getLogger("fake_aws")

STS_AUTH = AuthWording(
    missing_message="Request is missing Authentication Token",
    invalid_key=(
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    ),
    skew_code=(403, "SignatureDoesNotMatch"),
    skew_message_is_detailed=True,
)
# EC2 rejects an unknown access key with AuthFailure and status 401, not InvalidClientTokenId.
EC2_AUTH = AuthWording(
    missing_message="The request must contain either a valid (registered) AWS access key ID"
    " or X.509 certificate.",
    invalid_key=(
        401,
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    ),
    skew_code=(400, "RequestExpired"),
    skew_message_is_detailed=False,
)


class ConfigError(Exception):
    pass


def load_key_file(path: Path) -> dict:
    """Read and check the key file described in the module docstring."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read key file {path}: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("access_keys"), dict):
        raise ConfigError(f'key file {path} needs an object "access_keys"')
    for key_id, entry in config["access_keys"].items():
        fields = ("secret_access_key", "account_id", "user_arn")
        if not isinstance(entry, dict) or any(not isinstance(entry.get(f), str) for f in fields):
            raise ConfigError(
                f"access key {key_id} in {path} needs the strings " + ", ".join(fields)
            )
        if not re.fullmatch(r"[0-9]{12}", entry["account_id"]):
            raise ConfigError(f"account_id of {key_id} in {path} must be 12 digits")
    for name in ("mfa", "roles", "images"):
        if not isinstance(config.get(name, {}), dict):
            raise ConfigError(f'"{name}" in key file {path} must be an object')
    return config


class Fake:
    """Everything the fake remembers, shared by the request threads."""

    def __init__(self, config: dict, args: argparse.Namespace) -> None:
        self.clock = Clock()
        self.store = CredentialStore(config["access_keys"], self.clock)
        self.authenticator = Authenticator(self.store, self.clock, args.region)
        mfa = config.get("mfa", {})
        self.sts = sts.Sts(
            self.store,
            sts.StsSettings(
                mfa_serial_number=mfa.get("serial_number"),
                mfa_token_code=mfa.get("token_code"),
                roles=config.get("roles", {}),
            ),
        )
        self.ec2 = ec2.Ec2(
            self.clock,
            args.region,
            config.get("images", {}),
            args.pending_seconds,
            args.shutting_down_seconds,
            args.max_instances,
        )
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.failures: dict[str, dict] = {}  # action -> {"count", "status", "code", "message"}
        self.delays: dict[str, int] = {}  # action -> milliseconds

    def record(self, entry: dict) -> None:
        with self.lock:
            if len(self.requests) >= MAX_LOGGED_REQUESTS:
                del self.requests[0]
            self.requests.append(entry)

    def take_failure(self, action: str) -> ApiError | None:
        with self.lock:
            rule = self.failures.get(action)
            if rule is None:
                return None
            rule["count"] -= 1
            if rule["count"] <= 0:
                del self.failures[action]
            return ApiError(rule["status"], rule["code"], rule["message"])

    def delay_of(self, action: str) -> float:
        with self.lock:
            return self.delays.get(action, 0) / 1000.0

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.failures.clear()
            self.delays.clear()
        self.clock.offset_seconds = 0.0
        self.store.reset()
        self.ec2.reset()


class Service:
    """One of the two fake services: its module, its authentication errors and API version."""

    def __init__(self, name: str, module, auth: AuthWording, version: str) -> None:
        self.name = name
        self.module = module
        self.auth = auth
        self.version = version
        self.actions: tuple[str, ...] = module.ACTIONS
        self.dialect: Dialect = module.DIALECT

    def invalid_action(self, action: str) -> ApiError:
        if self.name == "sts":
            return ApiError(
                400,
                "InvalidAction",
                f"Could not find operation {action} for version {self.version}",
            )
        return ApiError(
            400, "InvalidAction", f"The action {action} is not valid for this web service."
        )


SERVICES = {
    "sts": Service("sts", sts, STS_AUTH, sts.VERSION),
    "ec2": Service("ec2", ec2, EC2_AUTH, ec2.VERSION),
}


def pick_service(authorization: str | None, action: str | None) -> Service:
    """Choose the service from the credential scope, else from the action, else STS."""
    match = re.search(r"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([^/,\s]*)/", authorization or "")
    if match and match.group(1) in SERVICES:
        return SERVICES[match.group(1)]
    for service in SERVICES.values():
        if action in service.actions:
            return service
    return SERVICES["sts"]


class BadRequest(Exception):
    """A request that is not valid HTTP for the fake: too large, chunked, or not form data."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "jitbox-fake-aws"
    sys_version = ""
    server: "FakeServer"

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header shows the fake's clock, offset included, as AWS shows its own clock.
        return email.utils.format_datetime(self.server.fake.clock.now(), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send(403, b"only loopback clients are served\n", "text/plain")
            self.close_connection = True
            return
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except BadRequest as error:
            log.info("rejected a request for %s: %s", raw_path, error)
            self._send(400, f"{error}\n".encode(), "text/plain")
            self.close_connection = True
            return
        if raw_path.startswith("/__fake/"):
            self._control(raw_path, body)
            return
        self._api(raw_path, raw_query, body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("chunked request bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            raise BadRequest(f"Content-Length must be 0 to {MAX_BODY_BYTES}, got {length_text}")
        return self.rfile.read(int(length_text))

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    # --- the AWS APIs -----------------------------------------------------------------------------

    def _api(self, raw_path: str, raw_query: str, body: bytes) -> None:
        fake = self.server.fake
        request_id = str(uuid.uuid4())
        authorization = self.headers.get("Authorization")
        try:
            values = self._parameters(raw_query, body)
        except ValueError as error:
            values = {}
            parse_error: str | None = str(error)
        else:
            parse_error = None
        action = values.get("Action")
        service = pick_service(authorization, action)
        entry = {
            "time": fake.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "service": service.name,
            "action": action,
            "access_key_id": None,
            "parameters": masked(values),
        }
        delay = fake.delay_of(action or "")
        if delay > 0:
            time.sleep(delay)

        try:
            if parse_error is not None:
                raise service.dialect.invalid("request", "body", parse_error)
            request = SignedRequest(
                method=self.command,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=list(self.headers.items()),
                body=body,
            )
            caller = fake.authenticator.authenticate(request, service.name, service.auth)
            entry["access_key_id"] = caller.access_key_id
            response = self._run_action(service, values, caller, request_id)
        except ApiError as error:
            self._send_error(service, error, request_id, entry)
        except Exception:
            log.exception(
                "request %s (%s %s) failed inside the fake", request_id, service.name, action
            )
            error = ApiError(500, "InternalFailure", "The fake failed; see its log")
            self._send_error(service, error, request_id, entry)
        else:
            entry.update(status=200, verdict="ok")
            fake.record(entry)
            log.info("%s %s by %s: 200", service.name, action, entry["access_key_id"])
            self._send(200, response, "text/xml", {"x-amzn-RequestId": request_id})

    def _parameters(self, raw_query: str, body: bytes) -> dict[str, str]:
        """Merge the query string and a form-encoded body; a name given twice is an error."""
        sources = [raw_query]
        if body:
            content_type = self.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                raise ValueError(
                    f"Content-Type '{content_type}' is not application/x-www-form-urlencoded"
                )
            sources.append(body.decode("utf-8"))
        values: dict[str, str] = {}
        for source in sources:
            for name, value in urllib.parse.parse_qsl(
                source, keep_blank_values=True, errors="strict"
            ):
                if name in values:
                    raise ValueError(f"parameter {name} is given more than once")
                values[name] = value
        return values

    def _run_action(
        self, service: Service, values: dict[str, str], caller: Caller, request_id: str
    ) -> bytes:
        params = Params(dict(values), service.dialect)
        action = params.take("Action")
        if not action:
            raise ApiError(
                400, "MissingAction", "The request is missing an action or a required parameter."
            )
        if action not in service.actions:
            raise service.invalid_action(action)
        version = params.require("Version")
        if version != service.version:
            if service.name == "sts":
                raise ApiError(
                    400, "InvalidAction", f"Could not find operation {action} for version {version}"
                )
            raise service.dialect.invalid("Version", version, f"must be {service.version}")
        injected = self.server.fake.take_failure(action)
        if injected is not None:
            raise injected
        handler = self.server.fake.sts if service.name == "sts" else self.server.fake.ec2
        return handler.handle(action, params, caller, request_id)

    def _send_error(self, service: Service, error: ApiError, request_id: str, entry: dict) -> None:
        entry.update(status=error.status, verdict=error.code, message=error.message)
        self.server.fake.record(entry)
        log.info(
            "%s %s by %s: %d %s",
            service.name,
            entry["action"],
            entry["access_key_id"],
            error.status,
            error.code,
        )
        body = service.module.error_body(error, request_id)
        self._send(error.status, body, "text/xml", {"x-amzn-RequestId": request_id})

    # --- the control interface --------------------------------------------------------------------

    def _control(self, path: str, body: bytes) -> None:
        fake = self.server.fake
        routes = {
            ("GET", "/__fake/requests"): lambda _: {"requests": list(fake.requests)},
            ("GET", "/__fake/instances"): lambda _: {"instances": fake.ec2.snapshot()},
            ("GET", "/__fake/credentials"): lambda _: {"credentials": fake.store.issued_snapshot()},
            ("POST", "/__fake/fail"): self._control_fail,
            ("POST", "/__fake/delay"): self._control_delay,
            ("POST", "/__fake/clock"): self._control_clock,
            ("POST", "/__fake/expire"): self._control_expire,
            ("POST", "/__fake/reset"): self._control_reset,
        }
        route = routes.get((self.command, path))
        if route is None:
            known = any(route_path == path for _, route_path in routes)
            status = 405 if known else 404
            log.info("control %s %s: %d", self.command, path, status)
            self._send_json(status, {"error": f"no {self.command} {path} in the control interface"})
            return
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
            result = route(request)
        except (ValueError, KeyError, TypeError) as error:
            log.info("control %s %s: 400 %s", self.command, path, error)
            self._send_json(400, {"error": f"{path}: {error}"})
            return
        log.info("control %s %s", self.command, path)
        self._send_json(200, result)

    def _send_json(self, status: int, document: dict) -> None:
        self._send(status, (json.dumps(document, indent=1) + "\n").encode(), "application/json")

    def _control_fail(self, request: dict) -> dict:
        action = _require_text(request, "action")
        rule = {
            "count": _integer(request, "count", 1, 1, 1000000),
            "status": _integer(request, "status", 500, 400, 599),
            "code": request.get("code", "InternalFailure"),
            "message": request.get("message", "Failure injected by POST /__fake/fail"),
        }
        with self.server.fake.lock:
            self.server.fake.failures[action] = rule
        return {"action": action, **rule}

    def _control_delay(self, request: dict) -> dict:
        action = _require_text(request, "action")
        milliseconds = _integer(request, "milliseconds", None, 0, 600000)
        with self.server.fake.lock:
            if milliseconds == 0:
                self.server.fake.delays.pop(action, None)
            else:
                self.server.fake.delays[action] = milliseconds
        return {"action": action, "milliseconds": milliseconds}

    def _control_clock(self, request: dict) -> dict:
        offset = request.get("offset_seconds")
        if not isinstance(offset, (int, float)) or isinstance(offset, bool):
            raise ValueError('"offset_seconds" must be a number')
        self.server.fake.clock.offset_seconds = float(offset)
        return {"offset_seconds": offset, "now": self.server.fake.clock.now().isoformat()}

    def _control_expire(self, request: dict) -> dict:
        scope = request.get("scope")
        if scope == "issued":
            return {"expired": self.server.fake.store.expire_issued()}
        if scope == "next":
            count = _integer(request, "count", 1, 1, 1000000)
            if "lifetime_seconds" not in request:
                self.server.fake.store.issue_expired(count)
                return {"next_expired": count}
            lifetime = _integer(request, "lifetime_seconds", None, 1, MAX_SHORT_LIFETIME)
            self.server.fake.store.issue_expired(count, dt.timedelta(seconds=lifetime))
            return {"next_expired": count, "lifetime_seconds": lifetime}
        raise ValueError('"scope" must be "issued" or "next"')

    def _control_reset(self, request: dict) -> dict:
        self.server.fake.reset()
        return {"reset": True}


def _require_text(request: dict, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f'"{name}" must be a non-empty string')
    return value


def _integer(request: dict, name: str, default: int | None, minimum: int, maximum: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ValueError(f'"{name}" must be an integer from {minimum} to {maximum}')
    return value


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, fake: Fake) -> None:
        super().__init__((LISTEN_ADDRESS, port), Handler)
        self.fake = fake


def write_port_file(path: Path, port: int) -> None:
    """Write the port so that a reader never sees a partial file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)


def stop_after_process(pid: int, server: FakeServer) -> None:
    """Shut the server down once process `pid` has ended, so that a test killed before its
    cleanup ran leaves no fake behind."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("stopping because process %d has ended", pid)
            server.shutdown()
            return
        except PermissionError:
            pass


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fake AWS STS and EC2 on 127.0.0.1 for jitbox's tests (not AWS).",
    )
    parser.add_argument(
        "--keys", type=Path, required=True, help="JSON key file (see the module docstring)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks a free one"
    )
    parser.add_argument("--port-file", type=Path, help="file to write the listening port to")
    parser.add_argument(
        "--region", default="us-east-1", help="region that signatures must be scoped to"
    )
    parser.add_argument(
        "--pending-seconds",
        type=float,
        default=2.0,
        help="seconds an instance stays pending before it is running",
    )
    parser.add_argument(
        "--shutting-down-seconds",
        type=float,
        default=2.0,
        help="seconds a terminated instance stays shutting-down before it is terminated",
    )
    parser.add_argument(
        "--max-instances", type=int, default=20, help="maximum instances one RunInstances launches"
    )
    parser.add_argument(
        "--exit-with-pid", type=int, help="stop when the process with this id has ended"
    )
    parser.add_argument("--verbose", action="store_true", help="also log every HTTP exchange")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s fake_aws %(levelname)s %(message)s",
    )
    try:
        config = load_key_file(args.keys)
    except ConfigError as error:
        log.error("%s", error)
        return 2

    server = FakeServer(args.port, Fake(config, args))
    port = server.server_address[1]
    if args.port_file is not None:
        write_port_file(args.port_file, port)
    log.info("listening on %s:%d, region %s", LISTEN_ADDRESS, port, args.region)

    def stop(signum: int, frame: object) -> None:
        log.info("stopping on signal %d", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_pid is not None:
        threading.Thread(
            target=stop_after_process, args=(args.exit_with_pid, server), daemon=True
        ).start()
    server.serve_forever()
    server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
