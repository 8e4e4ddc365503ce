"""Reading whole handwritten numbers and finding every digit on a page (LeCun et al.
1998, Sec. V-VII): a consumer of runs. ``read_images`` and ``find_images`` are what
``cnnkit read``, ``cnnkit find``, ``Run.read`` and ``Run.find`` call; ``read.strings``
generates the strings and pages they are measured on."""

from cnnkit.read.reader import Reader, find_images, read_images
from cnnkit.read.results import DigitBox, Reading, Readings

__all__ = ["DigitBox", "Reader", "Reading", "Readings", "find_images", "read_images"]
