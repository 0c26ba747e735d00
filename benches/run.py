"""flashgate's benchmark suite: flashgate and its peers under the same load, in one run.

Every server runs pinned to one core and the load generator to the other (taskset), each
figure is repeated (round robin over the servers, so drift hits all alike) and reported as
median and spread, and the report compares ratios measured in this run, never absolute
numbers across runs. `benches/run` installs the peers and calls this; see docs/BENCHMARKS.md.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import tls
import upstream

REPO = Path(__file__).resolve().parent.parent
BENCHES = REPO / "benches"
# Where `benches/run` built the binaries: cargo's target directory.
TARGET = REPO / os.environ.get("CARGO_TARGET_DIR", "target")
LOADGEN = TARGET / "release" / "loadgen"
FLASHGATE = TARGET / "release" / "flashgate"
PYTHON = BENCHES / ".venv" / "bin" / "python"
SERVER_CPU = "0"
LOAD_CPU = "1"


def free_port():
    """A port to listen on, below the kernel's ephemeral range: the workloads open tens of
    thousands of connections, and a port taken from that range (as binding port 0 gives)
    can be some connection's own before the server gets to bind it."""
    low = 32768
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(1000):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port below the ephemeral range")


class Server:
    """A server process pinned to the server core, started fresh when needed."""

    def __init__(self, name, argv_for_port, label, cpu=SERVER_CPU, env=None):
        self.name = name
        self.env = env or {}
        self.cpu = cpu
        self.label = label
        self.argv_for_port = argv_for_port
        self.proc = None
        self.port = None
        self.extra = {}
        self.log = None
        self.logdir = None
        self.workload = None  # set by run_suite: a server's configuration may depend on it

    def start(self, logdir):
        self.logdir = logdir
        self.port = free_port()
        argv = self.argv_for_port(self)
        self.log = open(logdir / f"{self.name}.log", "w")
        env = dict(os.environ, RUST_LOG="warn", **self.env)
        self.proc = subprocess.Popen(["taskset", "-c", self.cpu, *argv], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                     preexec_fn=raise_nofile)
        wait_port(self.port, self.name)
        # Its other listeners (not the far ends it is told of, `*_target`: another server's).
        for key, port in self.extra.items():
            if not key.endswith("_target"):
                wait_port(port, self.name)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_port(port, name, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not listen on {port}")


def node(script):
    return lambda s: ["node", str(BENCHES / "peers" / script), str(s.port)]


def servers():
    """Every server of the suite, by name."""
    def flashgate(s):
        s.extra["policy"] = free_port()
        # The socket proxy's target, the TCP echo, when it runs (an upstream workload may
        # relay to other far ends only); in the upstream workloads, routes to their far ends.
        target = s.shared["proxy-target"]
        if target.proc:
            s.extra["echo_target"] = target.port
        proxy = ["--proxy-target", f"self,127.0.0.1:{target.port}"] if target.proc else []
        return [str(FLASHGATE), "--listen", f"127.0.0.1:{s.port}",
                "--policy-listen", f"127.0.0.1:{s.extra['policy']}", *proxy, *upstream.routes(s),
                *tls.flashgate_args(s),
                "--max-connections", "50000", "--web-dir", str(REPO / "web"),
                "--assets-dir", str(REPO / "assets")]

    def websockify(s):
        return [str(BENCHES / ".venv" / "bin" / "websockify"), f"127.0.0.1:{s.port}",
                f"127.0.0.1:{s.shared['proxy-target'].port}"]

    table = [
        Server("tcp-echo", lambda s: [str(LOADGEN), "serve", "tcp-echo", "--listen", f"127.0.0.1:{s.port}"],
               "raw TCP echo (tokio)"),
        # The socket proxies' backend runs beside the load generator: it is the far end,
        # not the server under test.
        Server("proxy-target", lambda s: [str(LOADGEN), "serve", "tcp-echo", "--listen", f"127.0.0.1:{s.port}"],
               "TCP echo behind the proxies", cpu=LOAD_CPU),
        Server("tcp-reply", lambda s: [str(LOADGEN), "serve", "tcp-reply", "--listen", f"127.0.0.1:{s.port}"],
               "raw TCP accept+reply+close (tokio)"),
        # Floors: the least a socket proxy and a broadcast room can do on this machine.
        Server("tcp-relay", lambda s: [str(LOADGEN), "serve", "tcp-relay", "--listen", f"127.0.0.1:{s.port}",
                                       "--target", f"127.0.0.1:{s.shared['proxy-target'].port}"],
               "raw TCP relay → TCP echo (tokio; floor)"),
        Server("ws-fanout", lambda s: [str(LOADGEN), "serve", "ws-fanout", "--listen", f"127.0.0.1:{s.port}"],
               "minimal WebSocket fan-out (tokio, one write per member; floor)"),
        Server("ws-echo", lambda s: [str(LOADGEN), "serve", "ws-echo", "--listen", f"127.0.0.1:{s.port}"],
               "minimal WebSocket echo (tokio, nothing checked; floor)"),
        Server("flashgate", flashgate, "flashgate"),
        # The mixed room's reference: the same room in the same run, every member on WebSocket.
        Server("flashgate-all-ws", flashgate, "flashgate, every member on WebSocket (no SockJS members)"),
        # The hixie-76 workloads' reference: the same gateway in the same run, on RFC 6455.
        Server("flashgate-rfc6455", flashgate, "flashgate, RFC 6455 clients (the hixie-76 workloads' reference)"),
        # Idle echo connections sleep after --hibernate-after (1 s); this one never does.
        Server("flashgate-awake", lambda s: flashgate(s) + ["--hibernate-after", "0s"],
               "flashgate, never asleep (--hibernate-after 0s)"),
        Server("tungstenite", lambda s: [str(LOADGEN), "serve", "tungstenite-echo", "--listen", f"127.0.0.1:{s.port}"],
               "tokio-tungstenite echo (as the crate's example: read half forwarded into the write half)"),
        # The same with a naive loop (one awaited send(), so one flush and one write, per
        # message): what the usual first attempt gets, not what tokio-tungstenite can do.
        Server("tungstenite-naive", lambda s: [str(LOADGEN), "serve", "tungstenite-echo-naive", "--listen", f"127.0.0.1:{s.port}"],
               "tokio-tungstenite echo, naive loop (send() awaited per message; extra)"),
        Server("uws", node("uws-server.js"), "uWebSockets.js"),
        # `npm install ws` as it comes: masking and UTF-8 checks in JavaScript. Its optional
        # native addons are in node_modules anyway (uWebSockets.js's package brings them), so
        # they are switched off here and measured on their own in the next row.
        Server("node-ws", node("ws-server.js"), "Node ws",
               env={"WS_NO_BUFFER_UTIL": "1", "WS_NO_UTF_8_VALIDATE": "1"}),
        Server("node-ws-native", node("ws-server.js"), "Node ws + bufferutil, utf-8-validate (native addons)"),
        Server("py-websockets", lambda s: [str(PYTHON), str(BENCHES / "peers" / "websockets_server.py"), str(s.port)],
               "Python websockets"),
        Server("websockify", websockify, "websockify → TCP echo"),
        Server("node-policy", node("policy-server.js"), "Node policy server"),
        # The SockJS reference server as its README sets it up (every option at its default).
        Server("sockjs-node", node("sockjs-server.js"), "sockjs-node 0.3.24"),
        *upstream.servers(Server, LOADGEN, flashgate, LOAD_CPU),
        *tls.servers(Server, flashgate),
    ]
    by_name = {s.name: s for s in table}
    for s in table:
        s.shared = by_name
    return by_name


def loadgen(*args, timeout=600):
    cmd = ["taskset", "-c", LOAD_CPU, str(LOADGEN), *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=raise_nofile)
    if out.returncode != 0:
        # The first lines say what went wrong (a backtrace may follow).
        raise RuntimeError(f"loadgen {args[0]}: {out.stderr.strip()[:400]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def url(server, path="/echo"):
    if server.name in ("tcp-echo", "tcp-reply", "tcp-relay"):
        return f"tcp://127.0.0.1:{server.port}"
    if server.name == "websockify":
        return f"ws://127.0.0.1:{server.port}/"
    if server.name == "flashgate" and path == "/socket":
        return f"ws://127.0.0.1:{server.port}/socket?target=127.0.0.1:{server.extra['echo_target']}"
    return f"ws://127.0.0.1:{server.port}{path}"


def http_url(server, path):
    """A SockJS base URL: a route of flashgate's, a prefix of sockjs-node's."""
    return f"http://127.0.0.1:{server.port}{path}"


def workloads(smoke):
    """(name, title, servers, metric, higher_is_better, run(server) -> result dict)."""
    d = ["-d", "1" if smoke else "5", "--warmup", "0.3" if smoke else "1"]
    n = 20 if smoke else 100
    idle_c = 200 if smoke else 10_000
    members = 100 if smoke else 10_000

    def echo(k, size, path="/echo", proxy=False):
        def run(server):
            args = ["echo", "--url", url(server, path), "-n", n, "-k", k, "-s", size, *d]
            # Through a socket proxy bytes come back in whatever frames the proxy makes.
            return loadgen(*(args + (["--binary", "--stream"] if proxy else [])))
        return run

    def connect(server):
        return loadgen("connect", "--url", url(server), "-c", 32, *d)

    def idle(server):
        return loadgen("idle", "--url", url(server), "-c", idle_c, "--pid", server.pid)

    def broadcast_latency(interval):
        return lambda server: loadgen("broadcast", "--url", url(server, "/chat"), "-m", members,
                                      "--interval", interval, *d)

    def broadcast_rate(burst):
        return lambda server: loadgen("broadcast", "--url", url(server, "/chat"), "-m", members,
                                      "--burst", burst, *d)

    def sockjs(transport, k):
        return lambda server: loadgen("sockjs", "--url", http_url(server, "/echo"), "--transport", transport,
                                      "-n", n, "-k", k, "-s", 32, *d)

    def sockjs_idle(server):
        return loadgen("sockjs", "--idle", "--url", http_url(server, "/echo"), "-c", idle_c, "--pid", server.pid)

    def mixed_room(server):
        # sockjs-node's WebSocket members (and the publisher) take its plain WebSocket, the
        # room's PREFIX/websocket; flashgate's, the route itself.
        room = (["--url", f"ws://127.0.0.1:{server.port}/chat/websocket", "--sockjs-url", http_url(server, "/chat")]
                if server.name == "sockjs-node" else ["--url", url(server, "/chat")])
        mixed = [] if server.name == "flashgate-all-ws" else ["--sockjs-streaming", 0.5]
        return loadgen("broadcast", *room, "-m", members, "--interval", 50, *mixed, *d)

    def hixie76(k, size):
        # flashgate's clients speak hixie-76; the reference's, RFC 6455, to the same route.
        def run(server):
            scheme = "ws" if server.name == "flashgate-rfc6455" else "hixie76"
            return loadgen("echo", "--url", f"{scheme}://127.0.0.1:{server.port}/echo", "-n", n, "-k", k,
                           "-s", size, *d)
        return run

    def hixie76_idle(server):
        scheme = "ws" if server.name == "flashgate-rfc6455" else "hixie76"
        return loadgen("idle", "--url", f"{scheme}://127.0.0.1:{server.port}/echo", "-c", idle_c,
                       "--pid", server.pid)

    def policy(server):
        port = server.extra.get("policy", server.port)
        return loadgen("policy", "--addr", f"127.0.0.1:{port}", "-c", 32, "--pid", server.pid, *d)

    ws_peers = ["uws", "node-ws", "node-ws-native", "py-websockets"]
    return [
        ("echo-32", f"echo, N={n}, K=16, S=32 B", ["tcp-echo", "ws-echo", "flashgate", "tungstenite", "tungstenite-naive", *ws_peers],
         "msgs_per_s", True, echo(16, 32)),
        ("echo-k1", f"echo, N={n}, K=1, S=32 B", ["tcp-echo", "ws-echo", "flashgate", "uws", "node-ws", "node-ws-native"],
         "msgs_per_s", True, echo(1, 32)),
        ("echo-16k", f"echo, N={n}, K=16, S=16 KiB", ["tcp-echo", "flashgate", "uws", "node-ws", "node-ws-native"],
         "msgs_per_s", True, echo(16, 16384)),
        ("connect", "connect (open, upgrade, close)", ["tcp-echo", "flashgate", "uws", "node-ws"],
         "conns_per_s", True, connect),
        ("idle", f"idle, C={idle_c}", ["tcp-echo", "flashgate", "flashgate-awake", "uws", "node-ws", "py-websockets"],
         "bytes_per_conn", False, idle),
        ("broadcast-latency", f"broadcast, M={members}, 20 msg/s", ["ws-fanout", "flashgate", "uws", "node-ws"],
         "p99_us", False, broadcast_latency(50)),
        # The floor of the latency target: the minimal fan-out where it keeps up.
        ("broadcast-latency-floor", f"broadcast, M={members}, 2 msg/s (a rate the minimal fan-out keeps up with)",
         ["ws-fanout", "flashgate"], "p99_us", False, broadcast_latency(500)),
        ("broadcast-rate", f"broadcast, M={members}, 16 messages at a time (as echo K=16), each burst delivered to all before the next",
         ["ws-fanout", "flashgate", "uws", "node-ws"], "deliveries_per_s", True, broadcast_rate(16)),
        ("broadcast-rate-1", f"broadcast, M={members}, one message at a time, each delivered to all before the next",
         ["ws-fanout", "flashgate", "uws", "node-ws"], "deliveries_per_s", True, broadcast_rate(1)),
        ("policy", "policy replies", ["tcp-reply", "flashgate", "node-policy"],
         "replies_per_cpu_s", True, policy),
        ("proxy", f"socket proxy, N={n}, K=16, S=32 B binary", ["tcp-echo", "tcp-relay", "flashgate", "websockify"],
         "msgs_per_s", True, echo(16, 32, path="/socket", proxy=True)),
        ("sockjs-xhr-streaming", f"SockJS xhr-streaming echo, N={n} sessions, K=16, S=32 B (a streaming response "
         "and an xhr_send connection per session)", ["flashgate", "sockjs-node"], "msgs_per_s", True,
         sockjs("xhr-streaming", 16)),
        ("sockjs-xhr-polling", f"SockJS xhr-polling round trips, N={n} sessions, K=1, S=32 B (xhr_send, then xhr "
         "until the echo is back)", ["flashgate", "sockjs-node"], "round_trips_per_s", True, sockjs("xhr-polling", 1)),
        ("sockjs-websocket", f"SockJS over WebSocket echo, N={n}, K=16, S=32 B", ["flashgate", "sockjs-node"],
         "msgs_per_s", True, sockjs("websocket", 16)),
        ("sockjs-idle", f"SockJS idle xhr-streaming sessions, C={idle_c}", ["flashgate", "sockjs-node"],
         "bytes_per_conn", False, sockjs_idle),
        ("sockjs-mixed-room", f"broadcast, M={members}, 20 msg/s, half the members SockJS xhr-streaming",
         ["flashgate", "flashgate-all-ws", "sockjs-node"], "p99_us", False, mixed_room),
        ("hixie76-echo-32", f"hixie-76 echo, N={n}, K=16, S=32 B", ["flashgate", "flashgate-rfc6455"],
         "msgs_per_s", True, hixie76(16, 32)),
        ("hixie76-echo-16k", f"hixie-76 echo, N={n}, K=16, S=16 KiB", ["flashgate", "flashgate-rfc6455"],
         "msgs_per_s", True, hixie76(16, 16384)),
        ("hixie76-idle", f"idle hixie-76 connections, C={idle_c}", ["flashgate", "flashgate-rfc6455"],
         "bytes_per_conn", False, hixie76_idle),
        *upstream.workloads(loadgen, url, d, n, idle_c),
        *tls.workloads(loadgen, url, d, n, members),
    ]


# What each workload must show: (workload, metric, flashgate vs server, factor, description).
TARGETS = [
    ("echo-32", "msgs_per_s", "tcp-echo", 0.6, "≥ 0.6× raw TCP"),
    ("echo-32", "msgs_per_s", "uws", 1.3, "≥ 1.3× uWebSockets.js"),
    ("echo-32", "msgs_per_s", "node-ws", 5.0, "≥ 5× Node ws"),
    ("echo-k1", "msgs_per_s", "tcp-echo", 0.9, "≥ 0.9× raw TCP"),
    ("echo-k1", "p99_us", "tcp-echo", 1.5, "p99 ≤ 1.5× raw TCP's p99"),
    ("echo-16k", "msgs_per_s", "uws", 1.0, "≥ 1.0× uWebSockets.js"),
    ("echo-16k", "msgs_per_s", "node-ws", 5.0, "≥ 5× Node ws"),
    ("connect", "conns_per_s", "tcp-echo", 0.6, "≥ 0.6× raw TCP accept+close"),
    ("idle", "bytes_per_conn", None, 8192, "≤ 8 KiB per connection"),
    ("idle", "bytes_per_conn", "*", 1.0, "below every peer"),
    ("broadcast-latency", "p99_us", "fanout-floor", 1.3,
     "p99 ≤ 1.3× the minimal fan-out's p99 at a rate it keeps up with"),
    ("broadcast-rate", "deliveries_per_s", "node-ws", 2.0, "≥ 2× Node ws fan-out"),
    ("policy", "replies_per_s", "tcp-reply", 0.8, "≥ 0.8× raw TCP accept+reply+close"),
    ("policy", "replies_per_cpu_s", "node-policy", 3.0, "≥ 3× Node policy server per server CPU-second"),
    ("proxy", "msgs_per_s", "websockify", 10.0, "≥ 10× websockify"),
    ("proxy", "msgs_per_s", "tcp-echo", 0.5, "≥ 0.5× raw TCP echo"),
    ("sockjs-xhr-streaming", "msgs_per_s", "sockjs-node", 5.0, "≥ 5× sockjs-node"),
    ("sockjs-xhr-polling", "round_trips_per_s", "sockjs-node", 5.0, "≥ 5× sockjs-node"),
    ("sockjs-websocket", "msgs_per_s", "sockjs-node", 5.0, "≥ 5× sockjs-node"),
    ("sockjs-idle", "bytes_per_conn", None, 2048, "≤ 2 KiB per session"),
    ("sockjs-idle", "bytes_per_conn", "*", 1.0, "below sockjs-node"),
    ("hixie76-echo-32", "msgs_per_s", "flashgate-rfc6455", 0.9, "≥ 0.9× flashgate's RFC 6455 echo (same run)"),
    ("hixie76-echo-16k", "msgs_per_s", "flashgate-rfc6455", 0.9, "≥ 0.9× flashgate's RFC 6455 echo (same run)"),
    ("hixie76-idle", "bytes_per_conn", "flashgate-rfc6455", 1.3,
     "about what an idle RFC 6455 connection costs (≤ 1.3×, same run)"),
    ("sockjs-mixed-room", "p99_us", "flashgate-all-ws", 1.5,
     "p99 ≤ 1.5× the all-WebSocket room's p99 (flashgate both, same run)"),
    ("upstream-ws", "msgs_per_s", "nginx", 0.8, "≥ 0.8× nginx"),
    ("upstream-tcp", "msgs_per_s", "tcp-relay", 1.0, "≥ 1.0× the raw TCP relay floor"),
    ("upstream-tcp", "msgs_per_s", "websockify", 10.0, "≥ 10× websockify"),
    ("upstream-xmlsocket", "msgs_per_s", "flashgate-tcp-relay", 0.9,
     "≥ 0.9× flashgate's tcp:// relay (same run)"),
    ("upstream-idle", "bytes_per_conn", None, 8192, "≤ 8 KiB per session"),
    ("upstream-idle-ws", "bytes_per_conn", None, 8192, "≤ 8 KiB per session"),
    *tls.TARGETS,
]

LOWER_IS_BETTER = {"p50_us", "p99_us", "p999_us", "bytes_per_conn"}


def context(results, workload, other, metric):
    """What the floors measured in this run say about a target, or ''."""
    med = lambda s, m: median(results, workload, s, m)
    if workload == "echo-16k" and other == "node-ws":
        node, raw = med("node-ws", "msgs_per_s"), med("tcp-echo", "msgs_per_s")
        native = med("node-ws-native", "msgs_per_s")
        if node and raw:
            with_addons = f" ({native / raw:.2f}× with its native addons)" if native else ""
            return (f"Node ws runs at {node / raw:.2f}× the raw TCP echo here{with_addons}: 5× Node ws "
                    f"would be {5 * node / raw:.1f}× the raw TCP echo")
    if workload == "idle" and other == "*":
        raw, uws = med("tcp-echo", "bytes_per_conn"), med("uws", "bytes_per_conn")
        awake = med("flashgate-awake", "bytes_per_conn")
        if raw and uws:
            awake = f"; awake, a flashgate connection holds {kib(awake)}" if awake else ""
            return (f"a tokio task and socket per connection (raw TCP echo) take {kib(raw)}; "
                    f"uWebSockets.js keeps {kib(uws)} without a task per connection; flashgate's "
                    f"silent connections sleep after 1 s without a task either{awake}")
    if workload == "broadcast-latency":
        rate = median(results, "broadcast-rate-1", "ws-fanout", "deliveries_per_s")
        members = next((r["members"] for r in results["broadcast-latency"].get("flashgate", []) if "members" in r), None)
        measured = median(results, "broadcast-latency", "ws-fanout", "p99_us")
        alone = median(results, "broadcast-latency-floor", "flashgate", "p99_us")
        parts = []
        if measured:
            parts.append(f"at 20 msg/s the minimal fan-out (one write per member per message) falls "
                         f"behind (p99 {fmt_ms(measured)}); at 2 msg/s it keeps up, and that p99 is the floor")
        if alone:
            parts.append(f"flashgate's own p99 at 2 msg/s is {fmt_ms(alone)}")
        if rate and members:
            parts.append(f"the minimal fan-out's writes alone, {fmt(rate)} messages/s one member after "
                         f"another, reach 99% of {members} members in {fmt_ms(0.99 * members / rate * 1e6)}, "
                         f"before the members have read them")
        return "; ".join(parts)
    if workload == "broadcast-rate":
        one = lambda s: median(results, "broadcast-rate-1", s, "deliveries_per_s")
        ours, floor, node = one("flashgate"), one("ws-fanout"), one("node-ws")
        if ours and floor and node:
            return (f"one message at a time, flashgate reaches {ours / node:.2f}× Node ws, where the "
                    f"minimal fan-out (one write per member per message) reaches {floor / node:.2f}×: "
                    f"with one message in flight nothing can be batched")
    if workload in ("echo-32", "echo-k1") and other == "tcp-echo" and metric == "msgs_per_s":
        floor, raw, uws = med("ws-echo", "msgs_per_s"), med("tcp-echo", "msgs_per_s"), med("uws", "msgs_per_s")
        if floor and raw and uws:
            return (f"a minimal WebSocket echo (nothing checked) reaches {floor / raw:.2f}× the raw TCP "
                    f"echo, uWebSockets.js {uws / raw:.2f}×")
    if workload == "sockjs-mixed-room":
        mixed, all_ws = med("flashgate", "p99_us"), med("flashgate-all-ws", "p99_us")
        node = med("sockjs-node", "p99_us")
        if mixed and all_ws:
            theirs = f"; sockjs-node's mixed room {fmt_ms(node)}" if node else ""
            return f"p99 {fmt_ms(mixed)} with half the room on xhr-streaming, {fmt_ms(all_ws)} all on WebSocket{theirs}"
    if workload == "proxy" and other == "tcp-echo":
        relay, raw = med("tcp-relay", "msgs_per_s"), med("tcp-echo", "msgs_per_s")
        if relay and raw:
            return f"a raw TCP relay (no WebSocket at all) reaches {relay / raw:.2f}× the raw TCP echo"
    if workload in upstream.UPSTREAMS:
        return upstream.context(lambda w, s, m: median(results, w, s, m), workload, other)
    return ""


def kib(b):
    return f"{b / 1024:.2f} KiB"


def fmt_ms(us):
    return f"{us / 1000:.0f} ms" if us >= 10_000 else f"{us / 1000:.1f} ms"


def far_ends(workload, names):
    """The servers beside the load generator that the workload's servers relay to."""
    if workload in upstream.UPSTREAMS:
        return upstream.UPSTREAMS[workload]
    if workload in tls.UPSTREAMS:
        return tls.UPSTREAMS[workload]
    return ["proxy-target"] if {"flashgate", "websockify", "tcp-relay"} & set(names) else []


def refused(server):
    """Why this build of flashgate refuses `server`'s configuration (a route to a backend it
    does not know yet: `flashgate --check` says "unknown backend"), or None. Such a row is
    reported as not supported by this build, loudly, and not run; any other problem fails
    the run as it would have anyway."""
    if not server.name.startswith("flashgate"):
        return None
    server.port = free_port()
    argv = server.argv_for_port(server)
    out = subprocess.run([*argv, "--check"], capture_output=True, text=True, cwd=REPO, timeout=60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    found = re.search(r"unknown backend [^(\n]*", text)
    if out.returncode != 0 and found:
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", found.group(0).strip())
    return None


def run_suite(args):
    logdir = Path(args.logs)
    logdir.mkdir(parents=True, exist_ok=True)
    table = servers()
    results = {}  # workload -> server -> [result dicts]
    chosen = [w for w in workloads(args.smoke) if not args.only or w[0] in args.only]
    for name, title, names, metric, _, run in chosen:
        print(f"== {title}", flush=True)
        results[name] = {s: [] for s in names}
        fresh = name in ("idle", "sockjs-idle", "hixie76-idle") or name in upstream.FRESH
        ends = far_ends(name, names)
        needed = set(names) | set(ends)
        order = ends + [s for s in needed if s not in ends]
        for s in needed:
            table[s].workload = name
        unsupported = {}  # server -> why this build cannot run it
        running = []
        try:
            if not fresh:
                for s in order:
                    if why := refused(table[s]):
                        unsupported[s] = why
                    else:
                        running.append(table[s].start(logdir))
            for rep in range(args.reps):
                for s in names:
                    server = table[s]
                    deps = []
                    if fresh and s not in unsupported:  # memory is measured on a server that has served nothing yet
                        if name in upstream.UPSTREAMS or s.startswith("flashgate") or s == "websockify":
                            deps = [table[e].start(logdir) for e in ends]
                        if why := refused(server):
                            unsupported[s] = why
                        else:
                            server.start(logdir)
                    if s in unsupported:
                        for dep in deps:
                            dep.stop()
                        results[name][s].append({"unsupported": unsupported[s]})
                        print(f"   {s:17} run {rep + 1}: NOT SUPPORTED by this build of flashgate, not run "
                              f"({unsupported[s]})", flush=True)
                        continue
                    settle(running)
                    try:
                        result = run(server)
                    except Exception as error:  # a failed run is reported, not hidden
                        result = {"error": str(error)[:500]}
                    finally:
                        if fresh:
                            server.stop()
                            for dep in deps:
                                dep.stop()
                    results[name][s].append(result)
                    shown = result.get(metric, result.get("error"))
                    print(f"   {s:17} run {rep + 1}: {metric} = {fmt(shown)}", flush=True)
        finally:
            for server in reversed(running):
                server.stop()
    return results


def cpu_ticks(pid):
    """CPU time (clock ticks) used so far by `pid` and its threads; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def settle(running, quiet=0.02, most=60.0):
    """Waits until every running server is idle (under `quiet` of a core for half a second),
    at most `most` seconds: a server still working off the last round's backlog (a peer that
    fell seconds behind in a broadcast) would otherwise take the core from the next one."""
    deadline = time.time() + most
    pids = [s.pid for s in running if s.proc and s.proc.poll() is None]
    tick = os.sysconf("SC_CLK_TCK")
    while time.time() < deadline:
        before = sum(cpu_ticks(p) for p in pids)
        time.sleep(0.5)
        if (sum(cpu_ticks(p) for p in pids) - before) / tick <= quiet * 0.5:
            return


def fmt(value):
    if isinstance(value, (int, float)):
        if value >= 1e6:
            return f"{value / 1e6:.2f} M"
        if value >= 1e4:
            return f"{value / 1e3:.1f} k"
        if value >= 100:
            return f"{value:.0f}"
        return f"{value:.2f}"
    return str(value)


def values(results, workload, server, metric):
    runs = results.get(workload, {}).get(server, [])
    return [r[metric] for r in runs if isinstance(r.get(metric), (int, float))]


def paired(results, workload, server, metric, higher=True):
    """flashgate against `server` as the median of the ratios of each round (every round runs
    all servers back to back, so drift of the machine between rounds cancels out): how many
    times better flashgate is when `higher` is better, or its share otherwise."""
    ours = results.get(workload, {}).get("flashgate", [])
    theirs = results.get(workload, {}).get(server, [])
    ratios = []
    for a, b in zip(ours, theirs):
        a, b = a.get(metric), b.get(metric)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 and b > 0:
            ratios.append(a / b if higher else b / a)
    return statistics.median(ratios) if ratios else None


def median(results, workload, server, metric):
    v = values(results, workload, server, metric)
    return statistics.median(v) if v else None


def fanout_floor_us(results):
    """The minimal fan-out's p99 at a rate it keeps up with (one message every 500 ms): the
    floor of the broadcast-latency p99, measured as flashgate's is."""
    return median(results, "broadcast-latency-floor", "ws-fanout", "p99_us")


def check_targets(results):
    rows = []
    for workload, metric, other, factor, text in TARGETS:
        if workload not in results:
            continue
        ours = median(results, workload, "flashgate", metric)
        note = context(results, workload, other, metric)
        if ours is None:
            why = unsupported(results, workload, "flashgate")
            # ok None: not judged, since this build cannot run the workload at all.
            rows.append((workload, text, f"not run: not supported by this build ({why})" if why else "no result",
                         None if why else False, note))
            continue
        if other is None:
            ok = ours <= factor if metric in LOWER_IS_BETTER else ours >= factor
            shown = fmt_ms(ours) if metric.endswith("_us") else kib(ours) if metric == "bytes_per_conn" else fmt(ours)
            rows.append((workload, text, shown, ok, note))
        elif other == "fanout-floor":
            floor = fanout_floor_us(results)
            if floor is None:
                rows.append((workload, text, "no floor result", False, note))
                continue
            ratio = ours / floor
            rows.append((workload, text, f"{ratio:.2f}× ({fmt_ms(ours)} against {fmt_ms(floor)})",
                         ratio <= factor, note))
        elif other == "*":
            peers = [s for s in results[workload] if s not in ("flashgate", "flashgate-awake", "tcp-echo")]
            theirs = [(s, median(results, workload, s, metric)) for s in peers]
            theirs = [(s, v) for s, v in theirs if v is not None]
            ok = all(ours < v for _, v in theirs)
            best = min(theirs, key=lambda t: t[1]) if theirs else ("-", None)
            show = kib if metric == "bytes_per_conn" else fmt
            rows.append((workload, text, f"{show(ours)} vs best peer {best[0]} {show(best[1])}", ok, note))
        else:
            ratio = paired(results, workload, other, metric)
            if ratio is None:
                rows.append((workload, text, "no peer result", False, note))
                continue
            ok = ratio <= factor if metric in LOWER_IS_BETTER else ratio >= factor
            rows.append((workload, text, f"{ratio:.2f}×", ok, note))
    return rows


def unsupported(results, workload, server):
    """Why this build could not run `server` in `workload` (see `refused`), or None."""
    runs = results.get(workload, {}).get(server, [])
    return next((r["unsupported"] for r in runs if "unsupported" in r), None)


def met(ok):
    return "yes" if ok else "not run" if ok is None else "**no**"


def chart(results, path):
    """A horizontal bar chart per workload: each server's primary metric relative to
    flashgate's (log scale; right of 1 is better than flashgate)."""
    groups = []
    for name, title, names, metric, higher, _ in workloads(False):
        if name not in results:
            continue
        bars = []
        for s in names:
            if s == "flashgate":
                rel = 1.0 if values(results, name, s, metric) else None
            else:
                rel = paired(results, name, s, metric, higher)
            if rel:
                bars.append((s, 1 / rel))
        groups.append((title, metric, bars))
    bar_h, gap, left, width = 16, 26, 250, 520
    height = sum(len(b) * bar_h + gap + 18 for _, _, b in groups) + 60
    lo, hi = -3.0, 1.0  # log10 of the ratio: 0.001× .. 10×
    x = lambda r: left + (min(max(__import__("math").log10(r), lo), hi) - lo) / (hi - lo) * width
    colors = {"flashgate": "#c2410c"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="#fff"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">Each server relative to flashgate '
           f'(log scale; 1 = flashgate, right is better)</text>']
    y = 40
    for k in range(int(lo), int(hi) + 1):
        xx = x(10 ** k)
        out.append(f'<line x1="{xx:.1f}" y1="{y}" x2="{xx:.1f}" y2="{height - 20}" stroke="#ddd"/>')
        out.append(f'<text x="{xx:.1f}" y="{height - 6}" text-anchor="middle" fill="#666">{10 ** k:g}×</text>')
    for title, metric, bars in groups:
        out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{title} ({metric})</text>')
        y += 18
        for s, rel in bars:
            color = colors.get(s, "#1e40af")
            x0 = x(10 ** lo)
            out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{s}</text>')
            out.append(f'<rect x="{x0:.1f}" y="{y + 2}" width="{x(rel) - x0:.1f}" height="{bar_h - 4}" fill="{color}"/>')
            out.append(f'<text x="{x(rel) + 4:.1f}" y="{y + 12}" fill="#333">{rel:.3g}×</text>')
            y += bar_h
        y += gap
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
    return f"{cpu}, {os.cpu_count()} cores, {mem} GiB, Linux {platform.release()}"


def report(results, args, started):
    targets = check_targets(results)
    lines = [
        "# Benchmarks",
        "",
        "flashgate and the servers people would run instead, under the same load, in one run.",
        "This file is written by `benches/run` (the numbers below are from its last full run);",
        "rerun it to check them on your machine.",
        "",
        f"- **Machine:** {machine()}; shared and noisy, so compare the **ratios**, which were",
        "  measured in the same run, not absolute numbers across runs.",
        f"- **When:** {started:%Y-%m-%d %H:%M} UTC, {args.reps} rounds (each runs every server once,",
        "  back to back): figures are medians with their min–max spread, and ratios (\"flashgate",
        "  vs it\", the targets, the chart) are medians of each round's ratio, so that drift of",
        "  the machine between rounds cancels out.",
        "- **How:** every server pinned to core 0 (`taskset -c 0`), the load generator",
        "  (`target/release/loadgen`, one thread) to core 1. The raw TCP echo is the ceiling of",
        "  the load generator and the kernel together: no WebSocket server can beat it. Rows",
        "  marked *floor* (a minimal WebSocket echo, a raw TCP relay, a minimal WebSocket fan-out)",
        "  are the same for echo, the socket proxy and the broadcast room: the least any such",
        "  server can do, nothing checked.",
        "- **Command:** `benches/run` (all of it, ~26 min) or `benches/run --only echo-32 proxy`.",
        "",
        "## Targets",
        "",
        "| workload | target | flashgate | met | what the floors say |",
        "|---|---|---|---|---|",
    ]
    for workload, text, shown, ok, note in targets:
        lines.append(f"| {workload} | {text} | {shown} | {met(ok)} | {note} |")
    lines += ["", "![flashgate relative to each peer](benchmarks.svg)", ""]
    for name, title, names, metric, higher, _ in workloads(False):
        if name not in results:
            continue
        ours = median(results, name, "flashgate", metric)
        lines += [f"## {title}", "", f"| server | {metric} (median) | spread | flashgate vs it | p50 µs | p99 µs |",
                  "|---|---|---|---|---|---|"]
        for s in names:
            v = values(results, name, s, metric)
            label = servers()[s].label
            if not v and unsupported(results, name, s):
                lines.append(f"| {label} | not supported by this build: {unsupported(results, name, s)} | | | | |")
                continue
            if not v:
                errors = [r.get("error", "") for r in results[name][s]]
                lines.append(f"| {label} | failed: {errors[-1][:80] if errors else ''} | | | | |")
                continue
            med = statistics.median(v)
            rel = paired(results, name, s, metric, higher)
            p50 = median(results, name, s, "p50_us")
            p99 = median(results, name, s, "p99_us")
            lines.append(f"| {label} | {fmt(med)} | {fmt(min(v))} – {fmt(max(v))} | "
                         f"{'' if s == 'flashgate' or rel is None else f'{rel:.2f}×'} | "
                         f"{'' if p50 is None else p50} | {'' if p99 is None else p99} |")
        lines.append("")
    notes = Path(args.notes)
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines), targets


def summary(targets, started, reps, readme):
    """Rewrites the targets summary between the markers in the README."""
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return
    rows = [f"Last full run: {started:%Y-%m-%d}, {reps} rounds; each ratio is the median of the rounds' ratios.",
            "", "| workload | target | flashgate | met |", "|---|---|---|---|"]
    rows += [f"| {w} | {t} | {s} | {met(ok)} |" for w, t, s, ok, _ in targets]
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(f"{head}{start}\n{chr(10).join(rows)}\n{end}{tail}")
    print(f"updated {readme}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: proves the suite works")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="workloads to run (default: all)")
    parser.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--notes", default=str(BENCHES / "NOTES.md"), help="appended to the report")
    parser.add_argument("--readme", help="whose summary between the benchmark markers is rewritten "
                        "(default: README.md when --out is the default)")
    parser.add_argument("--logs", default=str(REPO / "target" / "bench-logs"))
    parser.add_argument("--report", action="store_true",
                        help="write the report again from the last run's results (LOGS/results.json)")
    args = parser.parse_args()
    if args.smoke:
        args.reps = 1
    saved = Path(args.logs) / "results.json"
    if args.report:
        run = json.loads(saved.read_text())
        results, args.reps = run["results"], run["reps"]
        started = datetime.datetime.fromisoformat(run["started"])
    else:
        started = datetime.datetime.now(datetime.timezone.utc)
        results = run_suite(args)
        saved.write_text(json.dumps({"started": started.isoformat(), "reps": args.reps,
                                     "results": results}, indent=1))
    if args.smoke:
        # Seconds of load on a shared machine prove that every server and workload runs;
        # they say nothing about the targets.
        print("smoke run: no target is judged; targets are judged only in full runs (benches/run without --smoke)")
    else:
        text, targets = report(results, args, started)
        Path(args.out).write_text(text + "\n")
        chart(results, Path(args.out).parent / "benchmarks.svg")
        print(f"wrote {args.out}")
        readme = args.readme or (str(REPO / "README.md") if Path(args.out) == REPO / "docs" / "BENCHMARKS.md" else "")
        if readme:
            summary(targets, started, args.reps, Path(readme))
        print("\n".join(f"{'met    ' if ok else 'NOT RUN' if ok is None else 'MISSED '} {w}: {t} ({s})"
                        for w, t, s, ok, _ in targets))
    skipped = [(w, s, unsupported(results, w, s)) for w in results for s in results[w] if unsupported(results, w, s)]
    for w, s, why in skipped:
        # Loud, not silent: a row that needs a backend this build does not have yet.
        print(f"NOT RUN: {w} / {s}: not supported by this build of flashgate ({why})")
    failed = [(w, s) for w in results for s in results[w] if any("error" in r for r in results[w][s])]
    if failed:
        print(f"runs that failed: {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
