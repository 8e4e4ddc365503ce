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

from cnnkit.analysis.size import SizeReport, model_size
from cnnkit.errors import UnknownNameError
from cnnkit.models import REGISTRY, PaperFacts

OPERATIONS_PER_CONNECTION = 3  # 1 forward, 2 backward


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
    """The comparison columns for registry models whose papers' facts we hold (their
    registrations' ``paper``)."""
    with_facts = {entry.name: entry.paper for entry in REGISTRY.values() if entry.paper}
    for name in names:
        if name not in with_facts:
            raise UnknownNameError.of("model to compare (no paper facts)", name, with_facts)
    return [PaperComparison(name, with_facts[name], model_size(name)) for name in names]
