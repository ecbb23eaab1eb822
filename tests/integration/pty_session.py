#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal and drive it step by step, for the tests of
`jitbox shell` and `jitbox exec -it`.

    pty_session.py [--size ROWSxCOLS] [--timeout S] [--transcript FILE] STEP... -- CMD...

Steps, in order:
    expect:REGEX     wait until the output since the last match matches REGEX (Python re)
    send:TEXT        write TEXT to the terminal, decoding \\n, \\r and \\xNN escapes
    resize:ROWSxCOLS set the terminal size, which sends SIGWINCH to the command
    signal:NAME      send a signal such as TERM to the command
    sleep:SECONDS    wait that many seconds, still collecting the output

The command is a session leader with the terminal as its controlling terminal, like a login
shell. At the end this script prints, one per line:
    status exit N | status signal N
    terminal restored | terminal changed: BEFORE -> AFTER   (the `stty -g` settings)
and exits with 0, or 1 when an expect step timed out or the command did not end in time.
"""

import argparse
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time


def parse_size(text):
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def set_size(fd, size):
    rows, cols = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def stty_settings(fd):
    result = subprocess.run(["stty", "-g"], stdin=fd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def decode(text):
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


def start(command, slave, master):
    pid = os.fork()
    if pid == 0:
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    return pid


class Session:
    def __init__(self, master, pid, timeout):
        self.master = master
        self.pid = pid
        self.timeout = timeout
        self.output = b""
        self.searched_from = 0
        self.status = None

    def read_available(self, wait):
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        self.output += data

    def poll_exit(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid != 0:
                self.status = status
        return self.status is not None

    def expect(self, pattern):
        regex = re.compile(pattern.encode("utf-8"))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            match = regex.search(self.output, self.searched_from)
            if match:
                self.searched_from = match.end()
                return True
            if self.poll_exit():
                self.read_available(0.1)
                match = regex.search(self.output, self.searched_from)
                if match:
                    self.searched_from = match.end()
                    return True
                return False
            self.read_available(0.1)
        return False

    def wait_exit(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.read_available(0.05)
            if self.poll_exit():
                self.read_available(0.1)
                return True
        return False


def run_steps(session, steps):
    for step in steps:
        kind, _, argument = step.partition(":")
        if kind == "expect":
            if not session.expect(argument):
                print(f"expect timed out: {argument}")
                return False
        elif kind == "send":
            os.write(session.master, decode(argument))
        elif kind == "resize":
            set_size(session.master, parse_size(argument))
        elif kind == "signal":
            os.kill(session.pid, getattr(signal, "SIG" + argument))
        elif kind == "sleep":
            deadline = time.monotonic() + float(argument)
            while time.monotonic() < deadline:
                session.read_available(0.05)
        else:
            print(f"unknown step: {step}")
            return False
    return True


def main():
    arguments = sys.argv[1:]
    if "--" not in arguments:
        sys.exit("usage: pty_session.py [options] STEP... -- CMD...")
    split = arguments.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="24x80")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--transcript")
    parser.add_argument("steps", nargs="*")
    options = parser.parse_args(arguments[:split])
    command = arguments[split + 1:]

    master, slave = os.openpty()
    set_size(slave, parse_size(options.size))
    before = stty_settings(slave)
    session = Session(master, start(command, slave, master), options.timeout)

    completed = run_steps(session, options.steps)
    ended = session.wait_exit()
    if not ended:
        print("the command did not end in time")
        os.kill(session.pid, signal.SIGKILL)
        os.waitpid(session.pid, 0)
    elif os.WIFEXITED(session.status):
        print(f"status exit {os.WEXITSTATUS(session.status)}")
    else:
        print(f"status signal {os.WTERMSIG(session.status)}")
    after = stty_settings(slave)
    print("terminal restored" if after == before else f"terminal changed: {before} -> {after}")
    if options.transcript:
        with open(options.transcript, "wb") as transcript:
            transcript.write(session.output)
    sys.exit(0 if completed and ended else 1)


if __name__ == "__main__":
    main()
