"""The store: a plain OCI image layout (blobs by digest, `index.json`), written atomically, with referrers.

It knows media types and descriptors, never what a bundle means: readers of bundle contents live in
`exportctl.bundle.read`, the index of bundles in `exportctl.catalog`.
"""
