"""What each paper says about its training: the facts behind ``cnnkit size --compare``.

Total training operations are given in the lecture's two conventions, both from
the connections with biases (the papers' count):

- the lecture's LeNet figures: connections x training examples x epochs, one
  operation per connection per example (LeNet-1 1989: 65,000 x 7,291 x 23 =
  about 11 billion; LeNet-5 1998: 344,000 x 60,000 x 20 = about 412 billion);
- its AlexNet estimate: the same x 3, about three multiply-adds per connection
  per example, one in the forward pass and two in the backward pass (one for the
  unit's gradient, one for the weight's).
"""

from dataclasses import dataclass

from cnnkit.analysis.report import SizeReport, model_size
from cnnkit.errors import UnknownNameError

OPERATIONS_PER_CONNECTION = 3  # 1 forward, 2 backward


@dataclass(frozen=True)
class PaperFacts:
    network: str  # as the lecture names it
    task: str
    categories: int
    image_size: str  # as the paper's data come, before any padding or cropping
    training_examples: int
    epochs: int  # passes through the training set
    source: str  # where the training facts are stated


PAPER_FACTS: dict[str, PaperFacts] = {
    "lenet1": PaperFacts(
        "LeNet (1989)",
        "digits",
        10,
        "16x16",
        7_291,
        23,
        "LeCun et al. 1989 (7,291 training digits; 23 passes, 167,693 presentations)",
    ),
    "lenet5": PaperFacts(
        "LeNet (1998)",
        "digits",
        10,
        "28x28",
        60_000,
        20,
        "LeCun et al. 1998, Sec. III (MNIST's 60,000 training digits; 20 passes)",
    ),
    "alexnet": PaperFacts(
        "AlexNet (2012)",
        "objects",
        1000,
        "256x256x3",
        1_200_000,
        90,
        "Krizhevsky et al. 2012, Sec. 2 (1.2 million images) and Sec. 5 (roughly 90 cycles)",
    ),
    "zfnet": PaperFacts(
        "ZFNet (2013)",
        "objects",
        1000,
        "256x256x3",
        1_300_000,
        70,
        "Zeiler and Fergus 2013, Sec. 3 (1.3 million images, stopped after 70 epochs)",
    ),
    "vgg16": PaperFacts(
        "VGG-16 (2014)",
        "objects",
        1000,
        "256x256x3 to 512x512x3",
        1_300_000,
        74,
        "Simonyan and Zisserman 2014, Sec. 4 (1.3 million images) and 3.1 (74 epochs)",
    ),
    "resnet50": PaperFacts(
        "ResNet-50 (2015)",
        "objects",
        1000,
        "256x256x3 to 480x480x3",
        1_280_000,
        120,
        "He et al. 2015, Sec. 3.4 and 4.1 (1.28 million images; 60e4 iterations of "
        "256 images = 120 epochs)",
    ),
}


@dataclass(frozen=True)
class PaperComparison:
    """One network's column in the lecture's comparison table."""

    model: str
    facts: PaperFacts
    size: SizeReport

    @property
    def lecture_training_operations(self) -> int:
        """Connections x examples x epochs: how the lecture totals LeNet's training."""
        return (
            self.size.totals.connections_with_biases
            * self.facts.training_examples
            * self.facts.epochs
        )

    @property
    def training_operations(self) -> int:
        """Three per connection (forward + backward): how the lecture estimates AlexNet's."""
        return self.lecture_training_operations * OPERATIONS_PER_CONNECTION


def compare_models(names: list[str]) -> list[PaperComparison]:
    """The comparison columns for registry models whose papers' facts we hold."""
    for name in names:
        if name not in PAPER_FACTS:
            raise UnknownNameError.of("model to compare (no paper facts)", name, PAPER_FACTS)
    return [PaperComparison(name, PAPER_FACTS[name], model_size(name)) for name in names]
