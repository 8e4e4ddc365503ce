"""Pictures of items for people: one PNG thumbnail, and a PNG grid of query results
(one row per query: the query, then its neighbours, each with its score below)."""

import torch
from PIL import Image, ImageDraw

from cnnkit.data.image_files import png_bytes

GAP = 6  # pixels between cells
CAPTION = 14  # pixels of text below each cell


def as_picture(image: torch.Tensor, size: int) -> Image.Image:
    """uint8 (C, H, W) as a PIL image whose longer side is ``size``: enlarged by pixel
    repetition (a 28x28 digit stays sharp), reduced with a Lanczos filter."""
    pixels = image.permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    scale = size / max(picture.size)
    shape = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return picture.convert("RGB").resize(shape, resample)


def thumbnail_png(image: torch.Tensor, size: int = 96) -> bytes:
    return png_bytes(as_picture(image, size))


def grid_png(rows: list[list[tuple[torch.Tensor, str]]], size: int = 96) -> bytes:
    """One row per query of (image, caption) cells, the query first."""
    columns = max((len(row) for row in rows), default=1)
    cell_w, cell_h = size + GAP, size + CAPTION + GAP
    sheet = Image.new("RGB", (GAP + columns * cell_w, GAP + len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            picture = as_picture(image, size)
            x, y = GAP + c * cell_w, GAP + r * cell_h
            sheet.paste(
                picture, (x + (size - picture.width) // 2, y + (size - picture.height) // 2)
            )
            draw.text((x, y + size + 1), caption, fill=(0, 0, 0) if c else (170, 0, 0))
    return png_bytes(sheet)
