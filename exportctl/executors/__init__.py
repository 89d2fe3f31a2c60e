"""Where a build's cells run: `local` is the build pipeline's own loop; `slurm` is one array task per cell on a
cluster, the parts travelling through an OCI registry. One module per executor."""

EXECUTORS = ("local", "slurm")
