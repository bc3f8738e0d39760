"""The built-in policy catalog, one module per invariant family.

Installed as ``chartpolicy.policies``; the plugin collects these modules
in any repository that installs chartpolicy.
"""
