"""Subcommands added by a later issue; registered on `exportctl.cli.main` when imported."""
