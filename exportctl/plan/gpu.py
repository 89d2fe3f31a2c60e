"""Whether this host has an NVIDIA GPU: the one place exportctl looks, for formats whose spec needs one."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from exportctl import proc
from exportctl.formats.spec import FormatSpec


@functools.cache
def gpu_missing() -> str | None:
    """What shows that no NVIDIA GPU is usable here, or None when one is."""
    if Path("/dev/nvidia0").exists():
        return None
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        done = proc.run([smi, "-L"], env=proc.clean_env(), timeout=30)
        if done.returncode == 0 and "GPU" in done.output:
            return None
    return f"no /dev/nvidia0, {'nvidia-smi failed' if smi else 'nvidia-smi is not installed'}"


def host_refusal(spec: FormatSpec) -> str | None:
    """Why this host cannot build `spec`'s cells at all, or None."""
    if not spec.gpu_purpose:
        return None
    missing = gpu_missing()
    if missing is None:
        return None
    return (f"{spec.gpu_purpose} on an NVIDIA GPU and none was found here ({missing}); build this cell on a machine "
            "with an NVIDIA GPU, its driver and the NVIDIA Container Toolkit")
