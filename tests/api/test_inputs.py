"""What a user holds, read as files are: a path, a PIL image, a numpy array (uint8 or
floats, HW, HWC or a batch) and a tensor give the same prepared pixels and the same
prediction; anything else is one ``CnnkitError`` naming the image and what was expected."""

import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit.errors import CnnkitError, ImageError
from cnnkit.predict import Prediction, Predictions
from tests.helpers.real_images import digit_photo


@pytest.fixture(scope="module")
def run(digit_run):
    return cnnkit.load(digit_run)


@pytest.fixture(scope="module")
def photo(mnist, tmp_path_factory):
    """A real test digit (a 7) photographed as ink on paper, and its label."""
    _, test = mnist
    path = digit_photo(test.images[0, 0].numpy(), tmp_path_factory.mktemp("photo") / "7.png")
    return path, test.classes[int(test.labels[0])]


def test_every_kind_of_image_is_prepared_as_the_file_is(run, photo):
    path, _ = photo
    pil = Image.open(path)
    gray = np.array(pil.convert("L"))
    rgb = np.array(pil.convert("RGB"))
    as_file = run.loaded.read_images(path).images
    held = [
        pil,
        str(path),
        gray,
        gray[:, :, None],
        rgb,
        np.array(pil.convert("RGBA")),
        gray.astype(np.float32) / 255,
        torch.from_numpy(gray),
        torch.from_numpy(rgb).permute(2, 0, 1),
        torch.from_numpy(gray).float().div(255)[None],
    ]
    for image in held:
        assert torch.equal(run.loaded.read_images(image).images, as_file), type(image)


def test_one_image_gives_a_prediction_and_a_list_or_batch_gives_one_per_image(run, photo):
    path, label = photo
    one = run.predict(path, top=3)
    assert isinstance(one, Prediction)
    assert one.label == label and one.source == str(path)
    assert len(one.top) == 3 and one.probability == one.top[0][1]
    assert [p for _, p in one.top] == sorted((p for _, p in one.top), reverse=True)
    gray = np.array(Image.open(path).convert("L"))
    several = run.predict([path, gray, Image.open(path)])
    assert isinstance(several, Predictions) and len(several) == 3
    assert [p.label for p in several] == [label] * 3
    assert [p.source for p in several] == [str(path), "image 1", "image 2"]
    assert [name for name, _ in several[1].top] == [name for name, _ in several[0].top]
    assert [p for _, p in several[1].top] == pytest.approx([p for _, p in several[0].top])


def test_a_batch_array_and_a_batch_tensor_give_one_prediction_per_image(run, mnist):
    _, test = mnist
    images = test.images[:4]  # N x 1 x 28 x 28 uint8
    from_tensor = run.predict(images)
    from_array = run.predict(images.permute(0, 2, 3, 1).numpy())
    assert isinstance(from_tensor, Predictions) and len(from_tensor) == 4
    assert [p.label for p in from_tensor] == [p.label for p in from_array]
    right = sum(
        p.label == test.classes[int(y)] for p, y in zip(from_tensor, test.labels[:4], strict=True)
    )
    assert right >= 3  # one epoch of LeNet-5: about 97% right


def test_predictions_print_and_render_as_tables(run, photo):
    path, label = photo
    one = run.predict(path)
    text = repr(one)
    assert text.splitlines()[0] == f"{path}: {label}"
    assert "probability" in text and "%" in text and len(text) < 600
    assert one._repr_html_().count("<tr>") == 1 + 5  # a header and the top 5
    several = run.predict([path, path])
    assert str(several).splitlines()[0].split()[:3] == ["image", "#1", "#2"]
    assert several._repr_html_().startswith("<table>")


def test_features_are_a_vector_for_one_image_and_a_matrix_for_a_list(run, photo):
    path, _ = photo
    one, two = run.features(path), run.features([path, Image.open(path)])
    assert one.shape == (84,) and two.shape == (2, 84)
    assert torch.allclose(two[0], one) and torch.allclose(two[1], one)


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((3, 28, 28), np.uint8), "an array of shape (3, 28, 28)"),
        (np.zeros((28, 28, 2), np.uint8), "an array of shape (28, 28, 2)"),
        (np.zeros((28, 28), np.int64), "values of type int64"),
        (np.full((28, 28), 2.0), "float values from 2 to 2"),
        (np.full((28, 28), np.nan), "not finite"),
        (np.zeros((0, 28), np.uint8), "no pixels"),
        (torch.zeros(28, 28, 3), "a tensor of shape (28, 28, 3)"),
        (torch.zeros(2, 2, 2, 2, 2), "a tensor of shape (2, 2, 2, 2, 2)"),
        (5, "of type int"),
        (np.zeros((0, 28, 28, 1), np.uint8), "a batch of no images"),
        (torch.zeros(0, 1, 28, 28), "a batch of no images"),
        ([], "an empty list"),
        ([np.zeros((2, 28, 28, 1), np.uint8)], "a batch inside a list"),
        ("no-such-file.png", "no-such-file.png: file not found"),
    ],
)
def test_bad_images_are_one_error_naming_the_image_and_what_was_expected(run, image, fragment):
    with pytest.raises(ImageError) as caught:
        run.predict(image)
    message = str(caught.value)
    assert fragment in message and "\n" not in message


def test_a_held_image_over_the_pixel_limit_is_refused_before_it_is_converted(run):
    huge = np.broadcast_to(np.uint8(0), (10_000, 10_000))  # no memory behind it
    with pytest.raises(ImageError, match="claims 100,000,000 pixels"):
        run.predict(huge)


@pytest.mark.parametrize("top", [0, -1, 2.5, True, "3"])
def test_top_must_be_a_whole_number_of_classes(run, photo, top):
    with pytest.raises(CnnkitError, match=f"top={top!r}"):
        run.predict(photo[0], top=top)


def test_an_index_of_the_working_folder_opens(run, photo, monkeypatch, tmp_path):
    """Images directly in the folder given as ".": labelled with the folder's own name."""
    folder = tmp_path / "sevens"
    folder.mkdir()
    for n in range(3):
        Image.open(photo[0]).save(folder / f"{n}.png")
    monkeypatch.chdir(folder)
    index = cnnkit.index(run, ".", out=tmp_path / "index", progress=False)
    assert len(index) == 3 and {hit.label for hit in index.search(photo[0])} == {"sevens"}
