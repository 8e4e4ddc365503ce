"""Devices and precisions: the one update path against a plain torch loop, bf16 and
fp16 loss scaling and channels_last on the CPU, and clear refusals."""

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from cnnkit.config import TrainConfig, TrainOptions
from cnnkit.data.mnist import MNIST_MEAN, MNIST_STD
from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models import build_model, recipe_for
from cnnkit.runs.checkpoint import TRAIN_CONFIG
from cnnkit.runtime.device import CPU, Placement, choose_placement, to_cpu
from cnnkit.trainer.loop import shuffled_batches, train_one_epoch
from cnnkit.transforms import normalize
from tests.helpers import assert_one_line_error, run_cli, trained

ENV = {"OMP_NUM_THREADS": "1"}
MEAN, STD = (MNIST_MEAN,), (MNIST_STD,)


def lenet_and_data(mnist, count: int = 512):
    torch.manual_seed(0)
    model = build_model("lenet5-modern", num_classes=10, in_channels=1)
    images = torch.nn.functional.pad(mnist[0].images[:count], (2, 2, 2, 2))  # 28 -> 32
    return model, images, mnist[0].labels[:count]


def sgd(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def one_epoch(model, images, labels, placement=CPU, **kwargs):
    optimizer, scheduler = sgd(model)
    batches = shuffled_batches(images, labels, 64, torch.Generator().manual_seed(0))
    return train_one_epoch(
        model.to(placement.device, memory_format=placement.memory_format),
        batches,
        optimizer,
        scheduler,
        mean=MEAN,
        std=STD,
        placement=placement,
        **kwargs,
    )


def test_fp32_update_is_a_plain_torch_step(mnist):
    """The autocast and grad-scaler plumbing leaves float32 training bit for bit as
    the textbook loop: zero_grad, backward, step."""
    model, images, labels = lenet_and_data(mnist)
    reference = build_model("lenet5-modern", num_classes=10, in_channels=1)
    reference.load_state_dict(model.state_dict())
    one_epoch(model, images, labels)

    optimizer, _ = sgd(reference)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    for step in range(len(images) // 64):
        batch = order[step * 64 : (step + 1) * 64]
        loss = F.cross_entropy(reference(normalize(images[batch], MEAN, STD)), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name


@pytest.mark.parametrize(
    "placement",
    [
        Placement(autocast_dtype=torch.bfloat16),
        Placement(autocast_dtype=torch.float16),  # the CUDA fp16 path: GradScaler on
        Placement(memory_format=torch.channels_last),  # the CUDA layout
    ],
    ids=["bf16", "fp16-scaled", "channels-last"],
)
def test_other_placements_train_like_fp32(mnist, placement):
    model, images, labels = lenet_and_data(mnist)
    fp32 = one_epoch(model, images, labels)
    model, images, labels = lenet_and_data(mnist)
    scaler = placement.grad_scaler()
    stats = one_epoch(model, images, labels, placement, scaler=scaler)
    assert stats.train_loss == pytest.approx(fp32.train_loss, rel=0.05)
    assert scaler.is_enabled() == (placement.autocast_dtype == torch.float16)


def test_placements_chosen_for_the_cpu():
    assert choose_placement("cpu", "fp32") == CPU
    assert choose_placement("cpu", "bf16") == Placement(autocast_dtype=torch.bfloat16)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        choose_placement("cpu", "fp16")
    with pytest.raises(UnknownNameError, match="unknown precision 'fp8'; known: fp32, bf16"):
        choose_placement("cpu", "fp8")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line(tmp_path):
    result = run_cli("train", "--device", "cuda", "--out", str(tmp_path), env=ENV)
    assert_one_line_error(result, "--device cuda", "no CUDA GPU")
    assert not (tmp_path / "metrics.jsonl").exists()


def test_fp16_on_the_cpu_is_one_line(tmp_path):
    result = run_cli("train", "--device", "cpu", "--precision", "fp16", "--out", str(tmp_path))
    assert_one_line_error(result, "fp16 needs a CUDA GPU", "bf16")


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_bf16_on_the_cpu_learns_like_fp32(tmp_path):
    # 500 steps: past the early plateau where rounding moves the error by points.
    errors = {}
    for precision in ("fp32", "bf16"):
        options = TrainOptions(
            model="lenet5-modern",
            epochs=2,
            batch_size=32,
            out=tmp_path / precision,
            train_limit=8000,
            test_limit=1000,
            report=False,
            device="cpu",
            precision=precision,
        )
        result = trained(options)
        assert result.device == "cpu" and result.config.precision == precision
        errors[precision] = result.final.top1_error
    assert errors["bf16"] < 0.06  # chance: 0.90
    assert abs(errors["bf16"] - errors["fp32"]) <= 0.015


def test_checkpoint_state_moves_to_the_cpu_with_its_metadata():
    state = torch.nn.BatchNorm2d(3).state_dict()
    moved = to_cpu({"model_state": state, "optimizer": {"state": {0: [torch.ones(2)]}}})
    assert moved["model_state"]._metadata == state._metadata
    assert moved["model_state"]["weight"] is state["weight"]  # CPU tensors are not copied


def test_configs_of_older_checkpoints_load_with_the_new_defaults():
    saved = TrainConfig("lenet5", "mnist", recipe_for("lenet5"), Path("runs/x")).to_dict()
    for name in ("device", "precision", "dist_timeout"):
        del saved[name]
    config = TRAIN_CONFIG.read(saved)
    assert (config.device, config.precision) == ("auto", "fp32")
