"""`exportctl ci github|k8s`: the recipe's matrix as a GitHub Actions workflow or Kubernetes Jobs (exportctl/ci/)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import click

from exportctl import errors
from exportctl.commands.common import emit, err, json_option, recipe_argument
from exportctl.commands.remote import registry_options, transport_options
from exportctl.runners import SANDBOXES


@click.group(name="ci")
def ci() -> None:
    """Render the recipe's build matrix for another scheduler (files only; nothing runs here)."""


@ci.command(name="github")
@recipe_argument
@click.option("--registry", "registry_ref", metavar="REF", required=True,
              help="HOST/REPO[:TAG]: parts go to HOST/REPO, the signed bundle to its TAG (default: the commit).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the workflow here (default: stdout), e.g. .github/workflows/exportctl.yml.")
@click.option("--runner", default="ubuntu-24.04", show_default=True, help="Runner label of CPU cells.")
@click.option("--gpu-runner", default="gpu", show_default=True, help="Runner label of GPU cells (TensorRT).")
@click.option("--install", default="pip install exportctl", show_default=True,
              help="The shell line that installs exportctl on a runner.")
@json_option
def github(recipe: Path, registry_ref: str, out: Path | None, runner: str, gpu_runner: str, install: str) -> None:
    """A workflow with one matrix job per cell and a final job that merges, signs keylessly and pushes."""
    from exportctl.ci.cells import render_cells
    from exportctl.ci.github import render
    from exportctl.recipe.load import load_recipe
    from exportctl.registry.reference import parse

    loaded = load_recipe(recipe)
    cells = render_cells(loaded)
    # The recipe's path as the workflow sees it: relative to the repository root (the working directory).
    where = PurePosixPath(Path(os.path.relpath(recipe.resolve(), Path.cwd())).as_posix())
    text = render(loaded.name, where, cells, parse(registry_ref), runner, gpu_runner, install)
    _write(text, out, {"workflow": str(out), "cells": [c.name for c in cells]},
           f"{len(cells)} matrix job(s) and the bundle job")


def _write(text: str, out: Path | None, data: dict[str, object], what: str) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    emit(data, lambda: err().print(f"wrote {out}: {what}", highlight=False))


def _pinned(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from exportctl.canonical import is_digest

    if value is not None and not is_digest(value.rpartition("@")[2]):
        raise click.BadParameter(f"'{value}' is not pinned by digest (REPO@sha256:…): a tag can move",
                                 param_hint=f"--{param.name.replace('_', '-') if param.name else 'image'}")
    return value


@ci.command(name="k8s")
@recipe_argument
@click.option("--registry", "registry_ref", metavar="REF", required=True,
              help="HOST/REPO[:TAG]: inputs and parts go to HOST/REPO, the merged bundle to its TAG "
                   "(default: the Jobs' name).")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the manifests here (default: stdout).")
@click.option("--image", callback=_pinned, default=None, metavar="REPO@sha256:…",
              help="Image of CPU cells and the merge (default: the pinned Python base, exportctl installed at start).")
@click.option("--gpu-image", callback=_pinned, default=None, metavar="REPO@sha256:…",
              help="Image of GPU cells (default: the pinned TensorRT base).")
@click.option("--install", default="pip install exportctl", show_default=True,
              help="The shell line that installs exportctl in a pod ('' when the image has it).")
@click.option("--sandbox", type=click.Choice(["auto", *SANDBOXES]), default="none",
              show_default=True, help="Cell isolation inside the pod; pods rarely may create the namespaces "
                                      "bubblewrap needs, so the pod is the sandbox by default (recorded).")
@click.option("--registry-secret", default="exportctl-registry", show_default=True,
              help="A kubernetes.io/dockerconfigjson Secret with the registry's credentials (optional).")
@click.option("--gpu-node-selector", default="nvidia.com/gpu.present=true", show_default=True, metavar="KEY=VALUE",
              help="The node label GPU cells are scheduled on.")
@click.option("--namespace", default=None, help="Namespace of every object (default: kubectl's).")
@click.option("--no-push", is_flag=True,
              help="Only render: do not upload the inputs (they must be in the registry before the Jobs run).")
@registry_options
@json_option
def k8s(recipe: Path, registry_ref: str, out: Path | None, image: str | None, gpu_image: str | None, install: str,
        sandbox: str, registry_secret: str, gpu_node_selector: str, namespace: str | None, no_push: bool,
        ca_file: Path | None, insecure: bool) -> None:
    """Indexed Jobs (one index per cell; GPU cells with nvidia.com/gpu) and a suspended merge Job."""
    from exportctl.canonical import digest_bytes
    from exportctl.ci.cells import render_cells
    from exportctl.ci.kubernetes import WORK, KubernetesOptions, base_image, render
    from exportctl.executors.inputs import file_layers, manifest, push_inputs, title_of
    from exportctl.recipe.load import load_recipe
    from exportctl.registry.client import Registry
    from exportctl.registry.reference import Reference, parse

    ref = parse(registry_ref)
    key, sep, value = gpu_node_selector.partition("=")
    if not sep or not key:
        raise errors.ConfigError(f"--gpu-node-selector '{gpu_node_selector}' is not KEY=VALUE")
    loaded = load_recipe(recipe)
    cells = render_cells(loaded)
    layers = file_layers(recipe, loaded)
    inputs = digest_bytes(manifest(layers))
    if not no_push:
        with err().status(f"pushing the inputs to {ref.host}/{ref.repository}", spinner="dots"):
            pushed = push_inputs(Registry(Reference(ref.host, ref.repository), transport_options(ca_file, insecure)),
                                 layers)
        assert pushed == inputs
    checkpoint = None
    if loaded.checkpoint.path is not None:  # where the pod's inputs tree has it (the task works in WORK/task)
        checkpoint = f"{WORK}/task/inputs/{title_of(layers, loaded.resolve(loaded.checkpoint.path))}"
    opts = KubernetesOptions(image or base_image(cells, gpu=False), gpu_image or base_image(cells, gpu=True),
                             install, sandbox, registry_secret, (key, value), namespace)
    options = {name: dict(entry.options) for name, entry in loaded.formats.items()}
    text = render(loaded.name, cells, options, checkpoint, ref, inputs, opts)
    _write(text, out, {"manifests": str(out), "cells": [c.name for c in cells], "inputs": inputs,
                       "pushed_inputs": not no_push}, f"{len(cells)} indexed cell(s) and the merge Job")
