"""Prints the teardown lateness of one group of sandboxes as KEY<TAB>VALUE lines.

    lateness.py GROUP EVENTS

EVENTS contains the destroy events of `docker events` in the format
'{{.TimeNano}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "io.jitbox.expires-at"}}'.
jitbox names a container jitbox-NAME-ID and labels it with its deadline in RFC 3339, so each
event gives the sandbox name, the deadline and the time the container was gone. Only sandboxes
whose name starts with GROUP- count. Lateness is the destroy time minus the deadline, in
seconds, and the 95th percentile is by nearest rank.
"""

import math
import sys
from datetime import datetime


def parse_events(path, group):
    lateness = {}
    deadlines = {}
    with open(path) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) != 3 or not parts[1].startswith("jitbox-"):
                continue
            name = parts[1][len("jitbox-") :].rsplit("-", 1)[0]
            if not name.startswith(group + "-") or name in lateness:
                continue
            deadline = datetime.fromisoformat(parts[2].replace("Z", "+00:00")).timestamp()
            deadlines[name] = deadline
            lateness[name] = int(parts[0]) / 1e9 - deadline
    return deadlines, sorted(lateness.values())


def main():
    group, events_path = sys.argv[1:3]
    deadlines, late = parse_events(events_path, group)
    print(f"removed\t{len(late)}")
    if not late:
        return 0
    print(f"deadline_spread\t{max(deadlines.values()) - min(deadlines.values()):.0f}")
    middle = len(late) // 2
    median = late[middle] if len(late) % 2 else (late[middle - 1] + late[middle]) / 2
    print(f"median\t{median:.3f}")
    print(f"p95\t{late[max(math.ceil(0.95 * len(late)) - 1, 0)]:.3f}")
    print(f"max\t{late[-1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
