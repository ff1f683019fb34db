"""Tests for the model registry and architectures in ``svp.models``.

Everything runs on CPU; the deep models get a single small forward pass so the
file stays fast.
"""

from __future__ import annotations

import pytest
import torch

from svp.cli import main
from svp.models.networks import (
    MODEL_SPECS,
    MODELS,
    count_parameters,
    create_model,
    list_models,
    model_spec,
    preact_resnet,
    register_model,
)

# Deep enough that one forward pass per test run is all we can afford.
HEAVY_MODELS = {"resnet101", "resnet152", "preact_resnet110", "preact_resnet164"}
# Image models only: text models (VDCNN, fastText) are tested in test_text.py.
LIGHT_MODELS = sorted(m for m in set(list_models()) - HEAVY_MODELS if model_spec(m).modality == "image")

EXPECTED_MODELS = {
    "preact_resnet8",
    "preact_resnet20",
    "preact_resnet56",
    "preact_resnet110",
    "preact_resnet164",
    "resnet9",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "small_cnn",
    "tiny_cnn",
    "fast_cnn16",
    "fast_cnn20",
    "fast_cnn24",
    "fast_cnn32",
    "vdcnn9",
    "vdcnn17",
    "vdcnn29",
    "vdcnn49",
    "fasttext",
}

# Published sizes for 10 classes (He et al. 2016; the CIFAR ResNet18 figure is
# the commonly quoted one for this stem).
EXPECTED_PARAMETERS = {
    "preact_resnet20": 0.27e6,
    "preact_resnet56": 0.85e6,
    "preact_resnet110": 1.7e6,
    "preact_resnet164": 1.7e6,
    "resnet18": 11.2e6,
    "resnet9": 6.57e6,  # D. Page's DAWNBench ResNet-9
}


@pytest.fixture(autouse=True)
def _fixed_seed() -> None:
    torch.manual_seed(0)


def test_registry_lists_every_expected_model() -> None:
    assert set(list_models()) == EXPECTED_MODELS
    # Every model but fastText, which no torch factory builds, is a torch network.
    assert set(MODELS) == EXPECTED_MODELS - {"fasttext"}
    with pytest.raises(ValueError, match="'fasttext' is not a torch module; fastText trains it"):
        create_model("fasttext", num_classes=2)


def test_svp_models_prints_every_registered_model(capsys) -> None:
    assert main(["models"]) == 0
    printed = capsys.readouterr()
    assert set(printed.out.splitlines()) == EXPECTED_MODELS
    assert "torchvision/<name>: any torchvision.models classifier" in printed.err


@pytest.mark.parametrize("name", LIGHT_MODELS)
@pytest.mark.parametrize("in_channels", [3, 1])
def test_light_model_output_shape(name: str, in_channels: int) -> None:
    model = create_model(name, num_classes=7, in_channels=in_channels).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, in_channels, 32, 32))
    assert logits.shape == (2, 7)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(HEAVY_MODELS))
def test_heavy_model_output_shape(name: str) -> None:
    # One channel exercises the in_channels plumbing; 3 is covered by the
    # light models, whose stems are built by the same code.
    model = create_model(name, num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["preact_resnet20", "small_cnn", "tiny_cnn", "fast_cnn16", "resnet9"])
@pytest.mark.parametrize("size", [(8, 8), (28, 28), (8, 13)])
def test_small_and_odd_input_sizes(name: str, size: tuple[int, int]) -> None:
    model = create_model(name, num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, *size))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_each_model_takes_its_smallest_declared_input_and_no_smaller(name: str) -> None:
    """The spec's min_image_side is what the network takes: the config, train and score checks
    (svp.models.specs.input_problem) refuse exactly the images it cannot take."""
    side = model_spec(name).min_image_side
    model = create_model(name, num_classes=10, in_channels=3)
    model.train()(torch.randn(2, 3, side, side)).sum().backward()  # training: batch statistics, gradients
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, side, 33)).shape == (1, 10)
        if side > 1:
            with pytest.raises(RuntimeError):
                model(torch.randn(1, 3, side - 1, 33))


def test_training_mode_forward_with_batch_statistics() -> None:
    model = create_model("small_cnn", num_classes=3, in_channels=1).train()
    logits = model(torch.randn(4, 1, 8, 8))
    assert logits.shape == (4, 3)


@pytest.mark.parametrize("name, expected", sorted(EXPECTED_PARAMETERS.items()))
def test_parameter_counts_match_published_sizes(name: str, expected: float) -> None:
    count = count_parameters(create_model(name, num_classes=10))
    assert abs(count - expected) / expected < 0.05, f"{name}: {count}"


def test_count_parameters_skips_frozen_parameters() -> None:
    model = create_model("small_cnn", num_classes=10)
    total = count_parameters(model)
    model.fc.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.fc.weight.numel()


def test_cpu_cifar_pair_differs_in_cost() -> None:
    # config/cifar10-cpu.yaml relies on the target costing several times the proxy per example.
    proxy = count_parameters(create_model("tiny_cnn", num_classes=10))
    target = count_parameters(create_model("fast_cnn20", num_classes=10))
    assert proxy == 24346 and target > 6 * proxy


def test_resnet9_layout_and_training_step() -> None:
    # Page's ResNet-9: eight 3x3 convs (64 to 512 wide) and a linear layer, 4x4 maps
    # before the global max pool on 32x32 inputs, logits scaled by 0.125.
    model = create_model("resnet9", num_classes=10).train()
    convs = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [64, 128, 128, 128, 256, 512, 512, 512]
    images = torch.randn(4, 3, 32, 32)
    assert model.features(images).shape == (4, 512, 4, 4)
    loss = torch.nn.functional.cross_entropy(model(images), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_resnet9_gives_the_same_logits_in_channels_last() -> None:
    # svp.stages trains image models in channels_last on CUDA; the layout must not change the result.
    model = create_model("resnet9", num_classes=10).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(images)
        model = model.to(memory_format=torch.channels_last)
        got = model(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_proxy_is_much_smaller_than_target() -> None:
    proxy = count_parameters(create_model("preact_resnet20", num_classes=10))
    target = count_parameters(create_model("preact_resnet164", num_classes=10))
    assert target > 5 * proxy


def test_unknown_name_error_lists_registered_names() -> None:
    with pytest.raises(ValueError) as error:
        create_model("resnet9000", num_classes=10)
    message = str(error.value)
    assert "resnet9000" in message
    for name in list_models():
        assert name in message


def test_register_model_adds_factory_and_rejects_duplicates() -> None:
    name = "test_only_linear"
    try:

        @register_model(name)
        def _linear(num_classes: int, in_channels: int = 3) -> torch.nn.Module:
            return torch.nn.Sequential(
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(in_channels, num_classes),
            )

        assert name in list_models()
        model = create_model(name, num_classes=4, in_channels=2)
        assert model(torch.randn(3, 2, 8, 8)).shape == (3, 4)
        with pytest.raises(ValueError, match=name):
            register_model(name)(_linear)
    finally:
        MODELS.pop(name, None)
        MODEL_SPECS.pop(name, None)


def test_a_model_whose_defaults_its_trainer_does_not_take_is_refused() -> None:
    from svp.models.specs import ModelSpec, declare_model
    from svp.trainers import FASTTEXT

    with pytest.raises(ValueError, match=r"fastText does not take its default training setting\(s\) \['batch_size'\]"):
        declare_model("test_only_fasttext", ModelSpec("text", FASTTEXT, {"batch_size": 32}))
    assert "test_only_fasttext" not in MODEL_SPECS


@pytest.mark.parametrize(
    "depth, bottleneck",
    [
        (21, False),
        (22, False),
        (2, False),
        (0, False),
        (-4, False),
        (30, True),
        (2, True),
    ],
)
def test_invalid_preact_depth_raises(depth: int, bottleneck: bool) -> None:
    with pytest.raises(ValueError, match=str(depth)):
        preact_resnet(depth, num_classes=10, bottleneck=bottleneck)


@pytest.mark.parametrize(
    "depth, bottleneck", [(8, False), (14, False), (11, True), (20, True)]
)
def test_generic_preact_depths_build(depth: int, bottleneck: bool) -> None:
    model = preact_resnet(depth, num_classes=5, in_channels=3, bottleneck=bottleneck)
    # Depth counts the stem conv, the residual-branch convs and the fc, but
    # not the 1x1 projection shortcuts.
    branch_convs = sum(
        1
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Conv2d)
        and name.rsplit(".", 1)[-1].startswith("conv")
    )
    assert 1 + branch_convs + 1 == depth
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_invalid_sizes_rejected() -> None:
    with pytest.raises(ValueError):
        create_model("small_cnn", num_classes=0)
    with pytest.raises(ValueError):
        create_model("small_cnn", num_classes=10, in_channels=0)


def test_backward_reaches_every_parameter() -> None:
    model = create_model("preact_resnet20", num_classes=10).train()
    logits = model(torch.randn(4, 3, 32, 32))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("name", ["preact_resnet20", "resnet18", "small_cnn"])
def test_same_seed_gives_identical_initial_weights(name: str) -> None:
    torch.manual_seed(123)
    first = create_model(name, num_classes=10).state_dict()
    torch.manual_seed(123)
    second = create_model(name, num_classes=10).state_dict()
    torch.manual_seed(456)
    other = create_model(name, num_classes=10).state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_initialisation_is_kaiming_normal_and_identity_batchnorm() -> None:
    model = create_model("preact_resnet56", num_classes=10)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.all(module.weight == 1)
            assert torch.all(module.bias == 0)
    # Kaiming normal, fan_out: std = sqrt(2 / (out_channels * k * k)).
    conv = model.stages[2][3].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    expected_std = (2.0 / fan_out) ** 0.5
    assert abs(conv.weight.std().item() - expected_std) / expected_std < 0.1
