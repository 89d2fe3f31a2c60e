"""Code that runs *inside* a cell, with the toolchain environment's Python.

It may import the standard library, the toolchain's locked packages, `yolo_runtime` (runtimes/python) and
`exportctl.errors`, `exportctl.formats`, `exportctl.tasks` and `exportctl.cell` only: exportctl's own
dependencies (pydantic, rich, ...) are not there. `protocol` is what the host and the cell exchange.
"""
