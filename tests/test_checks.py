"""chartpolicy.checks: the shared domain knowledge, as plain functions."""

import pytest

from chartpolicy.checks.images import image_problem, split_image


@pytest.mark.parametrize(("image", "parts", "problem"), [
    ("apache/airflow:3.1.3", ("apache/airflow", "3.1.3", ""), None),
    ("registry.local:5000/airflow", ("registry.local:5000/airflow", "", ""), "has no tag"),
    ("apache/airflow:latest", ("apache/airflow", "latest", ""), "uses the latest tag"),
    ("apache/airflow@sha256:" + "0" * 64, ("apache/airflow", "", "sha256:" + "0" * 64), None),
    ("statsd:v0.28.0@sha256:" + "0" * 64, ("statsd", "v0.28.0", "sha256:" + "0" * 64), None),
])
def test_image_references_are_split_and_judged(image, parts, problem):
    assert split_image(image) == parts
    found = image_problem(image)
    assert (found is None) == (problem is None) and (problem is None or problem in found)
    assert image_problem("") == "has no image"
