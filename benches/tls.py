"""The TLS workloads of flashgate's benchmark suite: `wss://` echo and full TLS handshakes
on flashgate's main port (`--tls-cert`, `--tls-key`) against nginx terminating TLS in front
of a WebSocket echo, as nginx's documentation sets up TLS and a WebSocket proxy. Plus the
metrics workloads: flashgate with its metrics listener on against the same gateway with it
off. `run.py` runs them as it runs the rest (same load, same pinning).

The certificate is made for the run with openssl (an ECDSA P-256 CA and server
certificate, what a current ACME client issues by default); the load generator trusts the
CA alone and never resumes a session, so every handshake is a full one on both servers.
"""

import functools
import socket
import subprocess
import tempfile
from pathlib import Path

import upstream

# The far end nginx proxies to, beside the load generator (started first).
UPSTREAMS = {"wss-echo": ["ws-upstream"], "tls-handshakes": ["ws-upstream"]}

# Workloads in which flashgate serves TLS.
TLS_WORKLOADS = set(UPSTREAMS)

# Workloads in which "flashgate" has its metrics listener on, and the reference runs the
# same gateway with it off.
METRICS_WORKLOADS = {"metrics-echo-32", "metrics-connect", "metrics-broadcast-rate"}


@functools.cache
def certificates():
    """(CA, certificate, key) for 127.0.0.1, made once per run in a directory of its own."""
    where = Path(tempfile.mkdtemp(prefix="flashgate-bench-tls-"))
    run = lambda *args: subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (where / "names.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "names.ext")
    return where / "ca.crt", where / "server.crt", where / "server.key"


def flashgate_args(s):
    """flashgate's extra options in this group's workloads (none outside it)."""
    s.extra.pop("metrics", None)
    if s.workload in TLS_WORKLOADS:
        _, cert, key = certificates()
        return ["--tls-cert", str(cert), "--tls-key", str(key)]
    if s.workload in METRICS_WORKLOADS and s.name == "flashgate":
        s.extra["metrics"] = free_port()
        return ["--metrics-listen", f"127.0.0.1:{s.extra['metrics']}"]
    return []


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# nginx terminating TLS as its documentation sets it up (`listen … ssl`, the certificate and
# key, its default protocols and ciphers), in front of the WebSocket echo as in the
# upstream workloads: one worker, pinned to the server core.
NGINX_TLS_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections {connections};
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};

        location /echo {{
            proxy_pass http://127.0.0.1:{upstream}/echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def nginx_tls(s):
    prefix = Path(s.logdir) / "nginx-tls"
    prefix.mkdir(parents=True, exist_ok=True)
    _, cert, key = certificates()
    conf = NGINX_TLS_CONF.format(dir=prefix, port=s.port, upstream=s.shared["ws-upstream"].port,
                                 connections=4096, cert=cert, key=key)
    (prefix / "nginx.conf").write_text(conf)
    return [upstream.nginx_binary(), "-p", str(prefix), "-c", "nginx.conf", "-e", "stderr",
            "-g", "daemon off;"]


def servers(Server, flashgate):
    return [
        Server("nginx-tls", nginx_tls,
               f"{upstream.nginx_version()} terminating TLS (one worker) → WebSocket echo"),
        Server("flashgate-metrics-off", flashgate, "flashgate, metrics listener off (the metrics workloads' reference)"),
    ]


def workloads(loadgen, url, d, n, members):
    """The group's workloads, as run.py's `workloads` gives them."""
    def ca(server):
        return str(certificates()[0])

    def wss_echo(server):
        return loadgen("echo", "--url", f"wss://127.0.0.1:{server.port}/echo", "--ca", ca(server),
                       "-n", n, "-k", 16, "-s", 32, *d)

    def handshakes(server):
        return loadgen("connect", "--url", f"tls://127.0.0.1:{server.port}", "--ca", ca(server), "-c", 32, *d)

    def echo(server):
        return loadgen("echo", "--url", url(server), "-n", n, "-k", 16, "-s", 32, *d)

    def connect(server):
        return loadgen("connect", "--url", url(server), "-c", 32, *d)

    def broadcast(server):
        return loadgen("broadcast", "--url", url(server, "/chat"), "-m", members, "--burst", 16, *d)

    both = ["flashgate", "flashgate-metrics-off"]
    return [
        ("wss-echo", f"wss:// echo, N={n}, K=16, S=32 B", ["nginx-tls", "flashgate"], "msgs_per_s", True, wss_echo),
        ("tls-handshakes", "TLS handshakes (full: no session resumed; ECDSA P-256), then close_notify",
         ["nginx-tls", "flashgate"], "conns_per_s", True, handshakes),
        ("metrics-echo-32", f"echo, N={n}, K=16, S=32 B, metrics listener on and off", both,
         "msgs_per_s", True, echo),
        ("metrics-connect", "connect (open, upgrade, close), metrics listener on and off", both,
         "conns_per_s", True, connect),
        ("metrics-broadcast-rate", f"broadcast, M={members}, 16 messages at a time, metrics listener on and off",
         both, "deliveries_per_s", True, broadcast),
    ]


TARGETS = [
    ("wss-echo", "msgs_per_s", "nginx-tls", 1.0, "≥ 1.0× nginx terminating TLS"),
    ("tls-handshakes", "conns_per_s", "nginx-tls", 1.0, "≥ 1.0× nginx"),
    ("metrics-echo-32", "msgs_per_s", "flashgate-metrics-off", 0.97, "metrics on ≥ 0.97× off"),
    ("metrics-connect", "conns_per_s", "flashgate-metrics-off", 0.97, "metrics on ≥ 0.97× off"),
    ("metrics-broadcast-rate", "deliveries_per_s", "flashgate-metrics-off", 0.97, "metrics on ≥ 0.97× off"),
]
