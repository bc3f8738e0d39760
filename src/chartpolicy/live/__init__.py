"""The live tier: a deployed release, read from a cluster (or a recorded snapshot).

One module per concern:

- ``client``: the one wrapper every cluster request goes through (reads,
  access reviews, exec only when asked), retries, and recording/replay
- ``release``: what the release is (its Helm release record, or its
  instance labels under GitOps) and the live objects it owns
- ``subject``: the live subject policies receive, same interface as a
  rendered one
- ``incontainer``: pytest-testinfra checks inside running containers
- ``plugin``: options, the ``connect[...]`` item, live parametrization

See docs/live.md.
"""
