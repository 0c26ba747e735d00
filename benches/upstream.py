"""The upstream workloads of flashgate's benchmark suite: clients relayed by flashgate (its
`--route PATH=ws://`, `tcp://` and `tcp+xmlsocket://` backends) to servers of their own, and
nginx as a WebSocket reverse proxy in front of the same WebSocket echo. `run.py` runs them as
it runs the rest (same load, same pinning); the far ends run beside the load generator.
"""

import functools
import re
import resource
import shutil
import subprocess
from pathlib import Path

# The far ends, beside the load generator, each workload's servers relay to (started first).
UPSTREAMS = {
    "upstream-ws": ["ws-upstream"],
    "upstream-tcp": ["proxy-target"],
    "upstream-xmlsocket": ["proxy-target", "xmlsocket-upstream"],
    "upstream-idle": ["proxy-target"],
    "upstream-idle-ws": ["ws-upstream"],
}

# Memory is measured on a server that has served nothing yet.
FRESH = {"upstream-idle", "upstream-idle-ws"}

# flashgate's route to each far end: (path, backend); {port} is the far end's.
ROUTES = {
    "proxy-target": ("/relay-tcp", "tcp://127.0.0.1:{port}"),
    "xmlsocket-upstream": ("/relay-xmlsocket", "tcp+xmlsocket://127.0.0.1:{port}"),
    "ws-upstream": ("/relay-ws", "ws://127.0.0.1:{port}/echo"),
}


def routes(s):
    """flashgate's `--route`s in an upstream workload: one to each of its far ends (and
    nothing else); outside the group, none, so flashgate serves its default routes."""
    out = []
    for name in UPSTREAMS.get(s.workload, []):
        path, backend = ROUTES[name]
        out += ["--route", f"{path}={backend.format(port=s.shared[name].port)}"]
    return out


def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


@functools.cache
def nginx_version():
    try:
        out = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "nginx"
    found = re.search(r"nginx/(\S+)", out.stderr + out.stdout)
    return f"nginx {found.group(1)}" if found else "nginx"


# nginx as its documentation sets up a WebSocket proxy (proxy_pass, HTTP/1.1 to the
# upstream, the Upgrade and Connection headers passed on), with one worker: the comparison
# is one core, and the suite pins nginx (master and worker) to it as it pins every server.
# Everything it writes goes to the suite's log directory, so it runs unprivileged; its
# errors go to stderr, which is the suite's log of it. worker_connections (512 unless set)
# must hold two connections per client, the client's and the upstream's.
NGINX_CONF = """\
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
        listen 127.0.0.1:{port};

        location /relay-ws {{
            proxy_pass http://127.0.0.1:{upstream}/echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
}}
"""


def nginx(s):
    """Writes nginx's configuration into the log directory and returns its command line:
    the generated configuration, in the foreground."""
    prefix = Path(s.logdir) / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = NGINX_CONF.format(dir=prefix, port=s.port, upstream=s.shared["ws-upstream"].port,
                             connections=4096)
    (prefix / "nginx.conf").write_text(conf)
    return [nginx_binary(), "-p", str(prefix), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"]


def servers(Server, loadgen, flashgate, load_cpu):
    """The group's servers: the far ends (on the load generator's core), nginx, and the
    second flashgate of the XMLSocket workload."""
    serve = lambda kind: lambda s: [str(loadgen), "serve", kind, "--listen", f"127.0.0.1:{s.port}"]
    return [
        Server("ws-upstream", serve("ws-echo"),
               "minimal WebSocket echo behind the relays (the far end)", cpu=load_cpu),
        Server("xmlsocket-upstream", serve("xmlsocket-echo"),
               "XMLSocket echo behind the relay (the far end)", cpu=load_cpu),
        Server("nginx", nginx, f"{nginx_version()} WebSocket proxy (one worker) → WebSocket echo"),
        # The XMLSocket workload's reference: the same gateway in the same run, on tcp://.
        Server("flashgate-tcp-relay", flashgate, "flashgate, tcp:// relay (the XMLSocket workload's reference)"),
    ]


def relay_sessions(wanted):
    """How many relayed sessions the open-file limit allows (the gateway holds two sockets
    for each), at most `wanted`."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, (hard - 256) // 2 // 100 * 100)


def workloads(loadgen, url, d, n, idle_c):
    """The group's workloads, as run.py's `workloads` gives them."""
    def ws_relay(server):
        return loadgen("echo", "--url", url(server, "/relay-ws"), "-n", n, "-k", 16, "-s", 32, *d)

    def tcp_relay(server):
        # A byte stream comes back in whatever frames the relay makes: count the bytes.
        stream = [] if server.name == "tcp-relay" else ["--binary", "--stream"]
        return loadgen("echo", "--url", url(server, "/relay-tcp"), "-n", n, "-k", 16, "-s", 32, *stream, *d)

    def xmlsocket_relay(server):
        if server.name == "flashgate-tcp-relay":
            return tcp_relay(server)
        # Each NUL-ended piece from the server is one text message: count the messages.
        return loadgen("echo", "--url", url(server, "/relay-xmlsocket"), "-n", n, "-k", 16, "-s", 32, *d)

    def idle(path):
        return lambda server: loadgen("idle", "--url", url(server, path), "-c", sessions, "--pid", server.pid)

    sessions = relay_sessions(idle_c)
    limited = (f" (the open-file limit, {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}, allows no more "
               f"sessions of two sockets each)" if sessions < idle_c else "")
    return [
        ("upstream-ws", f"WebSocket relay → WebSocket echo, N={n}, K=16, S=32 B",
         ["ws-echo", "nginx", "flashgate"], "msgs_per_s", True, ws_relay),
        ("upstream-tcp", f"tcp:// relay → TCP echo, N={n}, K=16, S=32 B binary",
         ["tcp-relay", "flashgate", "websockify"], "msgs_per_s", True, tcp_relay),
        ("upstream-xmlsocket", f"tcp+xmlsocket:// relay → XMLSocket echo, N={n}, K=16, S=32 B text",
         ["flashgate", "flashgate-tcp-relay"], "msgs_per_s", True, xmlsocket_relay),
        ("upstream-idle", f"idle relayed sessions, tcp:// → TCP echo, C={sessions}{limited}",
         ["tcp-relay", "flashgate"], "bytes_per_conn", False, idle("/relay-tcp")),
        ("upstream-idle-ws", f"idle relayed sessions, ws:// → WebSocket echo, C={sessions}{limited}",
         ["flashgate"], "bytes_per_conn", False, idle("/relay-ws")),
    ]


def context(median, workload, other):
    """What the floors measured in this run say about an upstream target, or ''.
    `median(workload, server, metric)` is the run's median."""
    med = lambda s, m: median(workload, s, m)
    if workload == "upstream-ws" and other == "nginx":
        direct, proxied = med("ws-echo", "msgs_per_s"), med("nginx", "msgs_per_s")
        if direct and proxied:
            return (f"the WebSocket echo talked to directly reaches {direct / 1e3:.0f} k msg/s here, "
                    f"through nginx {proxied / direct:.2f}× that")
    if workload == "upstream-tcp" and other == "tcp-relay":
        proxy, relay = median("proxy", "flashgate", "msgs_per_s"), median("proxy", "tcp-relay", "msgs_per_s")
        if proxy and relay:
            return (f"flashgate's socket proxy (`/socket?target=`, the proxy workload) reaches "
                    f"{proxy / relay:.2f}× the raw TCP relay")
    if workload.startswith("upstream-idle"):
        relay = med("tcp-relay", "bytes_per_conn")
        if relay:
            return (f"a raw TCP relay (a tokio task, two sockets and its copy buffers per session) "
                    f"takes {relay / 1024:.2f} KiB")
    return ""
