"""Images pinned: every node pulls the same code, and a rollback rolls it back."""

from chartpolicy import Subject, Violations, policy
from chartpolicy.checks.images import image_problem


@policy("image-tag-pinned", tiers=("offline", "live"), family="security")
def test_image_tag_pinned(subject: Subject, violations: Violations) -> None:
    """Every container image (all workloads, init containers, hooks and task
    pods) names a tag other than ``latest``, or a digest.

    Why:
    ``latest`` or no tag means each node pulls whatever is current when the
    pod starts: two replicas run different code, and a rollback does not roll
    back the image.

    Fix:
    Pin a version tag (``apache/airflow:3.1.3``) or a digest
    (``@sha256:...``); refuse an empty tag in the template.

    Waive:
    Per container in the manifest, with the reason.
    """
    for workload in subject.workloads:
        for container in violations.examine(workload.containers):
            problem = image_problem(container.image)
            if problem:
                violations.add(workload, problem, container=container.name)
