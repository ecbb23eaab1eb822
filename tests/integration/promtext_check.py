#!/usr/bin/env python3
"""Strict checker of the Prometheus text exposition format, version 0.0.4.

Reads the exposition on standard input. On success it prints the parsed families as JSON:
{"NAME": {"type": ..., "help": ..., "samples": [{"labels": {...}, "value": ...}]}}, with
label values unescaped, and exits 0. Otherwise it prints "LINE: problem" on standard error and
exits 1. Besides the grammar, it rejects what the format forbids. That is a TYPE or HELP line
repeated or after the family's first sample, and samples of one family that are not in one
group. It also rejects a repeated label set or label name, label names that start with "__",
unknown escapes, and a negative counter. Samples of histograms and
summaries, whose names carry suffixes such as _bucket, count as families of their own, because
jitbox exposes neither. Python standard library only.
"""

import json
import math
import re
import sys

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
SPECIAL_FLOATS = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf}


class FormatError(Exception):
    pass


def unescape(text, allowed):
    """Replaces the escapes of `allowed` (a map from the escaped character to its value)."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise FormatError(f"invalid escape in {text!r}")
            out.append(allowed[text[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_value(text):
    if text in SPECIAL_FLOATS:
        return SPECIAL_FLOATS[text]
    if not FLOAT.fullmatch(text):
        raise FormatError(f"invalid value {text!r}")
    return float(text)


def parse_labels(text, pos):
    """Parses `{...}` starting at text[pos] == '{'; returns (labels, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = LABEL_NAME.match(text, pos)
        if not match:
            raise FormatError(f"invalid label name at column {pos + 1}")
        name = match.group(0)
        if name.startswith("__"):
            raise FormatError(f"label name {name!r} is reserved")
        if name in labels:
            raise FormatError(f"label {name!r} repeated")
        pos = match.end()
        if text[pos : pos + 2] != '="':
            raise FormatError(f"expected '=\"' after label {name!r}")
        pos += 2
        start = pos
        while pos < len(text) and text[pos] != '"':
            pos += 2 if text[pos] == "\\" else 1
        if pos >= len(text):
            raise FormatError(f"unterminated value of label {name!r}")
        labels[name] = unescape(text[start:pos], {"\\": "\\", '"': '"', "n": "\n"})
        pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "}":
            raise FormatError("expected ',' or '}' after a label value")


def parse(text):
    if not text.endswith("\n"):
        raise FormatError("the exposition must end with a line feed")
    families = {}
    finished = set()  # families whose group of samples has ended
    current = None
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        try:
            current = parse_line(line, families, finished, current)
        except FormatError as error:
            raise FormatError(f"{number}: {error}") from None
    return families


def family(families, name):
    return families.setdefault(name, {"type": None, "help": None, "samples": [], "seen": set()})


def parse_line(line, families, finished, current):
    if line == "":
        return current
    if line.startswith("#"):
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
            name = parts[2]
            if not METRIC_NAME.fullmatch(name):
                raise FormatError(f"invalid metric name {name!r}")
            entry = family(families, name)
            if entry["samples"]:
                raise FormatError(f"{parts[1]} of {name} after its samples")
            if parts[1] == "HELP":
                if entry["help"] is not None:
                    raise FormatError(f"second HELP of {name}")
                entry["help"] = unescape(parts[3] if len(parts) > 3 else "", {"\\": "\\", "n": "\n"})
            else:
                kind = parts[3] if len(parts) > 3 else ""
                if kind not in TYPES:
                    raise FormatError(f"invalid type {kind!r} of {name}")
                if entry["type"] is not None:
                    raise FormatError(f"second TYPE of {name}")
                entry["type"] = kind
        return current

    match = METRIC_NAME.match(line)
    if not match:
        raise FormatError("a sample must start with a metric name")
    name = match.group(0)
    pos = match.end()
    labels = {}
    if pos < len(line) and line[pos] == "{":
        labels, pos = parse_labels(line, pos)
    rest = line[pos:]
    if not rest.startswith(" "):
        raise FormatError("expected a space before the value")
    fields = rest.split()
    if len(fields) not in (1, 2):
        raise FormatError("expected a value and an optional timestamp")
    value = parse_value(fields[0])
    if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
        raise FormatError(f"invalid timestamp {fields[1]!r}")

    if name != current:
        if current is not None:
            finished.add(current)
        if name in finished:
            raise FormatError(f"samples of {name} are not in one group")
    entry = family(families, name)
    key = tuple(sorted(labels.items()))
    if key in entry["seen"]:
        raise FormatError(f"{name} repeats the label set {labels}")
    entry["seen"].add(key)
    if entry["type"] == "counter" and value < 0:
        raise FormatError(f"counter {name} is negative")
    entry["samples"].append({"labels": labels, "value": value})
    return name


def main():
    text = sys.stdin.read()
    try:
        families = parse(text)
    except FormatError as error:
        print(error, file=sys.stderr)
        return 1
    for entry in families.values():
        del entry["seen"]
    print(json.dumps(families, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
