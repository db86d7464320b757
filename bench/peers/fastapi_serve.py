"""uvicorn for the FastAPI peer, with TCP_NODELAY on every connection also when ``--workers`` > 1.

    python -m bench.peers.fastapi_serve bench.peers.fastapi_app:app --workers 2 [uvicorn options]

With several workers uvicorn binds the listening socket itself, as ``socket.socket(AF_INET)``: its
``proto`` attribute is 0, accepted connections inherit that, and asyncio sets TCP_NODELAY only on
sockets whose ``proto`` is IPPROTO_TCP. Every response then waits for Nagle's algorithm and the
client's delayed ACK, about 40 ms on Linux (measured here: 18 requests/s at concurrency 1 instead of
~100). Re-creating the socket object from its descriptor lets the kernel report the protocol; the
workers receive that object, so their connections get TCP_NODELAY like a single uvicorn process's do.
"""

from __future__ import annotations

import socket

import uvicorn.config
import uvicorn.main

_bind_socket = uvicorn.config.Config.bind_socket


def _bind_socket_with_protocol(self: uvicorn.config.Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(fileno=sock.detach())  # family, type and proto read back from the kernel
    return sock


uvicorn.config.Config.bind_socket = _bind_socket_with_protocol  # type: ignore[method-assign]

if __name__ == "__main__":
    uvicorn.main.main()
