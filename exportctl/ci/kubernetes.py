"""`exportctl ci k8s`: the recipe's matrix as Kubernetes Indexed Jobs, one index per cell, plus a merge Job.

One Indexed Job per resource class (a pod template has one set of resources): CPU cells, and GPU cells
(TensorRT) with `nvidia.com/gpu: 1`, a GPU node selector and the toleration GPU nodes are usually tainted
with. A ConfigMap holds, per index, the export guide's entrypoint variables for that index's cell
(EXPORT_FORMAT, EXPORT_CONFIG, CHECKPOINT_PATH where the recipe names a file; OUTPUT_DIR is the pod's) and the
tag of its part; the pod sources its index's file and runs `exportctl cell-task`, which speaks that contract:
it fetches the inputs by digest (the recipe and the files it names, pushed by `ci k8s`), checks the variables
against the recipe, builds the cell as `build --only` does, pushes the part, copies it as an OCI layout to
OUTPUT_DIR and exits with the cell's code (0 ok, 1 export, 2 validation, 3 configuration).

Images are pinned by digest: by default the base the cells' toolchain images build FROM (images/base-images.toml,
as the rendered Dockerfile names it: the Python image for CPU cells, NVIDIA's TensorRT image for GPU cells),
with exportctl installed at start by `--install`; `--image`/`--gpu-image` name an image that has it already
(digest required).

The merge Job is rendered suspended: applying the file starts the cells only, and the user resumes the merge
once every cell Job is Complete (`kubectl wait`, then `kubectl patch … suspend false`: the commands are in the
file's header). That needs no ServiceAccount, no RBAC to read Jobs and no image with kubectl, and a failed cell
stops there, visibly, instead of leaving a merge pod polling. Deterministic exit codes (a cell's own failure)
fail their index without retries (podFailurePolicy); evictions and other pod failures are retried once.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from exportctl.ci.cells import RenderCell, dump_yaml, merge_script
from exportctl.errors import ConfigError
from exportctl.registry.reference import Reference

WORK = "/work"  # an emptyDir: inputs, stores, toolchain environments, the task's working directory
CELLS_DIR = "/etc/exportctl/cells"
DOCKER_DIR = "/etc/exportctl/docker"
OUTPUT_DIR = f"{WORK}/out"
# A cell's own verdicts and configuration problems are deterministic: retrying cannot change them.
NO_RETRY_CODES = [1, 2, 3, 4, 5, 9]
JSON_BUNDLE = "python3 -c 'import json, sys; print(json.load(sys.stdin)[\"bundle\"])'"  # no jq in the images


@dataclass(frozen=True)
class KubernetesOptions:
    cpu_image: str  # REPO@sha256:…
    gpu_image: str
    install: str  # shell line run first in every pod ("" when the image has exportctl)
    sandbox: str
    registry_secret: str  # a kubernetes.io/dockerconfigjson Secret (optional: a public registry needs none)
    gpu_node_selector: tuple[str, str]
    namespace: str | None = None


def base_image(cells: list[RenderCell], gpu: bool) -> str:
    """The pinned base the toolchain images of these cells build FROM (`name:tag@sha256:…`). Without CPU cells,
    the Python base (the merge Job runs there); without GPU cells, ""."""
    from exportctl.env.pins import pins
    from exportctl.env.templates import INTERPRETER_PIN, base_args, dockerfile

    bases = sorted({base_args(dockerfile(c.toolchain))["BASE_IMAGE"] for c in cells if c.gpu == gpu})
    if len(bases) > 1:
        raise ConfigError(f"the {'GPU' if gpu else 'CPU'} cells' toolchains build on different bases "
                          f"({', '.join(bases)}): one pod template has one image",
                          hint="name an image that can build them all with --image/--gpu-image")
    return bases[0] if bases else "" if gpu else pins()[INTERPRETER_PIN].reference


def job_name(recipe_name: str, inputs_digest: str) -> str:
    """A DNS label (pods are named after it): recipe and inputs digest, so another input gets another Job."""
    recipe = re.sub(r"[^a-z0-9-]+", "-", recipe_name.lower()).strip("-")[:24].strip("-")
    return f"exportctl-{recipe}-{inputs_digest.removeprefix('sha256:')[:12]}"


def contract_env(cell: RenderCell, options: dict[str, Any], checkpoint: str | None, part: str) -> str:
    """One index's variables, as a file the pod sources (`set -a`): the export guide's, and the part's tag."""
    config = json.dumps({"precision": cell.precision, "options": options}, sort_keys=True, separators=(",", ":"))
    lines = [f"EXPORT_FORMAT={shlex.quote(cell.format)}", f"EXPORT_CONFIG={shlex.quote(config)}"]
    if checkpoint is not None:
        lines.append(f"CHECKPOINT_PATH={shlex.quote(checkpoint)}")
    return "\n".join([*lines, f"PART={shlex.quote(part)}", ""])


def _metadata(name: str, component: str, recipe: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {"app.kubernetes.io/name": "exportctl", "app.kubernetes.io/component": component,
                      "exportctl.dev/recipe": recipe.strip("._-")[:63].rstrip("._-")}
    return meta


def _volumes(opts: KubernetesOptions, cells_map: str | None) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "work", "emptyDir": {}}]
    if cells_map is not None:
        volumes.append({"name": "cells", "configMap": {"name": cells_map}})
    volumes.append({"name": "docker-config", "secret": {
        "secretName": opts.registry_secret, "optional": True,
        "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
    return volumes


def _mounts(cells: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": WORK}]
    if cells:
        mounts.append({"name": "cells", "mountPath": CELLS_DIR, "readOnly": True})
    return [*mounts, {"name": "docker-config", "mountPath": DOCKER_DIR, "readOnly": True}]


def _common_env(opts: KubernetesOptions) -> list[dict[str, str]]:
    env = [{"name": "DOCKER_CONFIG", "value": DOCKER_DIR}]
    if opts.install:  # NVIDIA's Ubuntu image marks its Python externally managed (PEP 668); a container may install
        env.append({"name": "PIP_BREAK_SYSTEM_PACKAGES", "value": "1"})
    return env


def _script(install: str, *lines: str) -> str:
    return "\n".join(["set -euo pipefail", *([install] if install else []), *lines, ""])


def cell_job(name: str, group: str, cells: list[RenderCell], inputs: str, recipe: str, opts: KubernetesOptions,
             cells_map: str) -> dict[str, Any]:
    gpu = group == "gpu"
    script = _script(opts.install, "set -a", f'. "{CELLS_DIR}/{group}-$JOB_COMPLETION_INDEX.env"', "set +a",
                     f'exec exportctl cell-task --inputs "$INPUTS" --part "$PART" --workdir {WORK}/task '
                     f"--sandbox {shlex.quote(opts.sandbox)}")
    container: dict[str, Any] = {
        "name": "cell", "image": opts.gpu_image if gpu else opts.cpu_image, "command": ["bash", "-c", script],
        "env": [{"name": "INPUTS", "value": inputs}, {"name": "OUTPUT_DIR", "value": OUTPUT_DIR},
                *_common_env(opts), {"name": "EXPORTCTL_CACHE", "value": f"{WORK}/cache"}],
        "volumeMounts": _mounts(cells=True)}
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": _volumes(opts, cells_map)}
    if gpu:
        container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
        key, value = opts.gpu_node_selector
        pod["nodeSelector"] = {key: value}
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    labels = _metadata(name, f"cells-{group}", recipe, None)["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(name, f"cells-{group}", recipe,
                                                                            opts.namespace),
            "spec": {"completionMode": "Indexed", "completions": len(cells), "parallelism": len(cells),
                     "backoffLimitPerIndex": 1,
                     "podFailurePolicy": {"rules": [
                         {"action": "FailIndex",
                          "onExitCodes": {"containerName": "cell", "operator": "In", "values": NO_RETRY_CODES}},
                         {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def merge_job(name: str, cells: list[RenderCell], part: dict[str, str], final: str, recipe: str,
              opts: KubernetesOptions) -> dict[str, Any]:
    merged = merge_script(cells, lambda c: part[c.name], JSON_BUNDLE)
    script = _script(opts.install, merged.rstrip("\n"), f'exportctl push "$digest" "{final}"')
    container = {"name": "merge", "image": opts.cpu_image, "command": ["bash", "-c", script],
                 "env": [*_common_env(opts), {"name": "EXPORTCTL_STORE", "value": f"{WORK}/store"}],
                 "volumeMounts": _mounts(cells=False)}
    labels = _metadata(name, "merge", recipe, None)["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(name, "merge", recipe, opts.namespace),
            "spec": {"suspend": True, "backoffLimit": 1,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"restartPolicy": "Never", "containers": [container],
                                           "volumes": _volumes(opts, None)}}}}


def documents(recipe: str, cells: list[RenderCell], format_options: dict[str, dict[str, Any]],
              checkpoint: str | None, ref: Reference, inputs_digest: str, opts: KubernetesOptions,
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests and the commands that run them: ConfigMap, cell Job(s), the suspended merge Job."""
    base = job_name(recipe, inputs_digest)
    repo = f"{ref.host}/{ref.repository}"
    inputs = f"{repo}@{inputs_digest}"
    part = {c.name: f"{repo}:part-{inputs_digest.removeprefix('sha256:')[:12]}-{c.slug}" for c in cells}
    groups = {g: [c for c in cells if c.gpu == (g == "gpu")] for g in ("cpu", "gpu")}
    data = {f"{g}-{i}.env": contract_env(c, format_options[c.format], checkpoint, part[c.name])
            for g, members in groups.items() for i, c in enumerate(members)}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": _metadata(f"{base}-cells", "cells", recipe, opts.namespace), "data": data}
    jobs = [cell_job(f"{base}-{g}", g, members, inputs, recipe, opts, f"{base}-cells")
            for g, members in groups.items() if members]
    final = f"{repo}:{ref.tag or base}"
    merge = merge_job(f"{base}-merge", cells, part, final, recipe, opts)
    ns = f" -n {opts.namespace}" if opts.namespace else ""
    waits = " ".join(f"job/{j['metadata']['name']}" for j in jobs)
    commands = [f"kubectl{ns} apply -f FILE",
                f"kubectl{ns} wait --for=condition=Complete {waits} --timeout=6h",
                f"kubectl{ns} patch job/{base}-merge --type=merge -p '{{\"spec\":{{\"suspend\":false}}}}'",
                f"kubectl{ns} wait --for=condition=Complete job/{base}-merge --timeout=1h",
                f"kubectl{ns} logs job/{base}-merge   # the bundle's digest, pushed as {final}"]
    return [config_map, *jobs, merge], commands


def render(recipe: str, cells: list[RenderCell], format_options: dict[str, dict[str, Any]], checkpoint: str | None,
           ref: Reference, inputs_digest: str, opts: KubernetesOptions) -> str:
    docs, commands = documents(recipe, cells, format_options, checkpoint, ref, inputs_digest, opts)
    header = [f"Written by `exportctl ci k8s` for recipe {recipe}; regenerate rather than edit.",
              f"Inputs (the recipe and its files, fetched by digest): {ref.host}/{ref.repository}@{inputs_digest}",
              "Run:",
              *(f"  {c}" for c in commands)]
    return "".join(f"# {line}\n" for line in header) + dump_yaml(docs)
