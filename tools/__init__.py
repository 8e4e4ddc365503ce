"""Developers' tools that are not part of the package: the generator of
docs/model-sizes.md and the planted near-duplicates that search's tests and
benchmark score against."""
