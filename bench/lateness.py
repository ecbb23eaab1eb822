"""Prints the teardown lateness of one group of sandboxes as KEY<TAB>VALUE lines.

    lateness.py GROUP DEADLINES EVENTS

DEADLINES has "NAME EPOCH_SECONDS" lines, EVENTS the output of
`docker events --format '{{.TimeNano}} {{.Actor.Attributes.name}}'` for destroy events. jitbox
names a container jitbox-NAME-ID, so the sandbox name is what lies between. Only sandboxes
whose name starts with GROUP- count. Lateness is the destroy time minus the deadline, in
seconds; the 95th percentile is by nearest rank.
"""

import math
import sys


def main():
    group, deadlines_path, events_path = sys.argv[1:4]
    deadlines = {}
    with open(deadlines_path) as lines:
        for line in lines:
            name, epoch = line.split()
            if name.startswith(group + "-"):
                deadlines[name] = int(epoch)
    destroyed = {}
    with open(events_path) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) != 2 or not parts[1].startswith("jitbox-"):
                continue
            name = parts[1][len("jitbox-") :].rsplit("-", 1)[0]
            destroyed.setdefault(name, int(parts[0]) / 1e9)
    late = sorted(destroyed[name] - deadline for name, deadline in deadlines.items()
                  if name in destroyed)
    print(f"count\t{len(deadlines)}")
    print(f"removed\t{len(late)}")
    if deadlines:
        print(f"deadline_spread\t{max(deadlines.values()) - min(deadlines.values())}")
    if late:
        middle = len(late) // 2
        median = late[middle] if len(late) % 2 else (late[middle - 1] + late[middle]) / 2
        print(f"median\t{median:.3f}")
        print(f"p95\t{late[max(math.ceil(0.95 * len(late)) - 1, 0)]:.3f}")
        print(f"max\t{late[-1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
