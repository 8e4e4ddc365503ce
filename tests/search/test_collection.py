"""Which files a folder given to ``cnnkit index build`` contributes, and in what order:
the order gives the items their ids, so it must not depend on how the folder is walked."""

from pathlib import Path

from cnnkit.search.collection import list_images


def test_a_folder_lists_its_images_as_rglob_finds_them_with_real_paths(tmp_path, monkeypatch):
    root = tmp_path.resolve() / "photos"
    for name in ["cat/b/x.JPG", "top.png", "cat b/y.jpeg", "cat-/z.png", "cat/notes.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"not decoded here")
    (root / "cat" / "folder.png").mkdir()  # a folder with an image's name
    (root / "cat" / "link.png").symlink_to(root / "top.png")
    (root / "broken.png").symlink_to(root / "gone.png")
    (root / "linked").symlink_to(root / "cat")  # rglob does not walk linked folders
    expected = [
        (root / "cat/b/x.JPG", "b"),
        (root / "top.png", "cat"),  # cat/link.png: its real path, its own folder's name
        (root / "cat b/y.jpeg", "cat b"),  # Path order, part by part: "cat" < "cat b" < "cat-"
        (root / "cat-/z.png", "cat-"),
    ]  # top.png itself is the link's file again: listed once
    assert list_images([root]) == expected
    monkeypatch.chdir(tmp_path)
    assert list_images([Path("photos")]) == expected  # absolute whatever the argument
    alone_first = list_images([root / "top.png", root / "cat-", root])
    assert alone_first == [(root / "top.png", None), expected[3], expected[0], expected[2]]
    assert list_images([root], limit=2) == expected[:2]
