"""`python -m exportctl` and the `exportctl` console script: the command line, with `--version` answered at once.

`exportctl --version` alone is answered here, in click's words, before click and the command group are
imported (they are most of start-up); everything else goes to `exportctl.cli`.
"""

from __future__ import annotations

import sys

from exportctl import __version__


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"exportctl, version {__version__}")  # what click.version_option prints for the same flag
        return
    from exportctl.cli import main

    main(prog_name="exportctl")


if __name__ == "__main__":
    run()
