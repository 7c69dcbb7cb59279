"""The runtime HTTP server in a process of its own, run out of file descriptors: it keeps
scraping and its accept loop does not spin."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

CHILD = """
import resource, sys
from prometheus_client import CollectorRegistry
from aifinops.exporters.runtime.http import HTTPServer, ServerLimits
registry = CollectorRegistry(auto_describe=False)
# A cap above what the descriptors allow, as a misconfiguration would leave it.
server = HTTPServer("127.0.0.1:0", registry, limits=ServerLimits(max_connections=1000))
registry.register(server.collector())
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
server.start()
print(server.port, flush=True)
sys.stdin.read()
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_server_keeps_scraping_and_does_not_spin():
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(child.stdout.readline())
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
        time.sleep(1.0)
        before = cpu_seconds(child.pid)
        time.sleep(2.0)
        # An accept loop spinning on EMFILE would burn about 2 CPU seconds here.
        assert cpu_seconds(child.pid) - before < 0.5
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200
        values = {
            s.name: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name.startswith("aifinops_http_") and not s.labels
        }
        assert values["aifinops_http_accept_errors_total"] >= 1
        # The cap in force came down to what the descriptors allow; the rest were evicted.
        assert values["aifinops_http_connections_limit"] < 64
        assert values["aifinops_http_connections"] <= values["aifinops_http_connections_limit"]
        for sock in idle:
            sock.close()
    finally:
        child.stdin.close()
        child.wait(10)
