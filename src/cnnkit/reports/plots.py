"""PNG figures with matplotlib (Agg backend, no display needed)."""

from pathlib import Path

import torch


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def save_image_grid(images: torch.Tensor, titles: list[str], path: Path, columns: int = 8) -> Path:
    """uint8 (N, C, H, W) images in a grid, each titled (e.g. with its class name)."""
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.45 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        image = images[index].permute(1, 2, 0).numpy()
        if image.shape[-1] == 1:
            axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            axis.imshow(image, interpolation="nearest")
        axis.set_title(titles[index], fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def save_confusion_png(confusion: torch.Tensor, classes: list[str], path: Path) -> Path:
    """The confusion matrix (row = true class) as a heat map with counts."""
    plt = _pyplot()
    k = len(classes)
    side = min(20.0, 2.0 + 0.5 * k)
    figure, axis = plt.subplots(figsize=(side, side))
    axis.imshow(confusion.numpy(), cmap="Blues")
    if k <= 30:
        axis.set_xticks(range(k), classes, rotation=90, fontsize=7)
        axis.set_yticks(range(k), classes, fontsize=7)
        peak = int(confusion.max()) or 1
        for (i, j), count in zip(
            [(i, j) for i in range(k) for j in range(k)], confusion.flatten().tolist(), strict=True
        ):
            if count:
                colour = "white" if count > peak / 2 else "black"
                axis.text(j, i, str(count), ha="center", va="center", fontsize=6, color=colour)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
