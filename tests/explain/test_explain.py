"""The explanation of one image, on real MNIST digits and CIFAR-10 photos with trained runs:
every layer as the size analyzer counts it, Grad-CAM where the issue places it, the JSON
object, the public API and ``cnnkit explain``."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.analysis import size_report
from cnnkit.api import load
from cnnkit.explain import Explained
from cnnkit.models import create
from cnnkit.models.registry import REGISTRY
from cnnkit.plots import LAYERS_DRAWN, drawn_layers, explanation_figure, figure_png
from cnnkit.runs import Run, RunRecord, load_run
from cnnkit.runs.explain import explain_batch, in_input_frame, is_within
from cnnkit.transforms import normalize
from tests.helpers import assert_one_line_error, run_cli
from tests.helpers.real_images import digit_photo


@pytest.fixture(scope="module")
def photo(tmp_path_factory, mnist):
    """A real MNIST test digit (a 2) photographed as dark ink on paper, 112x112."""
    _, test = mnist
    return digit_photo(test.images[1, 0].numpy(), tmp_path_factory.mktemp("explain") / "two.png")


@pytest.fixture(scope="module")
def explained(digit, mnist):
    _, test = mnist
    return explain_batch(digit, test.images[:8], [f"digit {k}" for k in range(8)])


def test_every_layer_with_the_size_analyzers_shape_and_units(digit, explained):
    counted = size_report(digit.model, digit.model.input_size, "lenet5")
    expected = [(row.name, row.output_shape, row.units) for row in counted.layers if row.units]
    expected = expected[1:]  # the input row: the explanation has the input apart
    for explanation in explained:
        layers = [(layer.name, layer.shape, layer.units) for layer in explanation.layers]
        assert layers == expected
        assert [layer.name for layer in explanation.layers] == [
            "c1", "s2", "c3", "s4", "c5", "f6", "output"
        ]  # fmt: skip
        for layer in explanation.layers:
            assert layer.values.shape == layer.shape and np.isfinite(layer.values).all()


def test_layers_show_units_after_their_activation_function(digit, explained):
    """LeNet-5's scaled tanh (1.7159 tanh(2x/3)) bounds what C1 passes on; the raw
    convolution is not bounded, so the values shown are after the squashing."""
    for explanation in explained:
        c1 = explanation.layers[0].values
        assert np.abs(c1).max() <= 1.7159 + 1e-5


def test_gradcam_on_the_last_convolution_larger_than_1x1(explained, mnist):
    """LeNet-5: C3's 10x10 maps (C5's are 1x1), in the 32x32 input's frame."""
    for explanation in explained:
        assert explanation.gradcam_layer == "c3"
        assert explanation.gradcam.shape == (32, 32) == explanation.saliency.shape
        for heat in (explanation.gradcam, explanation.saliency, explanation.smoothgrad):
            assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        assert explanation.input.shape == (1, 32, 32) and explanation.input.dtype == np.uint8
        # The padded MNIST digit as the network received it: a black border of 2 + 4.
        assert explanation.input[0, :2].max() == 0


def test_top_class_by_default_and_another_on_request(digit, explained, mnist):
    _, test = mnist
    for explanation in explained:
        assert explanation.target == explanation.predicted
    other = (explained[0].predicted + 1) % 10
    asked = explain_batch(digit, test.images[:1], ["digit 0"], [other], smoothgrad_samples=0)[0]
    assert asked.target == other and asked.smoothgrad is None
    assert not np.allclose(asked.gradcam, explained[0].gradcam)
    np.testing.assert_allclose(asked.probabilities, explained[0].probabilities, atol=1e-6)


def test_json_object(explained):
    answer = json.loads(json.dumps(explained[0].to_json()))
    assert np.array(answer["input"]).shape == (32, 32)  # one 2-D list for grayscale
    assert [layer["name"] for layer in answer["layers"]][0] == "c1"
    for layer in answer["layers"]:
        assert np.array(layer["activations"]).shape == tuple(layer["shape"])
    assert list(answer["probabilities"]) == [str(k) for k in range(10)]
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert np.array(answer["gradcam"]).shape == (32, 32) == np.array(answer["saliency"]).shape
    assert answer["target"] == answer["predicted"] == explained[0].label
    assert set(answer["novelty"]) == {"score", "threshold", "unusual"}


def test_colour_input_is_one_2d_list_per_channel(photo_run, real_image_tree):
    run = load_run(photo_run)
    image = next((real_image_tree / "test").rglob("*.jpg"))
    explanation = explain_batch(run, run.read_file(image)[None], [str(image)], novelty=False)[0]
    answer = explanation.to_json()
    assert np.array(answer["input"]).shape == (3, 32, 32)
    assert explanation.gradcam is not None and explanation.gradcam.shape == (32, 32)
    assert answer["novelty"] is None and "not asked" in answer["novelty_note"]


def test_public_run_explains_what_a_user_holds(digit_run, photo, mnist):
    run = load(digit_run)
    one = run.explain(photo)
    assert isinstance(one, Explained) and one.label == "2"
    html = one._repr_html_()
    assert "data:image/png;base64," in html and "c3" in html
    assert "c3" in repr(one) and "1,600" in repr(one)  # C3: 16 maps of 10x10
    _, test = mnist
    several = run.explain([test.images[0, 0].numpy(), photo], target="3")
    assert [explained.explanation.target_label for explained in several] == ["3", "3"]
    png = one.png()
    assert png.startswith(b"\x89PNG")


def test_cli_table_figure_and_json(digit_run, photo, tmp_path):
    figure = tmp_path / "explain.png"
    shown = run_cli("explain", str(digit_run), str(photo), "--out", str(figure))
    assert shown.returncode == 0, shown.stderr
    assert "Grad-CAM on c3" in shown.stdout and "table conv" in shown.stdout
    assert "looks like the training images" in shown.stdout
    assert Image.open(figure).size[1] > 600  # every layer, not one row
    printed = run_cli("explain", str(digit_run), str(photo), "--format", "json", "--class", "7")
    answer = json.loads(printed.stdout)
    assert answer["target"] == "7" and answer["predicted"] == "2"
    assert len(answer["layers"]) == 7


def test_cli_errors_are_one_line(digit_run, photo, tmp_path):
    assert_one_line_error(
        run_cli("explain", str(digit_run), str(photo), "--class", "eleven"), "eleven", "classes"
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert_one_line_error(run_cli("explain", str(digit_run), str(broken)), "broken.png")
    assert_one_line_error(run_cli("explain", str(digit_run), str(tmp_path / "none.png")))


# Where Grad-CAM weighs, at each family's test input: the last convolution larger than
# 1x1, or the block the model names (ResNet-50's last stage has 1x1 maps at 32x32, so
# there it falls back to the last convolution larger than 1x1).
FAMILIES = {
    "lenet1": "h2",
    "alexnet-small": "conv5",
    "resnet8": "layer3",
    "googlenet-small": "inception4a",
    "resnet50": "layer3.5.conv3",
}


def untrained_run(name: str) -> tuple[Run, torch.Tensor]:
    """An untrained net of ``name`` at its test input as a run, and two random images."""
    channels, height, width = REGISTRY[name].test_input
    torch.manual_seed(0)
    model = create(name, num_classes=7, in_channels=channels, image_size=(height, width))
    record = RunRecord(
        name, 7, channels, (height, width), (height, width), tuple("abcdefg"),
        (0.5,) * channels, (0.25,) * channels, "mnist", "plain",
    )  # fmt: skip
    run = Run(SimpleNamespace(record=record, config=None), model.eval())
    return run, torch.randint(0, 256, (2, channels, height, width), dtype=torch.uint8)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_kind_of_network_is_explained_and_drawn(name):
    """Untrained networks of each family at their test input: every layer as the size
    analyzer counts it (a ResNet's shortcut sum is not folded into a convolution), a
    Grad-CAM in [0, 1] where the model places it, and a figure of at most LAYERS_DRAWN
    layers."""
    run, images = untrained_run(name)
    model, (channels, height, width) = run.model, REGISTRY[name].test_input
    explanation = explain_batch(run, images, ["a", "b"], smoothgrad_samples=2, novelty=False)[0]
    counted = size_report(model, (channels, height, width), name)
    expected = [(row.name, row.output_shape, row.units) for row in counted.layers if row.units]
    assert [(x.name, x.shape, x.units) for x in explanation.layers] == expected[1:]
    assert explanation.gradcam is not None and 0 <= explanation.gradcam.min()
    assert explanation.gradcam.max() <= 1 and explanation.gradcam.shape == (height, width)
    drawn = drawn_layers(explanation)
    assert len(drawn) <= LAYERS_DRAWN + 1 and drawn[-1] is explanation.layers[-1]
    assert explanation.gradcam_layer == FAMILIES[name]
    assert any(is_within(layer.name, FAMILIES[name]) for layer in drawn)
    assert figure_png(explanation_figure(explanation)).startswith(b"\x89PNG")


@pytest.mark.parametrize(("name", "stride"), [("googlenet-small", 8), ("resnet8", 4)])
def test_gradcam_on_a_named_block_is_the_papers(name, stride):
    """Where the model names a block (the concatenated branches of GoogLeNet's last
    Inception block, a ResNet's last stage after its shortcut sum), Grad-CAM is computed
    by hand on the block's output and placed by the main path's stride."""
    run, images = untrained_run(name)
    model = run.model
    found = explain_batch(run, images, ["a", "b"], smoothgrad_samples=0, novelty=False)
    caught = []
    block = model.get_submodule(FAMILIES[name])
    handle = block.register_forward_hook(lambda module, inputs, out: caught.append(out))
    with torch.enable_grad():
        logits = model(normalize(run.prepare(images), run.record.mean, run.record.std))
        handle.remove()
        score = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
        (gradient,) = torch.autograd.grad(score, caught)
    maps = torch.relu((gradient.mean(dim=(2, 3), keepdim=True) * caught[0]).sum(1, keepdim=True))
    placed = in_input_frame(maps.detach(), stride, images.shape[-2:])[:, 0]
    expected = placed / placed.flatten(1).amax(1)[:, None, None]
    for explanation, reference in zip(found, expected, strict=True):
        assert explanation.gradcam_layer == FAMILIES[name]
        np.testing.assert_allclose(explanation.gradcam, reference.numpy(), atol=1e-5)


def test_gradcam_is_the_papers_on_c3(digit, mnist):
    """Grad-CAM computed here by hand (a hook on C3's squashing, the class score's
    gradients averaged per map, the ReLU of the weighted sum) equals the module's once
    both are placed in the input's frame; C3's first unit sits at pixel 6.5 of 32."""
    _, test = mnist
    images = test.images[:4]
    found = explain_batch(digit, images, list("abcd"), smoothgrad_samples=0, novelty=False)
    caught = []
    handle = digit.model.c3_act.register_forward_hook(lambda m, i, out: caught.append(out))
    with torch.enable_grad():
        x = normalize(digit.prepare(images), digit.record.mean, digit.record.std)
        logits = digit.model(x)
        handle.remove()
        score = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
        (gradient,) = torch.autograd.grad(score, caught)
    maps = torch.relu((gradient.mean(dim=(2, 3), keepdim=True) * caught[0]).sum(1, keepdim=True))
    placed = in_input_frame(maps.detach(), 2, (32, 32))[:, 0]
    expected = placed / placed.flatten(1).amax(1)[:, None, None]
    for explanation, reference in zip(found, expected, strict=True):
        np.testing.assert_allclose(explanation.gradcam, reference.numpy(), atol=1e-5)
    one_unit = torch.zeros(1, 1, 10, 10)
    one_unit[0, 0, 0, 0] = 1
    placed = in_input_frame(one_unit, 2, (32, 32))[0, 0]
    assert placed[:7, :7].min() == 1 and placed[7, 7] == pytest.approx(0.75 * 0.75)
