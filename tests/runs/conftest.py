"""Fixtures for the run layer's tests."""

from tests.real_images import real_image_tree  # noqa: F401
