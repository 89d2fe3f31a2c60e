"""`exportctl ci github`: a GitHub Actions workflow that builds a recipe as a matrix, one job per cell.

Each matrix job runs `exportctl build --only CELL` and pushes its partial bundle to the registry under a tag of
this run; GPU cells (TensorRT) go to the runner label the user names. The final job pulls the parts, merges them
(`exportctl merge`: the digest a one-machine build gives), signs keylessly with the job's OIDC identity
(`permissions: id-token: write`, `exportctl sign --sigstore`) and pushes the signed bundle. Registry
credentials come from two repository secrets through `docker login`, which writes the Docker config exportctl
reads. The YAML is written from plain data by PyYAML: key order as built, no timestamps, so it is golden-tested.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from exportctl.ci.cells import RenderCell, dump_yaml, merge_script
from exportctl.registry.reference import Reference

PYTHON = "3.11"
CHECKOUT = "actions/checkout@v4"
SETUP_PYTHON = "actions/setup-python@v5"


def _setup(install: str, host: str) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": PYTHON}},
        {"name": "Install exportctl and bubblewrap",
         "run": f"sudo apt-get update && sudo apt-get install -y bubblewrap\n{install}\n"},
        {"name": "Log in to the registry",
         "env": {"REGISTRY_USERNAME": "${{ secrets.REGISTRY_USERNAME }}",
                 "REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}"},
         "run": f'echo "$REGISTRY_PASSWORD" | docker login {host} -u "$REGISTRY_USERNAME" --password-stdin\n'},
    ]


def workflow(recipe_name: str, recipe_path: str, cells: list[RenderCell], ref: Reference, cpu_runner: str,
             gpu_runner: str, install: str) -> dict[str, Any]:
    repo = f"{ref.host}/{ref.repository}"
    final_tag = ref.tag or "${{ github.sha }}"
    include = [{"cell": c.name, "slug": c.slug, "runner": gpu_runner if c.gpu else cpu_runner} for c in cells]
    build = (
        'exportctl build "$RECIPE" --only "$CELL" --json > build.json\n'
        'exportctl push "$(jq -r .bundle build.json)" "$REGISTRY_REPO:part-$GITHUB_RUN_ID-$SLUG"\n')
    merged = merge_script(cells, lambda c: f"$REGISTRY_REPO:part-$GITHUB_RUN_ID-{c.slug}", "jq -r .bundle")
    finish = (merged +
              'exportctl sign "$digest" --sigstore\n'
              f'exportctl push "$digest" "$REGISTRY_REPO:{final_tag}"\n')
    return {
        "name": f"exportctl {recipe_name}",
        "on": {"workflow_dispatch": {}, "push": {"paths": [recipe_path]}},
        "permissions": {"contents": "read"},
        "env": {"RECIPE": recipe_path, "REGISTRY_REPO": repo, "EXPORTCTL_STORE": "${{ github.workspace }}/.store"},
        "jobs": {
            "cell": {
                "name": "${{ matrix.cell }}",
                "runs-on": "${{ matrix.runner }}",
                "strategy": {"fail-fast": False, "matrix": {"include": include}},
                "steps": [*_setup(install, ref.host),
                          {"name": "Build the cell and push its part",
                           "env": {"CELL": "${{ matrix.cell }}", "SLUG": "${{ matrix.slug }}"}, "run": build}],
            },
            "bundle": {
                "needs": "cell",
                "runs-on": cpu_runner,
                "permissions": {"contents": "read", "id-token": "write"},  # Sigstore keyless: the job's OIDC token
                "steps": [*_setup(install, ref.host),
                          {"name": "Pull the parts, merge, sign keylessly, push", "run": finish}],
            },
        },
    }


def render(recipe_name: str, recipe_path: PurePosixPath, cells: list[RenderCell], ref: Reference, cpu_runner: str,
           gpu_runner: str, install: str) -> str:
    data = workflow(recipe_name, recipe_path.as_posix(), cells, ref, cpu_runner, gpu_runner, install)
    header = f"# Written by `exportctl ci github` for recipe {recipe_name}; regenerate rather than edit.\n"
    return header + dump_yaml([data])
