"""Network namespaces the tests create and always delete; nothing here touches the host's links."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count()

# Runs the real link probe inside a namespace and prints its section as JSON.
PROBE_SNIPPET = """
import json, sys
from agent.probes.link import LinkOptions, LinkProbe
from agent.transport.encode import plain
options = LinkOptions.model_validate(json.loads(sys.argv[1]))
print(json.dumps(plain(LinkProbe(options).collect())))
"""


def _run(argv: Sequence[str], timeout: float = 30.0) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def require_net_admin() -> None:
    """Skip (with the reason printed) when namespaces cannot be made; on CI, fail instead."""
    name = f"cgprobe{os.getpid()}"
    try:
        _run(["ip", "netns", "add", name], timeout=10)
    except (AssertionError, OSError) as e:
        reason = f"network namespace tests need CAP_NET_ADMIN and iproute2: {e}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    _run(["ip", "netns", "del", name], timeout=10)


def require_tool(tool: str) -> None:
    if subprocess.run(["which", tool], capture_output=True, check=False).returncode != 0:
        reason = f"{tool} is not installed (scripts/install-test-deps.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(f"SKIP: {reason}")
        pytest.skip(reason)


class Lab:
    """Namespaces, veth links and processes of one test; `close()` removes all of them."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[str]] = []

    def ns(self) -> str:
        name = f"cg{os.getpid()}x{next(_names)}"
        _run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.exec(name, "ip", "link", "set", "lo", "up")
        return name

    def exec(self, ns: str, *argv: str, timeout: float = 30.0) -> str:
        return _run(["ip", "netns", "exec", ns, *argv], timeout=timeout)

    def link(self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        """A veth pair between namespaces `a` and `b`; an address "" leaves that end bare."""
        # Created inside `a` so no interface ever appears in the host's namespace.
        self.exec(a, "ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if addr:
                self.exec(ns, "ip", "addr", "add", addr, "dev", ifname)
            self.exec(ns, "ip", "link", "set", ifname, "up")

    def start(self, ns: str, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.processes.append(proc)
        return proc

    def python(self, ns: str, code: str, *args: str, timeout: float = 60.0) -> Any:
        """Run `code` with the test's interpreter inside `ns`; its stdout is one JSON value."""
        return json.loads(self.exec(ns, sys.executable, "-c", code, *args, timeout=timeout))

    def probe(self, ns: str, options: dict[str, Any], timeout: float = 60.0) -> Any:
        return self.python(ns, PROBE_SNIPPET, json.dumps(options), timeout=timeout)

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
