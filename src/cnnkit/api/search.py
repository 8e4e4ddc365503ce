"""``cnnkit.index`` and ``cnnkit.open_index``: image search with a run's learned
features, queried with what a user holds (``search`` builds and opens the folder)."""

from collections.abc import Sequence
from pathlib import Path

from cnnkit.api.run import Run
from cnnkit.config import is_count
from cnnkit.data.held import HeldImage
from cnnkit.errors import ConfigError
from cnnkit.progress import wanted as progress_wanted
from cnnkit.search.backends import BACKEND_CHOICES
from cnnkit.search.build import BuildSettings, build_index
from cnnkit.search.collection import file_collection
from cnnkit.search.index import Neighbours, Searches, SearchIndex
from cnnkit.search.index import open_index as open_index_folder
from cnnkit.search.knob import settings_given
from cnnkit.search.tune import DEFAULT_TARGET_RECALL


class Index:
    """An opened index: ``search`` by example, ``by_class`` by the model's probability."""

    def __init__(self, opened: SearchIndex) -> None:
        self.opened = opened  # search's own index: queries by features, thumbnails

    @property
    def path(self) -> Path:
        return self.opened.path

    @property
    def classes(self) -> tuple[str, ...]:
        return self.opened.classes

    def __len__(self) -> int:
        return len(self.opened)

    def search(
        self,
        images: HeldImage | Sequence[HeldImage],
        top: int = 10,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> Neighbours | Searches:
        """The ``top`` most similar items (each with its ``path``, ``label`` and
        ``similarity``) to one image, or for each of a list or a batch. ``nprobe`` (an
        IVF index) or ``ef_search`` (HNSW) spends more or less time on these queries
        than the setting the build tuned to its target recall (``recall_at_10``)."""
        settings = settings_given(nprobe, ef_search)
        return self.opened.query_images(images, check_top(top), settings)

    @property
    def recall_at_10(self) -> float | None:
        """Recall@10 against exact search measured when the index was built (None: an
        exact index, the reference)."""
        return self.opened.manifest.backend.recall_at_10

    def by_class(self, name: str, top: int = 10) -> Neighbours:
        """The ``top`` items the model finds most probably of class ``name``."""
        return self.opened.by_class(name, check_top(top))

    def __repr__(self) -> str:
        manifest = self.opened.manifest
        return (
            f"Index({len(self):,} images, {manifest.feature_size}-d features of "
            f"{manifest.checkpoint}, {manifest.backend.name}: {self.path})"
        )


def check_top(top: int) -> int:
    if not is_count(top):
        raise ConfigError(f"top={top!r}: expected a whole number of results, 1 or more")
    return top


def index(
    run: Run | str | Path,
    images: str | Path | Sequence[str | Path],
    out: str | Path,
    backend: str = "auto",
    progress: bool | None = None,
    target_recall: float = DEFAULT_TARGET_RECALL,
    memory_budget_mb: float | None = None,
) -> Index:
    """Embed image files (a folder, searched recursively, its subfolders naming the
    labels; a file; or a list of them) with ``run`` (a ``Run`` or its checkpoint) into a
    new index folder ``out``, and open it; as ``cnnkit index build`` does. An
    approximate backend ("auto" takes one from 100,000 images, within
    ``memory_budget_mb`` MB) is tuned to find ``target_recall`` of the exact 10 nearest.
    A progress bar shows in a terminal or a notebook unless ``progress=False``."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend={backend!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    checkpoint = run.path if isinstance(run, Run) else Path(run)
    paths = [Path(images)] if isinstance(images, str | Path) else [Path(p) for p in images]
    shown = progress_wanted() if progress is None else progress
    settings = BuildSettings(
        backend=backend,
        target_recall=target_recall,
        memory_budget_mb=memory_budget_mb,
        progress=shown,
    )
    build_index(checkpoint, Path(out), lambda _: file_collection(paths), settings)
    return open_index(out)


def open_index(path: str | Path) -> Index:
    """The index in folder ``path``, every file checked against its manifest."""
    return Index(open_index_folder(Path(path)))
