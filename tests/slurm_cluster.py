"""A real single-node SLURM cluster for the profile test: munged, slurmctld and slurmd as plain processes.

No systemd and no accounting database: job states are read with `squeue`
(`--slurm-status-command squeue`, MinJobAge 300 so finished jobs stay visible),
which needs nothing beyond the two daemons — slurmdbd would add a MariaDB server
to install, configure and start for no extra coverage of the profile. Every path
(state, spool, logs, munge socket) lives under one temporary directory, and the
daemons are stopped by the pids this module started.

The configuration is written to /etc/slurm/slurm.conf (any file there is put
back at stop): inside a job, the executor plugin deletes every SLURM_* variable
— SLURM_CONF included — before the job's own `srun`, which then reads the
system path, as on a real cluster.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol")
PACKAGES = ("slurm-wlm", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


class Unavailable(RuntimeError):
    """SLURM cannot be started here; the message says exactly why."""


@dataclass
class Cluster:
    root: Path
    conf: Path
    processes: dict = field(default_factory=dict)

    @property
    def env(self):
        """Environment in which sbatch / squeue (and Snakemake's plugin) talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command, check=True):
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def stop(self):
        self._stop_daemons()
        backup = self.root / "slurm.conf.orig"
        if backup.exists():
            shutil.copy(backup, SYSTEM_CONF)
        elif SYSTEM_CONF.exists() and SYSTEM_CONF.read_text() == self.conf.read_text():
            SYSTEM_CONF.unlink()

    def _stop_daemons(self):
        for name in reversed(DAEMONS):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def log_tail(self, lines=15):
        out = []
        for name in DAEMONS:
            path = self.root / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}.log\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def _sbin(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def ensure_installed():
    """The daemons and clients, installed from Debian when missing and we are root; else `Unavailable`."""
    missing = [name for name in DAEMONS + CLIENTS if _sbin(name) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"SLURM binaries missing ({', '.join(missing)}) and no root apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:  # stale package lists: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=900)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    missing = [name for name in DAEMONS + CLIENTS if _sbin(name) is None]
    if missing:
        raise Unavailable(f"apt-get install {' '.join(PACKAGES)} left {missing} missing: {result.stderr[-500:]}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line():
    """This machine's node definition as slurmd itself reports it (CPUs, sockets, memory)."""
    result = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True, timeout=60)
    line = next((x for x in result.stdout.splitlines() if x.startswith("NodeName=")), None)
    if line is None:
        raise Unavailable(f"slurmd -C printed no node line: {result.stdout}{result.stderr}")
    return line


def write_conf(root, node):
    host = socket.gethostname().split(".")[0]
    node = " ".join(part for part in node.split() if not part.startswith(("NodeName=", "UpTime=")))
    text = f"""\
ClusterName=hybridlens-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MinJobAge=300
ReturnToService=2
SchedulerParameters=sched_interval=1
NodeName={host} NodeAddr=127.0.0.1 {node} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    conf = root / "slurm.conf"
    conf.write_text(text)
    try:
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if SYSTEM_CONF.exists():
            shutil.copy(SYSTEM_CONF, root / "slurm.conf.orig")
        SYSTEM_CONF.write_text(text)
    except OSError as error:
        raise Unavailable(f"cannot write {SYSTEM_CONF} (jobs' srun reads it): {error}") from error
    return conf


def start(root):
    """Start munged, slurmctld and slurmd under `root`; wait until the node is idle."""
    ensure_installed()
    root = Path(root)
    for folder in ("state", "spool"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root, write_conf(root, node_line()))
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    commands = {
        "munged": [
            _sbin("munged"),
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={root}/munge.socket",
            f"--pid-file={root}/munged.pid",
            f"--log-file={root}/munged.log",
            f"--seed-file={root}/munge.seed",
        ],
        "slurmctld": [_sbin("slurmctld"), "-D", "-i", "-f", str(cluster.conf)],
        "slurmd": [_sbin("slurmd"), "-D", "-f", str(cluster.conf)],
    }
    try:
        for name, command in commands.items():
            with open(root / f"{name}.out", "w") as out:
                cluster.processes[name] = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True
                )
            time.sleep(1.0)
            if cluster.processes[name].poll() is not None:
                output = (root / f"{name}.out").read_text(errors="replace")[-800:]
                raise Unavailable(f"{name} exited at start ({cluster.processes[name].returncode}): {output}")
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            state = cluster.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state.startswith("idle"):
                return cluster
            time.sleep(1.0)
        raise Unavailable(f"node not idle after 60 s (sinfo: {state!r})\n{cluster.log_tail()}")
    except BaseException:
        cluster.stop()
        raise
