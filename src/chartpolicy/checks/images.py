"""Image references: their parts, and whether they pin what a node pulls."""

from __future__ import annotations


def split_image(image: str) -> tuple[str, str, str]:
    """``registry:5000/repo/name:tag@sha256:...`` -> (repository, tag, digest); missing parts are ``""``."""
    reference, _, digest = image.partition("@")
    path, _, name = reference.rpartition("/")
    name, _, tag = name.partition(":")
    return (f"{path}/{name}" if path else name), tag, digest


def image_problem(image: str | None) -> str | None:
    """Why an image reference is not pinned, or None."""
    if not image:
        return "has no image"
    _, tag, digest = split_image(image)
    if digest:
        return None
    if not tag:
        return f"image {image} has no tag (it means latest)"
    if tag == "latest":
        return f"image {image} uses the latest tag"
    return None
