"""exportctl: reproducible, hermetic, container-per-format builds of deep-learning model exports.

Kept import-free on purpose: the in-cell code (`exportctl.cell`) runs inside toolchain environments that do
not have exportctl's own dependencies installed.
"""

__version__ = "0.1.0"
# Bumped whenever in-cell export code changes what bytes it writes; part of every cell key.
EXPORTER_VERSION = "1"
