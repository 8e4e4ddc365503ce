"""What reading an image gives: a ``Reading`` (the digit string, its confidence, and a
``DigitBox`` per digit in the image's own pixels), or ``Readings`` for several images.
Both print as tables and render in Jupyter; ``as_json`` is what ``--format json`` prints."""

from dataclasses import dataclass, field
from html import escape

from tabulate import tabulate

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels, x1 and y1 exclusive


@dataclass(frozen=True)
class DigitBox:
    box: Box
    label: str  # the class, a digit
    probability: float  # the network's probability of ``label`` for this box

    def as_json(self) -> dict:
        return {"box": list(self.box), "class": self.label, "probability": self.probability}


@dataclass(frozen=True, repr=False)
class Reading:
    """The digits read in one image, left to right (``find``: top to bottom, then left to
    right). An empty reading says why in ``reason``."""

    source: str  # the file's path, or the image's place in what was given
    text: str
    confidence: float  # the probability of the whole string: the product of its digits'
    digits: list[DigitBox] = field(default_factory=list)
    reader: str = "segment"
    reason: str = ""  # why nothing was read, when nothing was

    def as_json(self) -> dict:
        found = {
            "text": self.text,
            "confidence": self.confidence,
            "digits": [digit.as_json() for digit in self.digits],
        }
        return found | ({"reason": self.reason} if self.reason else {})

    def table(self, style: str = "simple") -> str:
        rows = [
            (position, d.label, f"{100 * d.probability:.1f}%", " ".join(map(str, d.box)))
            for position, d in enumerate(self.digits, 1)
        ]
        headers = ["#", "class", "probability", "box (x0 y0 x1 y1)"]
        return tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)

    def headline(self) -> str:
        if not self.text:
            return f"{self.source}: nothing read ({self.reason})"
        return f"{self.source}: {self.text} ({100 * self.confidence:.1f}%, {self.reader})"

    def __repr__(self) -> str:
        return self.headline() + ("\n" + self.table() if self.digits else "")

    def _repr_html_(self) -> str:
        table = self.table("html") if self.digits else ""
        return f"<p>{escape(self.headline())}</p>{table}"


class Readings(list[Reading]):
    """One ``Reading`` per image, in the order given; prints as one table."""

    def table(self, style: str = "simple") -> str:
        rows = [
            (r.source, r.text or f"({r.reason})", f"{100 * r.confidence:.1f}%", len(r.digits))
            for r in self
        ]
        headers = ["image", "text", "confidence", "digits"]
        return tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.table("html")
