# Connect to a server on the grading machine (e.g. to exfiltrate or fetch answers).
import socket
for host in ("127.0.0.1", "localhost"):
    try:
        with socket.create_connection((host, int("@@PORT@@")), timeout=2) as s:
            s.sendall(b"exfiltrated by network.py\n")
    except OSError:
        pass
