"""Native processes: started detached, tracked by PID files in the data dir, stopped by PID.

A PID file records the PID and the process start time (from /proc/<pid>/stat), so a PID that the
kernel has since reused for an unrelated process is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The start time of a running process (clock ticks since boot), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return fields[19] if len(fields) > 19 else None


class Procs:
    def __init__(self, data_dir: Path):
        self.pid_dir = data_dir / "pids"
        self.log_dir = data_dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def record(self, name: str) -> dict | None:
        try:
            return json.loads(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> int | None:
        """The PID of the tracked process `name` if it is still that process and running."""
        rec = self.record(name)
        if not rec:
            return None
        pid = int(rec["pid"])
        st = start_time(pid)
        if st is None or st != rec.get("start_time"):
            return None
        return pid

    def names(self) -> list[str]:
        if not self.pid_dir.is_dir():
            return []
        return sorted(p.stem for p in self.pid_dir.glob("*.pid"))

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None,
              role: str = "") -> int:
        pid = self.alive(name)
        if pid:
            return pid
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file(name), "ab")
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        p = subprocess.Popen(argv, env=env, cwd=str(cwd) if cwd else None, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        st = None
        for _ in range(50):
            st = start_time(p.pid)
            if st:
                break
            time.sleep(0.01)
        self.pid_file(name).write_text(json.dumps({
            "pid": p.pid, "start_time": st, "argv": argv, "role": role,
            "log": str(self.log_file(name)),
        }))
        return p.pid

    def stop_all(self, names: list[str], timeout: float = 10.0) -> list[str]:
        """Stops the given tracked processes; returns the names still alive afterwards."""
        pids = {n: self.alive(n) for n in names}
        for n, pid in pids.items():
            if pid:
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + timeout
        while time.time() < deadline and any(self.alive(n) for n in names):
            time.sleep(0.05)
        for n in names:
            pid = self.alive(n)
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        while time.time() < deadline and any(self.alive(n) for n in names):
            time.sleep(0.05)
        left = [n for n in names if self.alive(n)]
        for n in names:
            if n not in left:
                self.pid_file(n).unlink(missing_ok=True)
        return left


def wait_gone(pid: int, started: str | None, interval: float = 0.5) -> None:
    """Returns once process `pid` (the one that started at `started`) has exited. A PID the
    kernel reused for another process counts as gone."""
    while True:
        st = start_time(pid)
        if st is None or (started is not None and st != started):
            return
        time.sleep(interval)


def poll(fetch, timeout: float, interval: float = 0.2):
    """Calls `fetch` until it returns something other than None, for up to `timeout` seconds;
    returns the last result (None when it never answered)."""
    deadline = time.time() + timeout
    result = fetch()
    while result is None and time.time() < deadline:
        time.sleep(interval)
        result = fetch()
    return result


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now (with SO_REUSEADDR, as Fabric's Go servers
    do, so connections in TIME_WAIT from an earlier run do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def wait_port(port: int, timeout: float, what: str, procs: Procs | None = None,
              name: str | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port):
            return
        if procs and name and not procs.alive(name):
            raise RuntimeError(f"{what} exited during start-up; see {procs.log_file(name)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")
