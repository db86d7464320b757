"""uvicorn for the FastAPI peer: N worker processes, each with its own SO_REUSEPORT listening socket.

    python -m bench.peers.fastapi_serve bench.peers.fastapi_app:app --host 127.0.0.1 --port P --workers 2

Why not ``uvicorn --workers N``: its workers share one listening socket, and whichever worker wakes
first accepts a whole burst of new keep-alive connections. wrk opens all its connections at once, so
one worker got all of them and the other idled (measured here: 2 workers used 1.00 core at c=32).
With one SO_REUSEPORT socket per worker the kernel spreads connections evenly, which is what the
"2 workers × 1 torch thread" configuration needs to be the best plain FastAPI setup it can be.

Each socket is created as ``socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)``: asyncio sets TCP_NODELAY only
on sockets whose ``proto`` is IPPROTO_TCP, and accepted sockets inherit the listening socket's ``proto``
attribute; with uvicorn's own ``--workers`` socket (proto 0) every response waited for Nagle's algorithm
and the client's delayed ACK, about 40 ms (18 requests/s at concurrency 1 instead of ~100).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import types


def serve_one(app: str, host: str, port: int, reuse_port: bool, loop: str, http: str, log_level: str) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config(app, loop=loop, http=http, access_log=False, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--http", default="h11")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--reuse-port-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.workers <= 1 or args.reuse_port_worker:
        serve_one(args.app, args.host, args.port, args.reuse_port_worker, args.loop, args.http, args.log_level)
        return
    common = [args.app, "--host", args.host, "--port", str(args.port), "--loop", args.loop, "--http", args.http]
    common += ["--log-level", args.log_level, "--reuse-port-worker"]
    workers = [
        subprocess.Popen([sys.executable, "-m", "bench.peers.fastapi_serve", *common]) for _ in range(args.workers)
    ]

    def stop(signum: int, _frame: types.FrameType | None) -> None:
        for w in workers:
            w.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for w in workers:
        w.wait()


if __name__ == "__main__":
    main()
