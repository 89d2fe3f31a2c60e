"""OCI distribution registries: push a stored bundle and its referrers, pull one back into the store.

`reference` parses `HOST[:PORT]/REPO[:TAG][@sha256:…]`, `transport` decides HTTP/TLS and answers auth
challenges (Docker config, credential helpers, Bearer tokens), `client` speaks the distribution protocol with
the exact bytes the store holds, `push`/`pull` move a bundle, `referrers` finds signatures and provenance.
"""
