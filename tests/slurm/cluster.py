"""A throw-away one-node SLURM cluster (one fake GPU) for testing the slurm profile.

Used by tests/test_slurm.py, and by hand (as root):

    .venv/bin/python tests/slurm/cluster.py /tmp/svp-slurm   # starts it, prints what to
                                                              # export; Enter stops it

Needs Debian's SLURM packages (`install()` adds them with apt-get when `slurmctld`
is missing). The daemons run in the foreground as children of this process, with
their configuration, state, logs and pid files under one folder, on free ports; client
commands (sbatch, squeue, Snakemake's slurm executor) find the cluster through the
variables of `cluster.env`: SLURM_CONF, and PATH for an srun wrapper that jobs need.
Nothing under /etc is read or written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["slurmctld", "slurmd", "slurm-client"]
MEMORY_MB = 64000  # what the node offers jobs, whatever the machine has (see slurm.conf.in)


class ClusterUnavailable(Exception):
    """SLURM cannot be installed or started here (the reason is the message)."""


def install() -> None:
    """Install Debian's SLURM daemons and clients unless `slurmctld` is already there."""
    if shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("sbatch"):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("SLURM is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise ClusterUnavailable("SLURM is not installed and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def free_ports(count: int) -> list[int]:
    """Distinct ports that nothing listens on now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Cluster:
    """slurmctld + slurmd for one node `localhost` with `cpus` CPUs and `Gres=gpu:1`."""

    def __init__(self, state_dir: Path, cpus: int | None = None):
        self.state_dir = Path(state_dir)
        self.cpus = cpus or os.cpu_count() or 1
        self.conf = self.state_dir / "slurm.conf"
        # Snakemake's job step (inside each job) runs `srun` with every SLURM_* variable
        # removed, so SLURM_CONF too; that srun would look in /etc/slurm. A wrapper
        # first on PATH puts the variable back and leaves /etc alone.
        self.bin_dir = self.state_dir / "bin"
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")]),
        }
        self.daemons: dict[str, subprocess.Popen] = {}

    def write_config(self) -> None:
        for folder in ("ctld", "slurmd"):
            (self.state_dir / folder).mkdir(parents=True, exist_ok=True)
        template = string.Template((HERE / "slurm.conf.in").read_text())
        ctld_port, slurmd_port = free_ports(2)
        self.conf.write_text(
            template.substitute(
                state_dir=self.state_dir, ctld_port=ctld_port, slurmd_port=slurmd_port, cpus=self.cpus, memory_mb=MEMORY_MB
            )
        )
        # slurmd reads gres.conf from the folder of slurm.conf.
        shutil.copy(HERE / "gres.conf", self.state_dir / "gres.conf")
        self.bin_dir.mkdir(exist_ok=True)
        srun = self.bin_dir / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)

    def start(self, timeout: float = 60) -> None:
        if os.geteuid() != 0:
            raise ClusterUnavailable("slurmd has to run as root to start jobs")
        install()
        self.write_config()
        try:
            self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
            self._wait_for(lambda: self._run("scontrol", "ping").returncode == 0, timeout, "slurmctld to answer")
            self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
            self._wait_for(lambda: self.node_state() == "idle", timeout, "the node to become idle")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.state_dir / f"{name}.out", "w")
        # A session of their own: a Ctrl-C meant for pytest does not reach them before
        # stop() has cancelled the jobs.
        self.daemons[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30)

    def _wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.daemons.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}:\n{self.logs()}")
            if condition():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def node_state(self) -> str:
        result = self._run("sinfo", "--noheader", "--Node", "--format=%t")
        return result.stdout.strip()

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job the controller still knows (finished ones for MinJobAge), by id,
        as `scontrol show job` has it: JobState, TRES (`cpu=2,mem=8000M,...`),
        TresPerJob (`gres:gpu:1`), Comment (Snakemake puts the rule and wildcards there)."""
        result = self._run("scontrol", "--oneliner", "show", "job")
        jobs = {}
        for line in result.stdout.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
            path = self.state_dir / name
            if path.exists():
                parts.append(f"--- {path} ---\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job, then end both daemons by their process ids."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            try:
                self._run("scancel", "--user", "root")
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and any(
                    job["JobState"] in ("PENDING", "RUNNING", "COMPLETING") for job in self.jobs().values()
                ):
                    time.sleep(0.5)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in ("slurmd", "slurmctld"):
            process = self.daemons.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> "Cluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    # Stop the cluster on kill (SIGTERM) too, and on Ctrl-C even when started in the
    # background.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    state = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/svp-slurm").resolve()
    with Cluster(state) as cluster:
        print("SLURM is up; in another shell:")
        print(f"  export SLURM_CONF={cluster.conf} PATH={cluster.bin_dir}:$PATH")
        print("  .venv/bin/snakemake --profile workflow/profiles/slurm --slurm-status-command squeue --slurm-no-account \\")
        print(f"    --cores {min(4, cluster.cpus)}   # (this node has {cluster.cpus} CPUs; the profile asks for 4 per GPU job)")
        print("Enter (or Ctrl-C) stops it.", flush=True)
        try:
            input()
        except (KeyboardInterrupt, EOFError):
            pass
