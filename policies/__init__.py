"""The built-in policy catalog, one module per concern.

A policy's family (``-m <family>``, its section of docs/policies.md) is its
module's name unless ``@policy(..., family=...)`` names another: the
``security`` family spans openshift.py, credentials.py, eviction.py,
images.py, gitsync.py and shared_secrets.py.  Domain knowledge that is not a
policy (probe-script parsing, image references, RBAC and the executor's needs)
lives in ``chartpolicy.checks``.

Installed as ``chartpolicy.policies``; the plugin collects these modules
in any repository that installs chartpolicy.
"""
