"""Renderings of a recipe's plan for other schedulers: a GitHub Actions matrix workflow, Kubernetes Jobs.

Nothing here runs anything: the files are written for the user's CI or cluster, and checked offline by the
tests (actionlint; the Kubernetes OpenAPI schemas through kubernetes-validate)."""
