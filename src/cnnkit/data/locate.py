"""Where cnnkit looks for a data set's files, in order.

1. ``--data-dir DIR`` (its subfolder named after the data set, or DIR itself),
2. ``$CNNKIT_DATA`` (likewise),
3. the user cache directory (``platformdirs.user_cache_dir("cnnkit")/<name>``),
4. system folders a data set names (e.g. Debian's ``/usr/share/datasets/...``),
5. the files shipped inside the package,
6. a download from the official mirrors into the first writable place of 1-3.
"""

import os
from pathlib import Path

import platformdirs

PACKAGE_FILES = Path(__file__).parent / "files"


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cnnkit"))


def search_dirs(name: str, data_dir: Path | None, system_dirs: tuple[Path, ...] = ()) -> list[Path]:
    """The folders to look in for data set ``name``, best first."""
    dirs = []
    for root in _user_roots(data_dir):
        dirs += [root / name, root]
    return dirs + list(system_dirs) + [PACKAGE_FILES / name]


def download_dir(name: str, data_dir: Path | None) -> Path:
    """Where a downloaded file of data set ``name`` is stored."""
    return _user_roots(data_dir)[0] / name


def find_file(file_name: str, dirs: list[Path]) -> Path | None:
    """The first ``file_name`` or ``file_name.gz`` in ``dirs``."""
    for folder in dirs:
        for candidate in (folder / file_name, folder / (file_name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _user_roots(data_dir: Path | None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("CNNKIT_DATA"):
        roots.append(Path(os.environ["CNNKIT_DATA"]))
    return roots + [user_cache_dir()]
