"""Toolchain environments: what a cell's interpreter and packages are, and how they are made.

locks       which lockfile pins a toolchain, its digest, where wheels may come from
pins        base images pinned by digest (images/base-images.toml)
uvenv       local backend: one uv virtual environment per lock digest; the installers' process environment
templates   Docker backend: a toolchain's Dockerfile rendered from images/<toolchain>/Dockerfile.j2
wheelhouse  Docker backend: exactly the locked wheels for the base image's interpreter, hash-checked
contexts    Docker backend: the build context (Dockerfile, lock, wheelhouse, in-cell code), its digest, its cache
"""
