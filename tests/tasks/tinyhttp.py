"""A tiny HTTP server to run as a task: listens on $PORT0 (or argv[1]) and answers every request.

``GET /health`` answers 200, or 503 while a file ``$BAY_SICK_DIR/sick-<port>`` exists (so a test can
make one task fail its health check). Every other path answers 200 with the port. It imports only
``socket`` and ``os`` and runs under ``python -S``, so a hundred of them start in well under a second.
"""

import os
import socket
import sys


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT0"])
    sick = os.path.join(os.environ.get("BAY_SICK_DIR", "/nonexistent"), f"sick-{port}")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((os.environ.get("HOST_BIND", "127.0.0.1"), port))
    srv.listen(64)
    print(f"listening on {port}", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            conn.settimeout(2.0)
            request = conn.recv(4096)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            if path == b"/health" and os.path.exists(sick):
                status, body = b"503 Service Unavailable", b"sick\n"
            else:
                status, body = b"200 OK", b"ok %d\n" % port
            conn.sendall(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                + body
            )
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
