"""Training augmentation, batched: every sample gets its own random crop, flip and
colour shift, computed for the whole batch in a few tensor operations (CPU or GPU),
after airbench's "whole data set as one tensor" design.

``--augment`` takes a preset or a comma-separated list of steps, applied in this order:
- ``writing``: the variety of handwriting that MNIST's writers lacked and a reader of
  whole numbers meets (``cnnkit.read.strings`` writes its strings so): each digit slanted
  by a random horizontal shear of up to 0.3 pixels per pixel of height (LeCun et al.
  1998, Sec. III-C, name shearing among their distortions), and a third of them with
  strokes half a pixel thicker or thinner. Before any crop, on the image as loaded.
- ``crop``: random crop of the model's input size; zero padding of size // 8 first
  when the images are no larger than the input (pad-and-crop for 28/32-pixel data),
  none for larger images (224 of 256, Krizhevsky et al. 2012, Sec. 4.1).
- ``shift``: random translation by up to size // 16 pixels (2 for LeNet-5's 32),
  as zero padding and a random crop: a light form of LeNet-5's distortions
  (LeCun et al. 1998, Sec. III-C).
- ``resized-crop``: random area and aspect ratio, rescaled to the input size
  (Szegedy et al. 2015, Sec. 6; torchvision's RandomResizedCrop), batched with
  ``roi_align``; area 8-100 % for large images, 25-100 % for images <= 64 pixels.
- ``flip``: horizontal reflection with probability 1/2.
- ``trivialaugment``: torchvision's TrivialAugmentWide (Mueller and Hutter 2021), per image.
- ``pca``: PCA colour noise (``transforms.pca``).
- ``mixup`` / ``cutmix``: torchvision's MixUp / CutMix on the batch (one of them,
  chosen at random, when both are named); the labels become class probabilities.
Presets: ``none``; ``alexnet`` = crop, flip, pca; ``modern`` = resized-crop, flip,
trivialaugment, mixup, cutmix. Flips are dropped for digit data sets.

Images stay uint8 except after mixup (float on the 0..255 scale), which
``normalize`` takes as they are.
"""

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:  # imported where used: torchvision's transforms are slow to import
    from torchvision.transforms import v2

from cnnkit.errors import UnknownNameError
from cnnkit.transforms.pca import ColourPCA, colour_pca, pca_colour_augment
from cnnkit.transforms.tencrop import crop_padding

STEPS = (
    "writing", "crop", "shift", "resized-crop", "flip", "trivialaugment", "pca", "mixup", "cutmix"
)  # fmt: skip
WRITING_SLANT = 0.3  # largest horizontal shear, pixels per pixel of height
WRITING_STROKE = 1 / 3  # share of images whose strokes are made thicker or thinner
PRESETS = {
    "none": (),
    "alexnet": ("crop", "flip", "pca"),
    "modern": ("resized-crop", "flip", "trivialaugment", "mixup", "cutmix"),
}
SMALL_IMAGE_SIDE = 64


def parse_augment(spec: str, allow_flip: bool = True) -> tuple[str, ...]:
    """The steps of a preset or a comma-separated list, in application order."""
    if spec in PRESETS:
        named = PRESETS[spec]
    else:
        named = tuple(part.strip() for part in spec.split(",") if part.strip())
        unknown = [step for step in named if step not in STEPS]
        if unknown:
            raise UnknownNameError.of("augmentation", unknown[0], [*STEPS, *PRESETS])
    return tuple(s for s in STEPS if s in named and (allow_flip or s != "flip"))


def random_crop(
    images: torch.Tensor, size: int, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A size x size patch at an independent random place in each zero-padded image:
    two gathers, rows then columns (3x faster on a CPU than one 3-index lookup)."""
    if padding:
        images = F.pad(images, (padding, padding, padding, padding))
    n, channels, height, width = images.shape
    top = torch.randint(0, height - size + 1, (n, 1), generator=generator)
    left = torch.randint(0, width - size + 1, (n, 1), generator=generator)
    span = torch.arange(size)
    rows = (top + span).to(images.device)[:, None, :, None].expand(n, channels, size, width)
    cols = (left + span).to(images.device)[:, None, None, :].expand(n, channels, size, size)
    return images.gather(2, rows).gather(3, cols)  # (N, C, size, size)


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_resized_crop(
    images: torch.Tensor,
    size: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per image, a box of random area fraction and aspect ratio, resampled bilinearly
    to size x size; boxes that would not fit are clipped to the image."""
    n, _, height, width = images.shape
    area = height * width * torch.empty(n).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    box_w = (area * log_ratio.exp()).sqrt().clamp(max=width)
    box_h = (area / log_ratio.exp()).sqrt().clamp(max=height)
    x1 = torch.rand(n, generator=generator) * (width - box_w)
    y1 = torch.rand(n, generator=generator) * (height - box_h)
    boxes = torch.stack([torch.arange(n).float(), x1, y1, x1 + box_w, y1 + box_h], dim=1)
    from torchvision.ops import roi_align

    resized = roi_align(
        images.float(), boxes.to(images.device), (size, size), sampling_ratio=0, aligned=True
    )
    return resized.round_().clamp_(0, 255).to(images.dtype)


def handwriting(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image slanted by its own random shear (bilinear, about its centre) and, for
    a third of them, its strokes half a pixel thicker (the mean of the image and its
    3x3 maximum) or thinner (and its 3x3 minimum)."""
    n, device = len(images), images.device
    shear = (torch.rand(n, generator=generator) * 2 - 1) * WRITING_SLANT
    pick = torch.rand(n, generator=generator)
    pixels = images.float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 1] = 1.0, 1.0, shear
    grid = F.affine_grid(theta.to(device), list(pixels.shape), align_corners=False)
    pixels = F.grid_sample(pixels, grid, mode="bilinear", align_corners=False)
    thicker = (pixels + F.max_pool2d(pixels, 3, 1, 1)) / 2
    thinner = (pixels - F.max_pool2d(-pixels, 3, 1, 1)) / 2
    pick = pick.to(device)[:, None, None, None]
    pixels = torch.where(pick < WRITING_STROKE / 2, thicker, pixels)
    pixels = torch.where((pick >= WRITING_STROKE / 2) & (pick < WRITING_STROKE), thinner, pixels)
    return pixels.round_().clamp_(0, 255).to(images.dtype)


@dataclass
class Augment:
    """The training augmentation ``train_one_epoch`` applies to each uint8 batch."""

    steps: tuple[str, ...]
    size: int  # the model's input side
    num_classes: int
    pca: ColourPCA | None = None
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        side, g = images.shape[-1], self.generator
        if "writing" in self.steps:
            images = handwriting(images, g)
        if "crop" in self.steps:
            images = random_crop(images, self.size, crop_padding(side, self.size), g)
        elif "shift" in self.steps:
            images = random_crop(images, self.size, self.size // 16, g)
        elif "resized-crop" in self.steps:
            scale = (0.25, 1.0) if side <= SMALL_IMAGE_SIDE else (0.08, 1.0)
            images = random_resized_crop(images, self.size, scale, generator=g)
        elif side > self.size:  # no random crop asked for: the centre
            offset = (side - self.size) // 2
            images = images[..., offset : offset + self.size, offset : offset + self.size]
        if "flip" in self.steps:
            images = random_flip(images, g)
        if "trivialaugment" in self.steps:  # torchvision draws from the global generator
            from torchvision.transforms import v2

            trivial = v2.TrivialAugmentWide()
            images = torch.stack([trivial(image) for image in images])
        if "pca" in self.steps and self.pca is not None:
            images = pca_colour_augment(images, self.pca, g)
        if "mixup" in self.steps or "cutmix" in self.steps:
            from torchvision.transforms import v2

            mixers = [
                cls(num_classes=self.num_classes)
                for step, cls in (("mixup", v2.MixUp), ("cutmix", v2.CutMix))
                if step in self.steps
            ]
            images, labels = v2.RandomChoice(mixers)(images.float(), labels)
        return images, labels


def build_augment(
    spec: str,
    train_images: torch.Tensor,
    size: int,
    num_classes: int,
    *,
    allow_flip: bool = True,
    seed: int = 0,
) -> Augment | None:
    """The augmentation named by ``spec`` for a training split (None for ``none``);
    the colour PCA is computed here, once, over all training pixels."""
    steps = parse_augment(spec, allow_flip)
    if not steps:
        return None
    pca = colour_pca(train_images) if "pca" in steps else None
    return Augment(steps, size, num_classes, pca, torch.Generator().manual_seed(seed))


def per_image_transform(
    steps: tuple[str, ...], size: int, train: bool = True, rescale: bool = True
) -> "v2.Compose":
    """The same recipe as per-image torchvision transforms on uint8 (C, H, W) tensors,
    for folder sets read by a DataLoader. With ``rescale`` images are first rescaled so
    that the shorter side is 256/224 of the input and centre-cropped square (Krizhevsky
    et al. 2012, Sec. 2); without, crops pad by size // 8 as for 32-pixel data. Batch
    steps (pca, mixup, cutmix) are left to ``Augment`` on the batch."""
    from torchvision.transforms import v2

    ops: list = []
    if train and "resized-crop" in steps:
        ops.append(v2.RandomResizedCrop(size, antialias=True))
    else:
        if rescale:
            side = round(size * 256 / 224)
            ops += [v2.Resize(side, antialias=True), v2.CenterCrop(side)]
        padding = 0 if rescale else size // 8
        ops.append(
            v2.RandomCrop(size, padding=padding)
            if train and "crop" in steps
            else v2.CenterCrop(size)
        )
    if train and "flip" in steps:
        ops.append(v2.RandomHorizontalFlip())
    if train and "trivialaugment" in steps:
        ops.append(v2.TrivialAugmentWide())
    return v2.Compose(ops)
