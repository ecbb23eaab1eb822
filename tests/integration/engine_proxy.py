#!/usr/bin/env python3
"""Forwards TCP connections on 127.0.0.1, plain or TLS, to the Docker engine's unix socket, so
that tests can use DOCKER_HOST=tcp://127.0.0.1:PORT against the engine they already have.

    engine_proxy.py --socket PATH --port-file FILE [--cert FILE --key FILE] [--log FILE]

It listens on a free port and writes the port to --port-file once it accepts connections.
With --cert and --key it speaks TLS and does not ask for client certificates. The end of a
client's input is passed on to the engine as a half-close. Over TLS, only a close_notify
alert ends the input: a TCP shutdown without one is logged as "truncated" and ends the
connection, as the engine's Go TLS stack treats it as a cut connection.
"""

import argparse
import os
import select
import socket
import ssl
import threading

BUFFER_LIMIT = 1 << 20


class Connection:
    def __init__(self, client, upstream, log):
        self.client = client
        self.upstream = upstream
        self.log = log
        self.peer = {client: upstream, upstream: client}
        self.pending = {client: b"", upstream: b""}  # bytes waiting to be written to that socket
        self.reading = {client: True, upstream: True}
        self.write_closed = {client: False, upstream: False}

    def readable_now(self):
        return [s for s in (self.client, self.upstream)
                if self.reading[s] and isinstance(s, ssl.SSLSocket) and s.pending()]

    def receive(self, source):
        try:
            data = source.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except ssl.SSLEOFError:
            self.log("truncated: the client ended its TLS input without close_notify")
            return False
        except OSError:
            data = b""
        if data:
            self.pending[self.peer[source]] += data
        else:
            self.reading[source] = False
        return True

    def send(self, target):
        try:
            sent = target.send(self.pending[target])
            self.pending[target] = self.pending[target][sent:]
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            pass
        except OSError:
            self.pending[target] = b""

    def pass_half_close(self):
        # The client's end of input becomes a shutdown towards the engine once all is sent.
        upstream = self.upstream
        if not self.reading[self.client] and not self.pending[upstream] and \
                not self.write_closed[upstream]:
            self.write_closed[upstream] = True
            upstream.shutdown(socket.SHUT_WR)

    def run(self):
        while self.reading[self.upstream] or self.pending[self.client]:
            readers = [s for s in (self.client, self.upstream)
                       if self.reading[s] and len(self.pending[self.peer[s]]) < BUFFER_LIMIT]
            writers = [s for s in (self.client, self.upstream) if self.pending[s]]
            now = self.readable_now()
            if not readers and not writers:
                break
            ready, writable, _ = select.select(readers, writers, [], 0 if now else 60)
            for source in set(ready) | set(now):
                if not self.receive(source):
                    return
            for target in writable:
                self.send(target)
            self.pass_half_close()


def serve(client, options, log):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if options.cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(options.cert, options.key)
            client.settimeout(10)
            client = context.wrap_socket(client, server_side=True, suppress_ragged_eofs=False)
        upstream.connect(options.socket)
        client.setblocking(False)
        upstream.setblocking(False)
        Connection(client, upstream, log).run()
    except (OSError, ssl.SSLError) as error:
        log(f"connection failed: {error}")
    finally:
        client.close()
        upstream.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--log")
    options = parser.parse_args()

    lock = threading.Lock()

    def log(message):
        if options.log:
            with lock, open(options.log, "a", encoding="utf-8") as file:
                file.write(message + "\n")

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    with open(options.port_file + ".tmp", "w", encoding="utf-8") as file:
        file.write(str(listener.getsockname()[1]))
    os.replace(options.port_file + ".tmp", options.port_file)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, options, log), daemon=True).start()


if __name__ == "__main__":
    main()
