"""A policy with a bug: it indexes a container list that may be empty."""

from chartpolicy import policy


@policy("buggy-policy")
def test_buggy_policy(subject, violations):
    """Every ConfigMap has a first container (it does not: this policy is broken)."""
    for config_map in violations.examine(subject.objects.of_kind("ConfigMap")):
        first = config_map.body["spec"]["containers"][0]
        violations.add(config_map, f"first container {first}")
