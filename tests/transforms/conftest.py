"""Fixtures for pixel operations."""

from tests.real_images import real_image_tree  # noqa: F401
