"""One module per `exportctl` command. Each defines its click command and imports nothing from `exportctl.cli`;
`cli.py` adds them to the `main` group. Shared options and output helpers are in `common`."""
