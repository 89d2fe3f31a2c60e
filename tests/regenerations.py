"""The committed fixture models' regenerations, one after another in the background from the end of collection.

Each regeneration trains a model on one thread for minutes (about half an hour of CPU for the six). Run beside
the build whose test checks it, each competed with that build for the two cores; queued as soon as the session
knows which tests run, they take the cores the cluster, docker and unit tiers leave idle, in the order the tests
will ask for them. A test marks itself `@pytest.mark.regenerates("NAME.pt")` (tests/conftest.py queues every
marked name) and `Regenerations.result(NAME)` waits for that one if it is not done yet.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass(frozen=True)
class Regenerated:
    returncode: int
    log: str  # the script's output; its last line is the JSON summary with the held-out metrics
    digest: str | None  # sha256 of the file it wrote, None when it failed


def command(name: str, out: Path) -> list[str]:
    """The script (and arguments) that made tests/fixtures/<name>, writing to `out` instead."""
    if name in ("detector.pt", "detector26.pt"):
        arch = ["--arch", "yolo26n.yaml"] if name == "detector26.pt" else []
        return [str(FIXTURES / "make_detector.py"), str(out), *arch]
    return [str(FIXTURES / "make_task_model.py"), name.removesuffix(".pt"), str(out)]


class Regenerations:
    """`names` regenerated in that order by `python` (a toolchain environment's) into a directory of their own."""

    def __init__(self, python: Path, names: list[str]) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="exportctl-regenerated-"))
        self._results: dict[str, Regenerated] = {}
        self._done = {name: threading.Event() for name in names}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._run, args=(python, names), daemon=True)
        self._thread.start()

    def _run(self, python: Path, names: list[str]) -> None:
        for name in names:
            try:
                self._results[name] = self._regenerate(python, name, self.directory / name)
            except Exception:  # noqa: BLE001 - the waiting test reports it; a dead thread would hang it
                self._results[name] = Regenerated(-1, traceback.format_exc(), None)
            self._done[name].set()

    def _regenerate(self, python: Path, name: str, out: Path) -> Regenerated:
        with self._lock:
            if self._stop.is_set():
                return Regenerated(-1, "the session ended first", None)
            self._process = subprocess.Popen([str(python), *command(name, out)], stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
        log, _ = self._process.communicate()
        code = self._process.returncode
        return Regenerated(code, log, hashlib.sha256(out.read_bytes()).hexdigest() if code == 0 else None)

    def result(self, name: str) -> Regenerated:
        if name not in self._done:
            raise KeyError(f"{name} is not queued: mark the test @pytest.mark.regenerates({name!r})")
        self._done[name].wait()
        return self._results[name]

    def close(self) -> None:
        """Stop: what has not started never starts, what runs is killed; the regenerated files are removed."""
        with self._lock:
            self._stop.set()
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
        self._thread.join()
        shutil.rmtree(self.directory, ignore_errors=True)
