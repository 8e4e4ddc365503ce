"""Fixtures for the data readers."""

from tests.real_images import real_image_tree  # noqa: F401
