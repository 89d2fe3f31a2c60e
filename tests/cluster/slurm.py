"""A real single-node Slurm for the cluster tier: Debian's slurm-wlm + munge on 127.0.0.1.

munged is started as the munge user when none answers; slurmctld and `slurmd -N localhost` read a slurm.conf
written here (free ports, state and logs in a temp dir, jobcomp/filetxt so finished jobs are on record).
Everything started here is stopped by the pid its pidfile names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from exportctl import proc
from tests import services

PACKAGES = {"slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "slurm-client", "munged": "munge"}


def ensure_packages() -> str | None:
    return services.ensure_packages("slurm tier", PACKAGES)


@contextlib.contextmanager
def munge() -> Iterator[None]:
    env = proc.clean_env()
    if proc.run(["munge", "-n"], env=env, timeout=10).returncode == 0:
        yield  # a munged already answers: not ours to stop
        return
    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    done = proc.run(["runuser", "-u", "munge", "--", "munged"], env=env, timeout=30)
    assert done.returncode == 0, done.output
    try:
        yield
    finally:
        services.stop(run_dir / "munged.pid")


@contextlib.contextmanager
def cluster(root: Path) -> Iterator[dict[str, str]]:
    """slurmctld + slurmd for this machine; yields the environment (SLURM_CONF) the clients need."""
    root.mkdir(parents=True, exist_ok=True)
    host, cpus = socket.gethostname(), os.cpu_count() or 1
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=exportctl-test", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={services.free_port()}", f"SlurmdPort={services.free_port()}", "AuthType=auth/munge",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU", "ReturnToService=2", "MpiDefault=none", "MinJobAge=3600",
        "JobCompType=jobcomp/filetxt", f"JobCompLoc={root / 'jobcomp.txt'}",
        "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
        "DefMemPerCPU=1000",
        f"NodeName=localhost NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={1000 * cpus} "
        "State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP", ""]))
    (root / "state").mkdir(exist_ok=True)
    (root / "spool").mkdir(exist_ok=True)
    env = proc.clean_env({"SLURM_CONF": str(conf)})
    with munge():
        try:
            for argv in (["slurmctld", "-f", str(conf)], ["slurmd", "-f", str(conf), "-N", "localhost"]):
                done = proc.run(argv, env=env, timeout=60)
                assert done.returncode == 0, done.output
            deadline = time.monotonic() + 60
            while "idle" not in proc.run(["sinfo", "-h", "-o", "%t"], env=env, timeout=30).output:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"slurm did not come up:\n{(root / 'slurmctld.log').read_text()[-2000:]}")
                time.sleep(0.5)
            yield {"SLURM_CONF": str(conf)}
        finally:
            services.stop(root / "slurmd.pid")
            services.stop(root / "slurmctld.pid")
