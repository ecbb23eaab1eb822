"""The fake EC2 of API version 2016-11-15: DescribeImages, RunInstances, DescribeInstances,
TerminateInstances and CreateTags.

Instances go from pending to running and from shutting-down to terminated after delays set on
the command line, measured on the monotonic clock so that POST /__fake/clock does not move
them. Terminated instances stay listed. Subnets, security groups and key pairs are not
modelled: any id of the right form is accepted. No IAM policy is evaluated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import json
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from auth import Caller, Clock
from protocol import ApiError, Dialect, Params, add, check_struct_fields, to_bytes

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
VERSION = "2016-11-15"
ACTIONS = (
    "DescribeImages",
    "RunInstances",
    "DescribeInstances",
    "TerminateInstances",
    "CreateTags",
)

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
IMAGE_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
GROUP_ID = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")
INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+")
DEVICE_NAME = re.compile(r"/dev/[a-z0-9]+|xvd[a-z]+[0-9]*|sd[a-z]+[0-9]*")

DEFAULT_SUBNET_ID = "subnet-0f0f0f0f0f0f0f0f0"
DEFAULT_VPC_ID = "vpc-0f0f0f0f0f0f0f0f0"
MAX_USER_DATA_BYTES = 16384
MAX_TAGS_PER_RESOURCE = 50
VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "gp3", "sc1", "st1")
EBS_FIELDS = {
    "Ebs.DeleteOnTermination",
    "Ebs.Encrypted",
    "Ebs.Iops",
    "Ebs.KmsKeyId",
    "Ebs.SnapshotId",
    "Ebs.Throughput",
    "Ebs.VolumeSize",
    "Ebs.VolumeType",
}
TAGGABLE_AT_LAUNCH = ("instance", "volume", "network-interface")


def error_body(error: ApiError, request_id: str) -> bytes:
    root = ET.Element("Response")
    errors = add(root, "Errors")
    detail = add(errors, "Error")
    add(detail, "Code", error.code)
    add(detail, "Message", error.message)
    add(root, "RequestID", request_id)
    return to_bytes(root)


DIALECT = Dialect(
    missing=lambda name: ApiError(
        400, "MissingParameter", f"The request must contain the parameter {name}"
    ),
    unknown=lambda name: ApiError(
        400, "UnknownParameter", f"The parameter {name} is not recognized"
    ),
    invalid=lambda name, value, reason: ApiError(
        400, "InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid: {reason}"
    ),
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterValue", message)


def _random_id(prefix: str) -> str:
    return prefix + secrets.token_hex(9)[:17]


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Instance:
    """One fake instance with everything RunInstances was given, user data decoded."""

    instance_id: str
    reservation_id: str
    owner_id: str
    image_id: str
    instance_type: str
    launch_index: int
    launch_time: dt.datetime
    launched_at: float  # time.monotonic()
    subnet_id: str
    security_group_ids: list[str]
    key_name: str | None
    client_token: str | None
    shutdown_behavior: str
    user_data: bytes | None
    metadata_options: dict[str, str]
    block_devices: list[dict]
    root_device_name: str
    private_ip: str
    tags: dict[str, str] = field(default_factory=dict)
    volume_tags: dict[str, str] = field(default_factory=dict)
    terminate_requested_at: float | None = None

    def state(self, pending_seconds: float, shutting_down_seconds: float) -> str:
        now = time.monotonic()
        if self.terminate_requested_at is not None:
            if now - self.terminate_requested_at >= shutting_down_seconds:
                return "terminated"
            return "shutting-down"
        return "running" if now - self.launched_at >= pending_seconds else "pending"


class Ec2:
    def __init__(
        self,
        clock: Clock,
        region: str,
        images: dict[str, dict],
        pending_seconds: float,
        shutting_down_seconds: float,
        max_instances: int,
    ) -> None:
        self._clock = clock
        self._region = region
        self._images = images
        self._pending_seconds = pending_seconds
        self._shutting_down_seconds = shutting_down_seconds
        self._max_instances = max_instances
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        # ClientToken -> (fingerprint of the other parameters, reservation id)
        self._client_tokens: dict[str, tuple[str, str]] = {}

    def reset(self) -> None:
        with self._lock:
            self._instances.clear()
            self._client_tokens.clear()

    def handle(self, action: str, params: Params, caller: Caller, request_id: str) -> bytes:
        handler = {
            "DescribeImages": self._describe_images,
            "RunInstances": self._run_instances,
            "DescribeInstances": self._describe_instances,
            "TerminateInstances": self._terminate_instances,
            "CreateTags": self._create_tags,
        }[action]
        dry_run = params.take_bool("DryRun")
        with self._lock:
            root = handler(params, caller, dry_run or False)
        root.insert(0, ET.Element("requestId"))
        root[0].text = request_id
        return to_bytes(root)

    def _state(self, instance: Instance) -> str:
        return instance.state(self._pending_seconds, self._shutting_down_seconds)

    @staticmethod
    def _raise_if_dry_run(dry_run: bool) -> None:
        if dry_run:
            raise ApiError(
                412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."
            )

    # --- DescribeImages ---------------------------------------------------------------------------

    def _describe_images(self, params: Params, caller: Caller, dry_run: bool) -> ET.Element:
        image_ids = params.take_list("ImageId")
        params.reject_unread()
        for image_id in image_ids:
            if not IMAGE_ID.fullmatch(image_id):
                raise ApiError(
                    400, "InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "ami-...")'
                )
        missing = [image_id for image_id in image_ids if image_id not in self._images]
        if missing:
            raise ApiError(
                400,
                "InvalidAMIID.NotFound",
                f"The image id '[{', '.join(missing)}]' does not exist",
            )
        self._raise_if_dry_run(dry_run)

        root = ET.Element("DescribeImagesResponse", xmlns=NAMESPACE)
        images = add(root, "imagesSet")
        for image_id in image_ids or sorted(self._images):
            self._add_image(images, image_id, caller)
        return root

    def _add_image(self, parent: ET.Element, image_id: str, caller: Caller) -> None:
        image = self._images[image_id]
        root_device = image.get("root_device_name", "/dev/xvda")
        item = add(parent, "item")
        add(item, "imageId", image_id)
        add(item, "imageLocation", f"{caller.account_id}/{image.get('name', image_id)}")
        add(item, "imageState", "available")
        add(item, "imageOwnerId", image.get("owner_id", caller.account_id))
        add(item, "creationDate", "2024-01-01T00:00:00.000Z")
        add(item, "isPublic", False)
        add(item, "architecture", image.get("architecture", "x86_64"))
        add(item, "imageType", "machine")
        add(item, "name", image.get("name", image_id))
        add(item, "rootDeviceType", "ebs")
        add(item, "rootDeviceName", root_device)
        mappings = add(item, "blockDeviceMapping")
        mapping = add(mappings, "item")
        add(mapping, "deviceName", root_device)
        ebs = add(mapping, "ebs")
        add(ebs, "snapshotId", "snap-0f0f0f0f0f0f0f0f0")
        add(ebs, "volumeSize", image.get("root_volume_size", 8))
        add(ebs, "deleteOnTermination", True)
        add(ebs, "volumeType", "gp3")
        add(ebs, "encrypted", False)
        add(item, "virtualizationType", "hvm")
        add(item, "hypervisor", "xen")

    # --- RunInstances -----------------------------------------------------------------------------

    def _run_instances(self, params: Params, caller: Caller, dry_run: bool) -> ET.Element:
        fingerprint_source = params.unread_values()
        fingerprint_source.pop("ClientToken", None)
        image_id = params.require("ImageId")
        instance_type = params.require("InstanceType")
        min_count = params.take_int("MinCount", 1, 100000)
        max_count = params.take_int("MaxCount", 1, 100000)
        if min_count is None:
            raise DIALECT.missing("MinCount")
        if max_count is None:
            raise DIALECT.missing("MaxCount")
        subnet_id = params.take("SubnetId")
        group_ids = params.take_list("SecurityGroupId")
        key_name = params.take("KeyName")
        shutdown_behavior = params.take_choice(
            "InstanceInitiatedShutdownBehavior", ("stop", "terminate")
        )
        client_token = params.take("ClientToken")
        user_data_text = params.take("UserData")
        metadata_options = self._take_metadata_options(params)
        block_devices = self._take_block_devices(params)
        tag_specifications = self._take_tag_specifications(params)
        params.reject_unread()

        self._check_launch(
            image_id,
            instance_type,
            min_count,
            max_count,
            subnet_id,
            group_ids,
            key_name,
            client_token,
        )
        user_data = self._decode_user_data(user_data_text)
        count = min(max_count, self._max_instances)
        if count < min_count:
            raise ApiError(
                400,
                "InstanceLimitExceeded",
                f"You have requested more instances ({min_count}) than your current instance"
                f" limit of {self._max_instances} allows (set by --max-instances of the fake).",
            )

        fingerprint = hashlib.sha256(
            json.dumps(fingerprint_source, sort_keys=True).encode("utf-8")
        ).hexdigest()
        if client_token is not None and client_token in self._client_tokens:
            known_fingerprint, reservation_id = self._client_tokens[client_token]
            if known_fingerprint != fingerprint:
                raise ApiError(
                    400,
                    "IdempotentParameterMismatch",
                    "Arguments on this idempotent request are inconsistent with arguments used"
                    " in previous request(s).",
                )
            self._raise_if_dry_run(dry_run)
            return self._reservation_response(reservation_id)
        self._raise_if_dry_run(dry_run)

        reservation_id = _random_id("r-")
        root_device = self._images[image_id].get("root_device_name", "/dev/xvda")
        launch_time = self._clock.now().replace(microsecond=0)
        for index in range(count):
            instance = Instance(
                instance_id=_random_id("i-"),
                reservation_id=reservation_id,
                owner_id=caller.account_id,
                image_id=image_id,
                instance_type=instance_type,
                launch_index=index,
                launch_time=launch_time,
                launched_at=time.monotonic(),
                subnet_id=subnet_id or DEFAULT_SUBNET_ID,
                security_group_ids=group_ids,
                key_name=key_name,
                client_token=client_token,
                shutdown_behavior=shutdown_behavior or "stop",
                user_data=user_data,
                metadata_options=metadata_options,
                block_devices=self._with_root_device(block_devices, root_device),
                root_device_name=root_device,
                private_ip=f"10.0.{len(self._instances) // 250}.{len(self._instances) % 250 + 4}",
                tags=dict(tag_specifications.get("instance", {})),
                volume_tags=dict(tag_specifications.get("volume", {})),
            )
            self._instances[instance.instance_id] = instance
        if client_token is not None:
            self._client_tokens[client_token] = (fingerprint, reservation_id)
        return self._reservation_response(reservation_id)

    def _check_launch(
        self,
        image_id: str,
        instance_type: str,
        min_count: int,
        max_count: int,
        subnet_id: str | None,
        group_ids: list[str],
        key_name: str | None,
        client_token: str | None,
    ) -> None:
        if not IMAGE_ID.fullmatch(image_id):
            raise ApiError(
                400, "InvalidAMIID.Malformed", f'Invalid id: "{image_id}" (expecting "ami-...")'
            )
        if image_id not in self._images:
            raise ApiError(
                400, "InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist"
            )
        if not INSTANCE_TYPE.fullmatch(instance_type):
            raise _invalid(f"Invalid value '{instance_type}' for InstanceType.")
        if min_count > max_count:
            raise _invalid(
                f"MinCount ({min_count}) must not be greater than MaxCount ({max_count})"
            )
        if subnet_id is not None and not SUBNET_ID.fullmatch(subnet_id):
            raise ApiError(
                400,
                "InvalidSubnetID.Malformed",
                f'Invalid id: "{subnet_id}" (expecting "subnet-...")',
            )
        for group_id in group_ids:
            if not GROUP_ID.fullmatch(group_id):
                raise ApiError(
                    400,
                    "InvalidGroupId.Malformed",
                    f'Invalid id: "{group_id}" (expecting "sg-...")',
                )
        if key_name is not None and not 1 <= len(key_name) <= 255:
            raise _invalid("KeyName must be 1 to 255 characters long")
        if client_token is not None and (
            not 1 <= len(client_token) <= 64 or not client_token.isascii()
        ):
            raise _invalid("ClientToken must be 1 to 64 ASCII characters long")

    @staticmethod
    def _decode_user_data(text: str | None) -> bytes | None:
        if text is None:
            return None
        try:
            data = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise _invalid("Invalid BASE64 encoding of user data.") from None
        if len(data) > MAX_USER_DATA_BYTES:
            raise _invalid(f"User data is limited to {MAX_USER_DATA_BYTES} bytes")
        return data

    @staticmethod
    def _take_metadata_options(params: Params) -> dict[str, str]:
        options = {
            "HttpTokens": params.take_choice(
                "MetadataOptions.HttpTokens", ("optional", "required")
            ),
            "HttpEndpoint": params.take_choice(
                "MetadataOptions.HttpEndpoint", ("enabled", "disabled")
            ),
            "HttpProtocolIpv6": params.take_choice(
                "MetadataOptions.HttpProtocolIpv6", ("enabled", "disabled")
            ),
            "InstanceMetadataTags": params.take_choice(
                "MetadataOptions.InstanceMetadataTags", ("enabled", "disabled")
            ),
        }
        hop_limit = params.take_int("MetadataOptions.HttpPutResponseHopLimit", 1, 64)
        defaults = {
            "HttpTokens": "optional",
            "HttpEndpoint": "enabled",
            "HttpProtocolIpv6": "disabled",
            "InstanceMetadataTags": "disabled",
        }
        result = {name: value or defaults[name] for name, value in options.items()}
        result["HttpPutResponseHopLimit"] = str(hop_limit or 1)
        return result

    @staticmethod
    def _take_block_devices(params: Params) -> list[dict]:
        devices = []
        for index, group in params.take_indexed("BlockDeviceMapping"):
            prefix = f"BlockDeviceMapping.{index}"
            check_struct_fields(
                DIALECT, prefix, group, EBS_FIELDS | {"DeviceName", "NoDevice", "VirtualName"}
            )
            device_name = group.get("DeviceName")
            if device_name is None:
                raise DIALECT.missing(f"{prefix}.DeviceName")
            if not DEVICE_NAME.fullmatch(device_name):
                raise _invalid(f"Invalid device name {device_name}")
            device: dict = {"DeviceName": device_name}
            for name in ("NoDevice", "VirtualName"):
                if name in group:
                    device[name] = group[name]
            ebs = {rest[4:]: value for rest, value in group.items() if rest.startswith("Ebs.")}
            if ebs:
                device["Ebs"] = Ec2._check_ebs(prefix, ebs)
            devices.append(device)
        return devices

    @staticmethod
    def _check_ebs(prefix: str, ebs: dict[str, str]) -> dict:
        checked: dict = {}
        for name, value in ebs.items():
            full_name = f"{prefix}.Ebs.{name}"
            if name in ("DeleteOnTermination", "Encrypted"):
                if value not in ("true", "false"):
                    raise DIALECT.invalid(full_name, value, "must be true or false")
                checked[name] = value == "true"
            elif name in ("VolumeSize", "Iops", "Throughput"):
                if not re.fullmatch(r"[1-9][0-9]{0,5}", value):
                    raise DIALECT.invalid(full_name, value, "must be a positive integer")
                checked[name] = int(value)
            elif name == "VolumeType" and value not in VOLUME_TYPES:
                raise DIALECT.invalid(full_name, value, "must be one of " + ", ".join(VOLUME_TYPES))
            else:
                checked[name] = value
        if not 1 <= checked.get("VolumeSize", 8) <= 16384:
            raise _invalid(f"Volume of {checked['VolumeSize']} GiB is outside 1 to 16384 GiB")
        return checked

    @staticmethod
    def _with_root_device(devices: list[dict], root_device: str) -> list[dict]:
        names = {device["DeviceName"] for device in devices}
        root = [] if root_device in names else [{"DeviceName": root_device, "Ebs": {}}]
        return [dict(device, VolumeId=_random_id("vol-")) for device in root + devices]

    @staticmethod
    def _take_tag_specifications(params: Params) -> dict[str, dict[str, str]]:
        specifications: dict[str, dict[str, str]] = {}
        for index, group in params.take_indexed("TagSpecification"):
            prefix = f"TagSpecification.{index}"
            resource_type = group.get("ResourceType")
            if resource_type is None:
                raise DIALECT.missing(f"{prefix}.ResourceType")
            if resource_type not in TAGGABLE_AT_LAUNCH:
                raise _invalid(
                    f"'{resource_type}' is not a valid taggable resource type for this operation."
                )
            if resource_type in specifications:
                raise _invalid(
                    "The same resource type may not be specified more than once in tag"
                    " specifications"
                )
            pairs = {}
            for rest, value in group.items():
                match = re.fullmatch(r"Tag\.([1-9][0-9]{0,5})\.(Key|Value)", rest)
                if rest == "ResourceType":
                    continue
                if match is None:
                    raise DIALECT.unknown(f"{prefix}.{rest}")
                pairs.setdefault(int(match.group(1)), {})[match.group(2)] = value
            specifications[resource_type] = _checked_tags(prefix + ".Tag", pairs)
        return specifications

    # --- DescribeInstances ------------------------------------------------------------------------

    def _describe_instances(self, params: Params, caller: Caller, dry_run: bool) -> ET.Element:
        instance_ids = params.take_list("InstanceId")
        filters = self._take_filters(params)
        max_results = params.take("MaxResults")
        next_token = params.take("NextToken")
        params.reject_unread()

        if max_results is not None:
            if instance_ids:
                raise ApiError(
                    400,
                    "InvalidParameterCombination",
                    "The parameter instancesSet cannot be used with the parameter maxResults",
                )
            if not re.fullmatch(r"[0-9]{1,5}", max_results) or not 5 <= int(max_results) <= 1000:
                raise _invalid(
                    f"Value ( {max_results} ) for parameter maxResults is invalid."
                    " Expecting a value between 5 and 1000."
                )
        self._check_instance_ids(instance_ids)
        self._raise_if_dry_run(dry_run)

        selected = [
            instance
            for instance in self._instances.values()
            if (not instance_ids or instance.instance_id in instance_ids)
            and all(self._matches(instance, name, values) for name, values in filters)
        ]
        query_key = hashlib.sha256(json.dumps(filters).encode("utf-8")).hexdigest()[:16]
        start = self._decode_next_token(next_token, query_key)
        end = len(selected) if max_results is None else start + int(max_results)
        page = selected[start:end]

        root = ET.Element("DescribeInstancesResponse", xmlns=NAMESPACE)
        reservations = add(root, "reservationSet")
        current: ET.Element | None = None
        current_id = None
        for instance in page:
            if instance.reservation_id != current_id:
                current_id = instance.reservation_id
                current = self._add_reservation(reservations, instance)
            assert current is not None
            self._add_instance(current, instance)
        if end < len(selected):
            token = base64.urlsafe_b64encode(f"{end}:{query_key}".encode("ascii")).decode("ascii")
            add(root, "nextToken", token)
        return root

    @staticmethod
    def _take_filters(params: Params) -> list[tuple[str, list[str]]]:
        filters = []
        for index, group in params.take_indexed("Filter"):
            prefix = f"Filter.{index}"
            name = group.get("Name")
            if name is None:
                raise DIALECT.missing(f"{prefix}.Name")
            values = []
            for rest in sorted(group, key=lambda rest: (len(rest), rest)):
                if rest == "Name":
                    continue
                if not re.fullmatch(r"Value\.[1-9][0-9]{0,5}", rest):
                    raise DIALECT.unknown(f"{prefix}.{rest}")
                values.append(group[rest])
            if name not in ("tag-key", "instance-state-name") and not (
                name.startswith("tag:") and len(name) > 4
            ):
                raise _invalid(
                    f"The filter '{name}' is invalid (this fake supports tag-key, tag:KEY and"
                    " instance-state-name)"
                )
            if not values:
                raise _invalid(f"The filter '{name}' needs at least one value")
            filters.append((name, values))
        return filters

    def _matches(self, instance: Instance, name: str, patterns: list[str]) -> bool:
        """Apply one filter. Values may contain the wildcards * and ?, as EC2 filters allow."""
        if name == "instance-state-name":
            candidates = [self._state(instance)]
        elif name == "tag-key":
            candidates = list(instance.tags)
        else:
            key = name[4:]
            candidates = [instance.tags[key]] if key in instance.tags else []
        return any(
            fnmatch.fnmatchcase(candidate, pattern)
            for candidate in candidates
            for pattern in patterns
        )

    @staticmethod
    def _decode_next_token(token: str | None, query_key: str) -> int:
        if token is None:
            return 0
        try:
            offset, key = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").split(":")
            if key == query_key and offset.isdigit():
                return int(offset)
        except (ValueError, UnicodeError, binascii.Error):
            pass
        raise ApiError(
            400,
            "InvalidPaginationToken",
            "The specified pagination token is not valid or is expired.",
        )

    def _check_instance_ids(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            if not INSTANCE_ID.fullmatch(instance_id):
                raise ApiError(400, "InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"')
        missing = [
            instance_id for instance_id in instance_ids if instance_id not in self._instances
        ]
        if len(missing) == 1:
            raise ApiError(
                400, "InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist"
            )
        if missing:
            raise ApiError(
                400,
                "InvalidInstanceID.NotFound",
                f"The instance IDs '{', '.join(missing)}' do not exist",
            )

    def _reservation_response(self, reservation_id: str) -> ET.Element:
        instances = [
            instance
            for instance in self._instances.values()
            if instance.reservation_id == reservation_id
        ]
        root = ET.Element("RunInstancesResponse", xmlns=NAMESPACE)
        self._fill_reservation(root, instances[0])
        for instance in instances:
            self._add_instance(root, instance)
        return root

    def _add_reservation(self, parent: ET.Element, first: Instance) -> ET.Element:
        item = add(parent, "item")
        self._fill_reservation(item, first)
        return item

    @staticmethod
    def _fill_reservation(element: ET.Element, first: Instance) -> None:
        add(element, "reservationId", first.reservation_id)
        add(element, "ownerId", first.owner_id)
        add(element, "groupSet")
        add(element, "instancesSet")

    def _add_instance(self, reservation: ET.Element, instance: Instance) -> None:
        instances_set = reservation.find("instancesSet")
        assert instances_set is not None
        item = add(instances_set, "item")
        state = self._state(instance)

        add(item, "instanceId", instance.instance_id)
        add(item, "imageId", instance.image_id)
        _add_state(item, "instanceState", state)
        add(item, "privateDnsName", f"ip-{instance.private_ip.replace('.', '-')}.ec2.internal")
        add(item, "dnsName")
        add(item, "reason")
        if instance.key_name is not None:
            add(item, "keyName", instance.key_name)
        add(item, "amiLaunchIndex", instance.launch_index)
        add(item, "productCodes")
        add(item, "instanceType", instance.instance_type)
        add(item, "launchTime", _iso(instance.launch_time))
        self._add_network(item, instance)
        if state in ("shutting-down", "terminated"):
            reason = add(item, "stateReason")
            add(reason, "code", "Client.UserInitiatedShutdown")
            add(reason, "message", "Client.UserInitiatedShutdown: User initiated shutdown")

        add(item, "architecture", "x86_64")
        add(item, "rootDeviceType", "ebs")
        add(item, "rootDeviceName", instance.root_device_name)
        self._add_block_devices(item, instance, state)
        add(item, "virtualizationType", "hvm")
        if instance.client_token is not None:
            add(item, "clientToken", instance.client_token)
        if instance.tags:
            tag_set = add(item, "tagSet")
            for key, value in instance.tags.items():
                tag = add(tag_set, "item")
                add(tag, "key", key)
                add(tag, "value", value)
        add(item, "hypervisor", "xen")
        self._add_metadata_options(item, instance, state)

    def _add_network(self, item: ET.Element, instance: Instance) -> None:
        """Add placement, monitoring, subnet, VPC, address and security groups."""
        placement = add(item, "placement")
        add(placement, "availabilityZone", self._region + "a")
        add(placement, "groupName")
        add(placement, "tenancy", "default")
        monitoring = add(item, "monitoring")
        add(monitoring, "state", "disabled")
        add(item, "subnetId", instance.subnet_id)
        add(item, "vpcId", DEFAULT_VPC_ID)
        add(item, "privateIpAddress", instance.private_ip)
        groups = add(item, "groupSet")
        for group_id in instance.security_group_ids:
            group = add(groups, "item")
            add(group, "groupId", group_id)
            add(group, "groupName", group_id)

    @staticmethod
    def _add_block_devices(item: ET.Element, instance: Instance, state: str) -> None:
        mappings = add(item, "blockDeviceMapping")
        if state == "terminated":
            return
        for device in instance.block_devices:
            if "NoDevice" in device:
                continue
            mapping = add(mappings, "item")
            add(mapping, "deviceName", device["DeviceName"])
            ebs = add(mapping, "ebs")
            add(ebs, "volumeId", device["VolumeId"])
            add(ebs, "status", "attached" if state != "shutting-down" else "detaching")
            add(ebs, "attachTime", _iso(instance.launch_time))
            add(ebs, "deleteOnTermination", device.get("Ebs", {}).get("DeleteOnTermination", True))

    @staticmethod
    def _add_metadata_options(item: ET.Element, instance: Instance, state: str) -> None:
        options = instance.metadata_options
        element = add(item, "metadataOptions")
        add(element, "state", "pending" if state == "pending" else "applied")
        add(element, "httpTokens", options["HttpTokens"])
        add(element, "httpPutResponseHopLimit", options["HttpPutResponseHopLimit"])
        add(element, "httpEndpoint", options["HttpEndpoint"])
        add(element, "httpProtocolIpv6", options["HttpProtocolIpv6"])
        add(element, "instanceMetadataTags", options["InstanceMetadataTags"])

    # --- TerminateInstances and CreateTags --------------------------------------------------------

    def _terminate_instances(self, params: Params, caller: Caller, dry_run: bool) -> ET.Element:
        instance_ids = params.take_list("InstanceId")
        params.reject_unread()
        if not instance_ids:
            raise DIALECT.missing("InstanceId")
        self._check_instance_ids(instance_ids)
        self._raise_if_dry_run(dry_run)

        root = ET.Element("TerminateInstancesResponse", xmlns=NAMESPACE)
        instances = add(root, "instancesSet")
        for instance_id in instance_ids:
            instance = self._instances[instance_id]
            previous = self._state(instance)
            if instance.terminate_requested_at is None:
                instance.terminate_requested_at = time.monotonic()
            item = add(instances, "item")
            add(item, "instanceId", instance_id)
            _add_state(item, "currentState", self._state(instance))
            _add_state(item, "previousState", previous)
        return root

    def _create_tags(self, params: Params, caller: Caller, dry_run: bool) -> ET.Element:
        resource_ids = params.take_list("ResourceId")
        tag_groups = params.take_indexed("Tag")
        params.reject_unread()
        if not resource_ids:
            raise DIALECT.missing("ResourceId")
        if not tag_groups:
            raise DIALECT.missing("Tag")
        for index, group in tag_groups:
            check_struct_fields(DIALECT, f"Tag.{index}", group, ("Key", "Value"))
        tags = _checked_tags("Tag", dict(tag_groups))
        for resource_id in resource_ids:
            if not resource_id.startswith("i-"):
                raise ApiError(
                    400,
                    "InvalidID",
                    f"The ID '{resource_id}' is not valid (this fake tags" " instances only)",
                )
        self._check_instance_ids(resource_ids)
        for resource_id in resource_ids:
            merged = {**self._instances[resource_id].tags, **tags}
            if len(merged) > MAX_TAGS_PER_RESOURCE:
                raise ApiError(
                    400,
                    "TagLimitExceeded",
                    f"The maximum number of tags ({MAX_TAGS_PER_RESOURCE}) for resource"
                    f" {resource_id} has been exceeded",
                )
        self._raise_if_dry_run(dry_run)

        for resource_id in resource_ids:
            self._instances[resource_id].tags.update(tags)
        root = ET.Element("CreateTagsResponse", xmlns=NAMESPACE)
        add(root, "return", True)
        return root

    # --- control interface ------------------------------------------------------------------------

    def snapshot(self) -> list[dict]:
        """Describe every instance for GET /__fake/instances, with user data decoded."""
        with self._lock:
            return [self._describe_for_tests(instance) for instance in self._instances.values()]

    def _describe_for_tests(self, instance: Instance) -> dict:
        user_data_text = None
        if instance.user_data is not None:
            try:
                user_data_text = instance.user_data.decode("utf-8")
            except UnicodeDecodeError:
                user_data_text = None
        return {
            "instance_id": instance.instance_id,
            "reservation_id": instance.reservation_id,
            "state": self._state(instance),
            "image_id": instance.image_id,
            "instance_type": instance.instance_type,
            "subnet_id": instance.subnet_id,
            "private_ip": instance.private_ip,
            "security_group_ids": instance.security_group_ids,
            "key_name": instance.key_name,
            "client_token": instance.client_token,
            "instance_initiated_shutdown_behavior": instance.shutdown_behavior,
            "metadata_options": instance.metadata_options,
            "block_device_mappings": instance.block_devices,
            "tags": instance.tags,
            "volume_tags": instance.volume_tags,
            "user_data": user_data_text,
            "user_data_base64": (
                None
                if instance.user_data is None
                else base64.b64encode(instance.user_data).decode("ascii")
            ),
            "launch_time": _iso(instance.launch_time),
        }


def _add_state(parent: ET.Element, tag: str, state: str) -> None:
    element = add(parent, tag)
    add(element, "code", STATE_CODES[state])
    add(element, "name", state)


def _checked_tags(prefix: str, pairs: dict[int, dict[str, str]]) -> dict[str, str]:
    """Check tag pairs `{N: {"Key": ..., "Value": ...}}` against EC2's limits."""
    if len(pairs) > MAX_TAGS_PER_RESOURCE:
        raise ApiError(
            400,
            "TagLimitExceeded",
            f"The maximum number of tags ({MAX_TAGS_PER_RESOURCE})" " has been exceeded",
        )
    tags: dict[str, str] = {}
    for index, pair in sorted(pairs.items()):
        key = pair.get("Key")
        value = pair.get("Value", "")
        if key is None:
            raise DIALECT.missing(f"{prefix}.{index}.Key")
        if not 1 <= len(key) <= 128:
            raise _invalid(f"Tag key '{key}' must be 1 to 128 characters long")
        if key.lower().startswith("aws:"):
            raise _invalid("Tag keys starting with 'aws:' are reserved for internal use")
        if len(value) > 256:
            raise _invalid(f"The value of tag '{key}' is longer than 256 characters")
        if key in tags:
            raise _invalid(f"Duplicate tag key '{key}' specified")
        tags[key] = value
    return tags
