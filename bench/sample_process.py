"""Samples one process from /proc once a second and prints its figures as KEY<TAB>VALUE lines.

    sample_process.py PID SECONDS

rss_max_kib: the largest VmRSS seen. rss_kib, pss_kib, private_kib: /proc/PID/smaps_rollup at
the end, where private is Private_Clean plus Private_Dirty. cpu_ms: user plus system time over
the period. switches: voluntary plus involuntary context switches over the period, each of which
is one wake-up of a sleeping process. Exits with 1 when the process is gone before the end.
"""

import os
import sys
import time


def read_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # Fields resume after the command name's closing parenthesis; utime and stime are 14 and 15.
    fields = text[text.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000 // os.sysconf("SC_CLK_TCK")


def switches(status):
    return int(status["voluntary_ctxt_switches"][0]) + int(
        status["nonvoluntary_ctxt_switches"][0]
    )


def smaps_rollup(pid):
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return values


def main():
    pid, seconds = int(sys.argv[1]), int(sys.argv[2])
    try:
        first = read_status(pid)
        first_cpu = cpu_ms(pid)
        rss_max = int(first["VmRSS"][0])
        for _ in range(seconds):
            time.sleep(1)
            rss_max = max(rss_max, int(read_status(pid)["VmRSS"][0]))
        last = read_status(pid)
        last_cpu = cpu_ms(pid)
        rollup = smaps_rollup(pid)
    except (FileNotFoundError, ProcessLookupError):
        print(f"sample_process: process {pid} exited during sampling", file=sys.stderr)
        return 1
    print(f"rss_max_kib\t{rss_max}")
    print(f"rss_kib\t{rollup.get('Rss', 0)}")
    print(f"pss_kib\t{rollup.get('Pss', 0)}")
    print(f"private_kib\t{rollup.get('Private_Clean', 0) + rollup.get('Private_Dirty', 0)}")
    print(f"cpu_ms\t{last_cpu - first_cpu}")
    print(f"switches\t{switches(last) - switches(first)}")
    print(f"seconds\t{seconds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
