"""Memory that a long CPU inference job frees, kept for its next allocation.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc returns freed memory
at the top of its heap to the system once more than ``M_TRIM_THRESHOLD`` lies free
(twice the last large block freed), and serves blocks above its mmap threshold
straight from the system; either way the next forward pass touches fresh pages, and
each 4 KiB page is a fault the kernel fills with zeros. Embedding 10,000 CIFAR-10
photos with ResNet-8 in one process on one thread, that was 83 page faults an image
and a build 1.4 times as long as with the settings below (9 faults an image, start-up
included).
"""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to 32 MiB come from the heap
TRIM_THRESHOLD = 256 << 20  # free heap kept: a few passes' activations


def keep_freed_memory() -> None:
    """Keep freed blocks of up to 32 MiB, and up to 256 MiB of them, in this process
    (and the processes it forks); nothing where the C library is not glibc's."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: macOS, Windows
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
