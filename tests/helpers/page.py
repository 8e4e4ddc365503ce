"""What the page's Chromium tests share: the viewports, the JavaScript that measures a
canvas and the page's sideways scroll, and a real MNIST digit's ink as the runs of pixels
that the tests draw with mouse strokes."""

import numpy as np

INK = 128  # an MNIST pixel at least this bright is drawn
WIDE, PHONE = {"width": 1150, "height": 800}, {"width": 390, "height": 800}
# The spread of a canvas's colours: 0 for a blank one.
CANVAS_SPREAD = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let low = 255, high = 0;
    data.forEach((value, k) => {
        if (k % 4 !== 3) [low, high] = [Math.min(low, value), Math.max(high, value)];
    });
    return high - low;
}"""
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def ink_runs(image: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, last column) of each horizontal run of ink in a digit."""
    runs = []
    for row, line in enumerate(image >= INK):
        columns = np.flatnonzero(line)
        if len(columns):
            breaks = np.flatnonzero(np.diff(columns) > 1)
            starts = [columns[0], *columns[breaks + 1]]
            ends = [*columns[breaks], columns[-1]]
            runs += [(row, int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
    return runs
