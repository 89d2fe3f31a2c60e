"""`python -m exportctl`: the same command line as the `exportctl` script."""

from __future__ import annotations

from exportctl.cli import main

main(prog_name="exportctl")
