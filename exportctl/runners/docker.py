"""The Docker backend: one image per toolchain lock, one throw-away container per cell.

The image is built from the toolchain's rendered context (env/contexts.py), named by the context's digest,
so an unchanged toolchain is never rebuilt. Each cell runs with no network, a read-only root filesystem,
no capabilities, no-new-privileges, a private /tmp, its inputs read-only under /in and only /out writable,
as a non-root user. The container is removed whatever happens (failure, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exportctl import errors, formats
from exportctl.canonical import digest_value, short
from exportctl.cell.view import CELL_ENV, CELL_IN, CELL_OUT
from exportctl.env.contexts import Context, cached_context, ensure_context
from exportctl.env.templates import CELL_UID, base_args, dockerfile
from exportctl.runners.base import Job, JobResult, cell_argv, cell_environment, job_inputs

PING_TIMEOUT = 5
BUILD_LOG_TAIL = 12  # the build's own tail; the message must fit in the 20 lines a failed cell shows
# Where no registry is reachable a base can be made locally; EXPORTCTL_BASE_IMAGE_<PIN> points a build at it.
OVERRIDE_PREFIX = "EXPORTCTL_BASE_IMAGE_"
HOW_TO_START = ("start the daemon (`sudo systemctl start docker`, or `sudo dockerd &`), point DOCKER_HOST at "
                "a running one, or build with --backend local")


def connect() -> Any:
    """A client for the daemon DOCKER_HOST (or the default socket) names, or BackendUnavailable."""
    try:
        import docker
    except ImportError:
        raise errors.BackendUnavailable("the docker Python package is not installed",
                                        hint="pip install 'docker>=7' (it is a dependency of exportctl), "
                                             "or build with --backend local") from None
    try:
        client = docker.from_env(timeout=PING_TIMEOUT)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the daemon means the same to users
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise errors.BackendUnavailable(f"no Docker daemon answers at {where}: {exc}", hint=HOW_TO_START) from None
    client.api.timeout = None  # builds and cells take as long as they take
    return client


def daemon_reachable() -> bool:
    try:
        connect().close()
    except errors.BackendUnavailable:
        return False
    return True


class DockerRunner:
    name = "docker"
    concurrent = True  # each container has its own tmpfs /tmp

    def __init__(self) -> None:
        self.client = connect()
        self._server = self.client.version().get("Version", "unknown")
        self._images: dict[str, dict[str, Any]] = {}
        self._failed: dict[str, str] = {}
        self._running: set[Any] = set()  # containers of jobs running now (cancel kills them)

    def isolation(self) -> dict[str, Any]:
        return {"backend": self.name, "daemon": self._server, "network": "none", "root_filesystem": "read-only",
                "capabilities": "all dropped", "no_new_privileges": True, "user": self._user()}

    def prepare(self, toolchain: str) -> dict[str, Any]:
        """Build (or reuse) the toolchain's image. A failed build fails that toolchain's cells, with its log."""
        if toolchain in self._images:
            return {**self._images[toolchain], "created": False}
        try:
            facts = self._ensure_image(toolchain)
        except errors.ExportFailed as exc:
            self._failed[toolchain] = exc.message
            return {"toolchain": toolchain, "created": False, "image_build": "failed", "failure_hint": exc.hint}
        self._images[toolchain] = facts
        return facts

    def missing(self, toolchain: str) -> str | None:
        """Why this daemon cannot have `toolchain`'s image without a registry (None: it can).

        It can when the image itself is there (its context already rendered here), or every base it builds FROM.
        """
        context = cached_context(toolchain)
        if context is not None and self._has_image(_image_tag(toolchain, context)):
            return None
        bases = _base_args(dockerfile(toolchain))
        absent = [ref for ref in bases.values() if not self._has_image(ref)]
        return f"no {toolchain} image and no base {', '.join(absent)} in the daemon" if absent else None

    def _ensure_image(self, toolchain: str) -> dict[str, Any]:
        import docker

        context = ensure_context(toolchain)
        variables = {arg: OVERRIDE_PREFIX + _pin_of(ref).upper() for arg, ref in context.base_args.items()}
        args = _base_args_for(context.base_args)
        tag = _image_tag(toolchain, context)
        facts = {"toolchain": toolchain, "image": tag, "context": context.digest, "base": args}
        try:
            return {**facts, "image_id": self.client.images.get(tag).id, "created": False}
        except docker.errors.ImageNotFound:
            pass
        start, log, image_id, error = time.monotonic(), [], None, None
        try:
            for chunk in self.client.api.build(path=str(context.path), tag=tag, buildargs=args, network_mode="none",
                                               rm=True, forcerm=True, pull=False, decode=True,
                                               labels={"dev.exportctl.context": context.digest}):
                log.append(chunk.get("stream", ""))
                image_id = chunk.get("aux", {}).get("ID", image_id)
                if "error" in chunk:
                    error = chunk["error"]
                    log.append(error + "\n")
        except docker.errors.APIError as exc:  # refused before building (bad argument, daemon trouble)
            error = str(exc)
            log.append(error + "\n")
        if error is not None or image_id is None:
            tail = "\n".join("".join(log).splitlines()[-BUILD_LOG_TAIL:])
            missing = [arg for arg, ref in args.items() if not self._has_image(ref)]
            hint = ("the base image is not in the daemon and could not be pulled: where no registry is reachable, "
                    "make a local base with the same Python (`exportctl base-image` builds one offline) and point "
                    + " / ".join(variables[a] for a in missing) + " at it, or build with --backend local") \
                if missing else "the log above is the Docker image build's (on the host, before any cell ran); " \
                "`exportctl render` writes the context to build by hand"
            raise errors.ExportFailed(
                f"building the {toolchain} image {tag} FROM {', '.join(args.values())} failed:\n{tail}", hint=hint)
        return {**facts, "image_id": image_id, "created": True, "build_seconds": round(time.monotonic() - start, 1)}

    def _has_image(self, ref: str) -> bool:
        import docker

        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    def cancel(self) -> None:
        for container in list(self._running):
            with contextlib.suppress(Exception):  # already gone: nothing left to stop
                container.kill()

    def run(self, job: Job) -> JobResult:
        if job.toolchain not in self._images and job.toolchain not in self._failed:
            self.prepare(job.toolchain)
        if job.toolchain in self._failed:
            return JobResult(errors.EXPORT_FAILED, self._failed[job.toolchain], 0.0)
        import docker

        image = self._images[job.toolchain]
        header = f"[exportctl] docker image {image['image']} ({image['image_id']})\n"
        start = time.monotonic()  # creating and removing the container count: they are the backend's overhead
        try:
            with _readable_inputs(job) as inputs, self._container(job, image["image"], inputs) as container:
                container.start()
                if job.on_line is not None:  # follow the output live; the full log is read once it ended
                    _follow(container, job.on_line)
                code = int(container.wait()["StatusCode"])
                log = container.logs(stdout=True, stderr=True).decode(errors="replace")
        except docker.errors.APIError as exc:  # e.g. a GPU requested from a daemon without NVIDIA's runtime
            return JobResult(errors.EXPORT_FAILED, f"{header}docker could not run the cell: {exc}\n",
                             time.monotonic() - start)
        return JobResult(code, header + log, time.monotonic() - start)

    @contextmanager
    def _container(self, job: Job, image: str, inputs: dict[str, Path]) -> Iterator[Any]:
        from docker.types import DeviceRequest, Mount

        mounts = [Mount(f"{CELL_IN}/{name}", str(Path(host).resolve()), type="bind", read_only=True)
                  for name, host in sorted(inputs.items())]
        mounts.append(Mount(CELL_OUT, str(job.output_dir.resolve()), type="bind", read_only=False))
        if os.geteuid() == 0:  # the cell user must own the one writable directory
            os.chown(job.output_dir, CELL_UID, CELL_UID)
        spec = formats.get(job.toolchain)
        gpu = [DeviceRequest(count=-1, capabilities=[["gpu"]])] if spec is not None and spec.requires_gpu else None
        container = self.client.containers.create(
            image, command=cell_argv(job, f"{CELL_ENV}/bin/python", CELL_IN, CELL_OUT), entrypoint=[],
            environment=cell_environment(job), mounts=mounts, network_mode="none", read_only=True,
            cap_drop=["ALL"], security_opt=["no-new-privileges"], user=self._user(), working_dir=CELL_OUT,
            tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777", "/tmp/home": "rw,nosuid,nodev,mode=1777"},
            hostname="cell", device_requests=gpu, labels={"dev.exportctl.cell": job.label or job.module},
        )
        self._running.add(container)
        try:
            yield container
        finally:
            self._running.discard(container)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - a request cut by Ctrl-C can leave the client's connection unusable
                connect().containers.get(container.id).remove(force=True)

    @staticmethod
    def _user() -> str:
        """The image's cell user when exportctl runs as root (it chowns /out); else the caller's own uid."""
        if os.geteuid() == 0:
            return f"{CELL_UID}:{CELL_UID}"
        return f"{os.getuid()}:{os.getgid()}"


def _base_args_for(pinned: dict[str, str]) -> dict[str, str]:
    """Build ARG -> the base reference a build uses: the pin, or the EXPORTCTL_BASE_IMAGE_<PIN> override."""
    return {arg: os.environ.get(OVERRIDE_PREFIX + _pin_of(ref).upper(), ref) for arg, ref in pinned.items()}


def _base_args(text: str) -> dict[str, str]:
    return _base_args_for(base_args(text))


def _image_tag(toolchain: str, context: Context) -> str:
    args = _base_args_for(context.base_args)
    return f"exportctl/{toolchain}:{short(digest_value({'context': context.digest, 'args': args}), 16)}"


def _follow(container: Any, on_line: Callable[[str], None]) -> None:
    pending = b""
    for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line(line.decode(errors="replace"))
    if pending:
        on_line(pending.decode(errors="replace"))


def _pin_of(reference: str) -> str:
    from exportctl.env.pins import pins

    return next(p.name for p in pins().values() if p.reference == reference)


@contextmanager
def _readable_inputs(job: Job) -> Iterator[dict[str, Path]]:
    """Inputs the cell user could not read (a private checkpoint, say) are mounted from a readable copy."""
    with tempfile.TemporaryDirectory(prefix="exportctl-in-") as scratch:
        inputs: dict[str, Path] = {}
        for name, host in job_inputs(job, Path(scratch)).items():
            path = Path(host)
            if os.geteuid() == 0 and path.is_file() and not path.stat().st_mode & stat.S_IROTH:
                copy = Path(scratch) / str(len(inputs))
                shutil.copyfile(path, copy)
                copy.chmod(0o444)
                path = copy
            inputs[name] = path
        yield inputs
