"""The type every data set is turned into: a whole split held in memory.

Three types meet at cnnkit's seams:
- ``ImageSet``: ``images`` uint8 (N, C, H, W) as stored, ``labels`` int64 (N,),
  ``classes`` the category names, index = label.
- float batches: ``(images.float() / 255 - mean) / std``, made per batch.
- logits: float (N, K), one row per image, K = len(classes).
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]
    mean: tuple[float, ...]  # per channel, on [0, 1]; from the training split
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must have shape ({len(self.images)},), got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.images.shape[1:]
        return channels, height, width

    def subset(self, count: int) -> "ImageSet":
        """The first ``count`` images (all of them when count exceeds the size)."""
        return ImageSet(self.images[:count], self.labels[:count], self.classes, self.mean, self.std)

    def hold_out(self, count: int) -> tuple["ImageSet", "ImageSet"]:
        """(all but the last ``count`` images, the last ``count``): a validation split,
        normalised with the whole split's statistics (a shift of under 0.1% on MNIST)."""
        keep = len(self) - count
        first = ImageSet(self.images[:keep], self.labels[:keep], self.classes, self.mean, self.std)
        rest = ImageSet(self.images[keep:], self.labels[keep:], self.classes, self.mean, self.std)
        return first, rest


def channel_stats(
    images: torch.Tensor, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) pixels on [0, 1],
    summed in float64 chunk by chunk so that no float copy of the whole set is made."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        pixels = images[start : start + chunk].transpose(0, 1).reshape(channels, -1).double()
        total += pixels.sum(dim=1)
        squares += (pixels * pixels).sum(dim=1)
    count = max(1, images.numel() // channels)
    mean = total / count / 255
    std = (squares / count / 255**2 - mean**2).clamp(min=0).sqrt()
    return tuple(mean.tolist()), tuple(std.clamp(min=1e-6).tolist())
