"""The Space Displacement Neural Network (LeCun et al. 1998, Sec. VII): the trained LeNet-5
replicated along a whole field, so that it reads a string without cutting it first.

The field is scaled so that its digits are as tall as MNIST's (20 pixels) and set in a
band of the network's 32 rows. Convolutions work on any width; the fully connected
layers become convolutions too (C5 already is one; F5 of the modern variant is a 5x5
convolution with the same weights; F6 and the output act on each column's features),
so one forward pass gives a class distribution every 4 pixels, the network's total
subsampling. Four passes shifted by one pixel give one every pixel. The same trained
weights, no retraining.

Post-processing (Sec. VII-B) turns that sequence into a string: the paper's SDNN had a
"none of the above" output, trained on windows between two characters, and a Viterbi
search through a grammar keeps the characters between "none"s. Deviation: a network
trained on centred digits alone has no such output, so where a character is centred is
taken from the ink instead: the modes of its column profile (smoothed over a stroke's
width), where a window's centre of mass sits at its centre as MNIST's digits were
centred. Each mode reads the class the replicated network gives there, averaged with its
neighbours on either side, as the paper merges identical consecutive outputs.
"""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.errors import ConfigError
from cnnkit.models.lenet import LeNet5, LeNet5Modern
from cnnkit.read.ink import Ink
from cnnkit.read.results import DigitBox
from cnnkit.read.segment import digit_height
from cnnkit.runs import Run

DIGIT = 20  # pixels of a digit's height in MNIST's 28x28 (its longer side)
BAND = 32  # the network's input height
STRIDE = 4  # two 2x2 subsamplings: one output every 4 input columns
MIN_RUN = 4  # columns (band pixels) a character's outputs last at least
NONE = 0.5  # the probability "none of the above" scores in every column
WINDOW = 10  # band columns either side of a window's centre weighed for its centre of mass
CENTRED = 3.0  # a window's ink centred within this many columns may be a character
BLANK = 0.5  # ink (in pixels at full strength) below which a window's middle is blank
START = 2.0  # the log-probability a new character costs
EDGE = 0.1  # ink fainter than this (of the darkest stroke) is paper grain


def check_sdnn(run: Run) -> None:
    """The SDNN replicates LeNet-5's layers; other models have no convolutional form here."""
    if not isinstance(run.model, LeNet5 | LeNet5Modern):
        raise ConfigError(
            f"{run.path}: the sdnn reader replicates LeNet-5 along the field and needs a "
            f"lenet5 or lenet5-modern run, not {run.record.model}; the segment reader reads "
            "with any digit model (--reader segment)"
        )


def field_band(ink: Ink, height: float) -> tuple[np.ndarray, float, int]:
    """The field scaled to MNIST's digit height in a band of BAND rows, centred by mass:
    float32 (BAND, W) in [0, 1], the scale (band pixels per ink pixel), and the ink row
    at the band's top (in ink pixels)."""
    scale = DIGIT / height
    strength = np.where(ink.strength > EDGE, ink.strength, 0.0)  # paper grain removed
    width = max(1, round(strength.shape[1] * scale))
    rows = max(1, round(strength.shape[0] * scale))
    picture = Image.fromarray(strength.astype(np.float32), mode="F")
    scaled = np.asarray(picture.resize((width, rows), Image.Resampling.BILINEAR))
    mass = scaled.sum(axis=1)
    centre = float(mass @ np.arange(rows) / max(mass.sum(), 1e-6))
    top = int(round(centre - BAND / 2))
    band = np.zeros((BAND, width), np.float32)
    source = scaled[max(top, 0) : top + BAND]
    band[max(-top, 0) : max(-top, 0) + len(source)] = source
    return band, scale, top


def column_probs(run: Run, band: np.ndarray) -> np.ndarray:
    """(W, K) class probabilities of the window centred on each band column."""
    model = run.model
    assert isinstance(model, LeNet5 | LeNet5Modern)  # check_sdnn refused the others
    pad = BAND // 2
    padded = np.pad(band, ((0, 0), (pad, pad + STRIDE)))
    mean, std = run.record.mean[0], run.record.std[0]
    x = (torch.from_numpy(padded) - mean) / std
    shifts = torch.stack([x[:, shift : shift + x.shape[1] - STRIDE] for shift in range(STRIDE)])
    shifts = shifts[:, None].to(next(model.parameters()).device)  # (4, 1, 32, W + 32)
    with torch.no_grad():
        logits = replicated(model, shifts)  # (4, K, T)
    probs = logits.softmax(dim=1).permute(2, 0, 1).reshape(-1, logits.shape[1])  # t, shift
    return probs[: band.shape[1]].cpu().numpy()


def replicated(model: LeNet5 | LeNet5Modern, x: torch.Tensor) -> torch.Tensor:
    """The model's logits (N, K, T) at every window along the width of x (N, 1, 32, W)."""
    if isinstance(model, LeNet5):
        x = model.s2_act(model.s2(model.c1_act(model.c1(x))))
        x = model.s4_act(model.s4(model.c3_act(model.c3(x))))
        features = model.c5_act(model.c5(x))  # (N, 120, 1, T)
    else:
        x = model.s2(model.c1_act(model.c1(x)))
        x = model.s4(model.c3_act(model.c3(x)))  # (N, 16, 5, W / 4 - 7)
        f5 = model.f5.weight.view(model.f5.out_features, 16, 5, 5)  # F5 as a 5x5 convolution
        features = model.f5_act(F.conv2d(x, f5, model.f5.bias))  # (N, 120, 1, T)
    columns = features[:, :, 0].transpose(1, 2)  # (N, T, 120)
    f6 = model.f6_act(model.f6(columns))  # F6 on each column: a 1x1 convolution
    logits = model.output(f6.reshape(-1, f6.shape[-1])).view(*f6.shape[:2], -1)
    return logits.transpose(1, 2)


def decode(probs: np.ndarray, none: np.ndarray) -> list[tuple[int, int, int]]:
    """The digits in a sequence of column outputs (T, K): (first column, last column + 1,
    class) of each, by a Viterbi search through a character model: a character is at
    least MIN_RUN columns of one class, characters are separated by "none" or follow
    each other at a cost, and "none" scores ``none`` (T,), a probability per column."""
    steps, classes = probs.shape
    states = 1 + classes * MIN_RUN  # none, then class k's run: columns 1 .. MIN_RUN (and on)
    emit = np.empty((steps, states), np.float64)
    emit[:, 0] = np.log(none)
    emit[:, 1:] = np.repeat(np.log(np.maximum(probs, 1e-12)), MIN_RUN, axis=1)
    first = 1 + MIN_RUN * np.arange(classes)  # each class's first state
    last = first + MIN_RUN - 1  # its last, which may repeat
    score = np.full(states, -np.inf)
    score[0], score[first] = emit[0, 0], emit[0, first] - START
    back = np.zeros((steps, states), np.int64)
    for t in range(1, steps):
        ended = max(score[0], score[last].max())  # none, or a character that has run long enough
        ended_from = 0 if score[0] >= score[last].max() else int(last[score[last].argmax()])
        new = np.full(states, -np.inf)
        new[0], back[t, 0] = ended, ended_from
        new[first], back[t, first] = ended - START, ended_from
        inner = np.concatenate([first + i for i in range(1, MIN_RUN)])
        new[inner], back[t, inner] = score[inner - 1], inner - 1  # a run goes on
        stay = score[last] >= new[last]
        new[last] = np.where(stay, score[last], new[last])
        back[t, last] = np.where(stay, last, back[t, last])
        score = new + emit[t]
    state = 0 if score[0] >= score[last].max() else int(last[score[last].argmax()])
    path = np.empty(steps, np.int64)
    for t in range(steps - 1, -1, -1):
        path[t], state = state, back[t, state]
    runs, t = [], 0
    while t < steps:
        if path[t] == 0:
            t += 1
            continue
        label, start = (path[t] - 1) // MIN_RUN, t
        t += 1
        same = label * MIN_RUN + 1  # the class's first state starts a new character
        while t < steps and same < path[t] < same + MIN_RUN:
            t += 1
        runs.append((start, t, int(label)))
    return runs


def none_probability(band: np.ndarray) -> np.ndarray:
    """(W,) how likely no character is centred at each band column: NONE where the ink
    in the window has its centre of mass at the window's centre and moving the window
    right moves that centre left (a character, as MNIST centred them), nearly certain
    elsewhere: between characters, or beside one. The network, trained on centred
    digits alone, reads such windows as some digit; the paper's was trained to say
    none."""
    profile = band.sum(axis=0)
    offsets = np.arange(-WINDOW, WINDOW + 1)
    weights = np.exp(-0.5 * (offsets / (WINDOW / 2)) ** 2)
    mass = np.convolve(profile, weights, mode="same")
    moment = np.convolve(profile, weights * offsets[::-1], mode="same")  # sum (x - t) m w
    offset = moment / np.maximum(mass, 1e-6)
    slope = np.gradient(offset)
    centred = (np.abs(offset) <= CENTRED) & (slope < 0) & (mass > BLANK)
    return np.where(centred, NONE, 0.99)


def read_sdnn(run: Run, ink: Ink, length: int | None = None) -> tuple[list[DigitBox], float] | None:
    """The digits the replicated network reads along the field (boxes in the ink's
    pixels) and the string's probability; None when it does not read ``length`` digits."""
    height = digit_height(ink)
    band, scale, _ = field_band(ink, height)
    probs = column_probs(run, band)
    runs = decode(probs, none_probability(band))
    if length is not None and len(runs) != length:
        return None
    digits = []
    for start, end, label in runs:
        probability = float(probs[start:end, label].mean())
        box = ink_box(ink, (start - STRIDE) / scale, (end + STRIDE) / scale)
        digits.append(DigitBox(box, run.classes[label], probability))
    if not digits:
        return None
    return digits, float(np.prod([d.probability for d in digits]))


def ink_box(ink: Ink, left: float, right: float) -> tuple[int, int, int, int]:
    """The box of the ink between two columns (ink pixels); the columns alone if none."""
    x0, x1 = max(int(left), 0), min(int(np.ceil(right)), ink.labels.shape[1])
    rows = np.flatnonzero(ink.mask[:, x0:x1].any(axis=1))
    cols = np.flatnonzero(ink.mask[:, x0:x1].any(axis=0))
    if len(rows) == 0:
        return (x0, 0, max(x1, x0 + 1), ink.labels.shape[0])
    return (x0 + int(cols[0]), int(rows[0]), x0 + int(cols[-1]) + 1, int(rows[-1]) + 1)
