"""Ports handed out by the operating system, never fixed ranges: two runs on one machine cannot collide."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"
# Sockets that hold a port closed (bound, never listening) for the life of this process.
_held: list[socket.socket] = []


def bound_socket(host: str = HOST, port: int = 0, *, reuse: bool = True) -> socket.socket:
    """Bind a TCP socket to host:port (0: a port the OS chooses), inheritable, not listening yet.

    Handed to gunicorn as `--bind fd://N`, it is the server's listening socket: no other process can
    take the port between choosing it and serving on it. `reuse` (SO_REUSEADDR) binds as a server
    does, past connections of an earlier server in TIME_WAIT.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def free_port(host: str = HOST) -> int:
    """Return a port the OS says is free now; a server that binds it itself must retry on a bind failure."""
    with bound_socket(host) as sock:
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = HOST) -> bool:
    """Tell whether a server could bind host:port now."""
    try:
        bound_socket(host, port).close()
    except OSError:
        return False
    return True


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def closed_port(host: str = HOST) -> int:
    """Return a port that refuses connections and that nothing else can take while this process runs.

    The port stays bound by a socket that never listens: a dependency pointed there is down
    (connection refused at once), and no other run's server can start on it meanwhile.
    """
    # Without SO_REUSEADDR: Linux lets two SO_REUSEADDR sockets share a port while neither listens.
    sock = bound_socket(host, reuse=False)
    _held.append(sock)
    return sock.getsockname()[1]
