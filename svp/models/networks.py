"""Classifiers used as proxies and targets in Selection via Proxy: images and texts.

Models are kept in a name -> factory registry in the style of timm, so that
workflow configuration can name an architecture as a plain string:

    model = create_model("preact_resnet20", num_classes=10)

The families:

* Pre-activation ResNets for CIFAR (He et al. 2016, "Identity Mappings in Deep
  Residual Networks"), laid out as in the SVP authors' code: the paper's
  CIFAR10 proxy (ResNet20) and target (ResNet164) come from here.
* ResNet 18/34/50/101/152 (He et al. 2015) with the usual CIFAR stem, used for
  the SVHN and ImageNet-style proxy/target pairs.
* ``small_cnn``: a few-layer CNN, the default cheap proxy for tiny inputs.
* ``tiny_cnn`` and ``fast_cnn16/20/24/32``: plain CNNs whose first layer halves the
  resolution, sized so that CIFAR-10 experiments fit a 2-core CPU (a proxy and a target
  about 5x costlier per example).
* VDCNN 9/17/29/49 (Conneau et al. 2017, ``svp.models.vdcnn``): character-level text
  models, the paper's Amazon Review target (VDCNN29).

The registry's other model, ``fasttext`` (Joulin et al. 2017, the paper's Amazon proxy),
is not a torch module and has no factory here: its spec names the fastText trainer
(``svp.trainers.fasttext_trainer``).

Every image model takes float images of shape (B, in_channels, H, W), H, W >= 8, and
returns logits of shape (B, num_classes). Global average pooling before the
classifier is what makes the input size free. Text models take character indices
(B, length); their ``in_channels`` is the alphabet size (one channel per symbol).

Each registered name also has a :class:`ModelSpec`: the data it reads (``image`` or
``text``), what trains it (svp.training's torch loop for every model here), and the training
settings its authors used, which fill in a run's ``training`` mapping before the
config schema's generic defaults do. The specs live in ``svp.models.specs``, which needs
no torch: validating a config or planning a workflow never imports this module.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# The spec table and its look-ups, re-exported beside the factories that use them.
from svp.models.specs import (  # noqa: F401
    MODEL_SPECS,
    VDCNN_DEPTHS,
    ModelSpec,
    declare_model,
    is_torchvision_model,
    list_models,
    model_spec,
    training_defaults,
)
from svp.errors import ConfigError
from svp.schema import VOCAB_SIZE
from svp.trainers.base import TORCH
from svp.models.vdcnn import VDCNN

ModelFactory = Callable[..., nn.Module]

MODELS: dict[str, ModelFactory] = {}


def register_model(
    name: str, *, modality: str = "image", training_defaults: dict | None = None
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator adding ``factory(num_classes, in_channels)`` to ``MODELS``.

    The names svp ships are declared with their specs in ``svp.models.specs`` (no torch
    needed to validate a config); a new name is declared here with the given spec,
    trained by the torch trainer.
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        # Silently replacing an entry would make a config name mean two things.
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        if name not in MODEL_SPECS:
            declare_model(name, ModelSpec(modality, TORCH, dict(training_defaults or {})))
        MODELS[name] = factory
        return factory

    return decorator


def create_model(name: str, num_classes: int, in_channels: int = 3, weights: str | None = None) -> nn.Module:
    """Build the registered model ``name``, or torchvision's ``torchvision/<name>``, with fresh
    (seed-dependent) weights, or with ``weights``: torchvision weights by name (torchvision
    models), or the path of a local checkpoint (any model; svp.models.pretrained)."""
    from svp.models import pretrained

    local = weights if weights is not None and pretrained.is_path(weights) else None
    if is_torchvision_model(name) and name not in MODELS:
        from svp.models import torchvision_models

        model = torchvision_models.create(name, num_classes, in_channels, None if local else weights)
    else:
        model = _create_registered(name, num_classes, in_channels)
        if weights is not None and local is None:
            raise ConfigError(
                f"weights {weights!r}: named weights are torchvision's, for torchvision/<name> models; for {name!r} "
                "give the path of a local checkpoint"
            )
    if local is not None:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        pretrained.load_weights(model, local, name, linears[-1] if linears else None)
    return model


def _create_registered(name: str, num_classes: int, in_channels: int) -> nn.Module:
    if name in MODEL_SPECS and model_spec(name).trainer is not TORCH:
        raise ValueError(f"model {name!r} is not a torch module; {model_spec(name).trainer.title} trains it")
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}"
        )
    if num_classes < 1 or in_channels < 1:
        raise ValueError(
            f"num_classes and in_channels must be positive, "
            f"got num_classes={num_classes}, in_channels={in_channels}"
        )
    return MODELS[name](num_classes=num_classes, in_channels=in_channels)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: every conv here is followed (directly or after the residual
    # sum) by a BatchNorm whose shift makes a conv bias redundant.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs and identity BatchNorms, as in the ResNet papers.

    ``fan_out`` matches torchvision and the SVP authors' code, so training
    recipes taken from them behave the same here.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------
# Pre-activation ResNets for CIFAR
# ---------------------------------------------------------------------------


class PreActBasicBlock(nn.Module):
    """BN-ReLU-conv3x3 twice, added to the shortcut with nothing after the sum."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.projection: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = conv1x1(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preactivated = self.relu(self.bn1(x))
        # When the shape changes, the projection reads the pre-activated input
        # (He et al. 2016, and the SVP authors' code); otherwise the identity
        # path carries the raw input, untouched by any BN or ReLU.
        shortcut = x if self.projection is None else self.projection(preactivated)
        out = self.conv1(preactivated)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv 1x1 / 3x3 / 1x1, widening the output by ``expansion``."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        # Stride on the 3x3 conv, as in the authors' code: a strided 1x1 conv
        # would skip three quarters of the input positions.
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.projection: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = conv1x1(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preactivated = self.relu(self.bn1(x))
        shortcut = x if self.projection is None else self.projection(preactivated)
        out = self.conv1(preactivated)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Three stages of 16/32/64 planes, halving resolution at stages 2 and 3."""

    stage_planes = (16, 32, 64)

    def __init__(
        self,
        block: type[PreActBasicBlock] | type[PreActBottleneck],
        blocks_per_stage: int,
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem_channels = self.stage_planes[0]
        # Plain conv stem: the first block's BN-ReLU activates it.
        self.stem = conv3x3(in_channels, stem_channels)
        stages = []
        channels = stem_channels
        for stage_index, planes in enumerate(self.stage_planes):
            first_stride = 1 if stage_index == 0 else 2
            blocks = []
            for block_index in range(blocks_per_stage):
                stride = first_stride if block_index == 0 else 1
                blocks.append(block(channels, planes, stride))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Blocks end on a bare residual sum, so the trunk output still needs
        # normalising and activating before pooling.
        self.final_bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        out = self.relu(self.final_bn(out))
        return self.fc(torch.flatten(self.pool(out), 1))


def preact_resnet(
    depth: int, num_classes: int, in_channels: int = 3, bottleneck: bool = False
) -> PreActResNet:
    """Pre-activation ResNet of the given depth (counting conv and fc layers).

    Depth is 6n+2 with basic blocks (2 convs each) and 9n+2 with bottlenecks
    (3 convs each), n blocks per stage; the 2 are the stem conv and the fc.
    """
    convs_per_block = 3 if bottleneck else 2
    layers_per_block_column = 3 * convs_per_block
    if depth < 2 + layers_per_block_column or (depth - 2) % layers_per_block_column:
        form = "9n+2" if bottleneck else "6n+2"
        kind = "bottleneck" if bottleneck else "basic-block"
        raise ValueError(
            f"depth {depth} is invalid for a {kind} pre-activation ResNet: "
            f"it must be {form} with n >= 1"
        )
    block = PreActBottleneck if bottleneck else PreActBasicBlock
    blocks_per_stage = (depth - 2) // layers_per_block_column
    return PreActResNet(block, blocks_per_stage, num_classes, in_channels)


@register_model("preact_resnet8")
def preact_resnet8(num_classes: int, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(8, num_classes, in_channels)


@register_model("preact_resnet20")
def preact_resnet20(num_classes: int, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(20, num_classes, in_channels)


@register_model("preact_resnet56")
def preact_resnet56(num_classes: int, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(56, num_classes, in_channels)


@register_model("preact_resnet110")
def preact_resnet110(num_classes: int, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(110, num_classes, in_channels)


@register_model("preact_resnet164")
def preact_resnet164(num_classes: int, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(164, num_classes, in_channels, bottleneck=True)


# ---------------------------------------------------------------------------
# ResNet 18-152 with a CIFAR stem
# ---------------------------------------------------------------------------


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """1x1 conv + BN when the residual changes shape, identity otherwise."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
    )


class BasicBlock(nn.Module):
    """Post-activation conv3x3-BN-ReLU-conv3x3-BN, ReLU after the sum."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """Post-activation 1x1 / 3x3 / 1x1 block, widening the output 4x."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        # Stride on the 3x3 conv ("ResNet v1.5"), as torchvision does.
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Four stages of 64/128/256/512 planes on a CIFAR-sized stem.

    The ImageNet stem (7x7 stride-2 conv + max-pool) would shrink a 32x32 image
    to 8x8 before the first block; a 3x3 stride-1 conv keeps full resolution.
    """

    stage_planes = (64, 128, 256, 512)

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: tuple[int, int, int, int],
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        stem_channels = self.stage_planes[0]
        self.stem = nn.Sequential(
            conv3x3(in_channels, stem_channels),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        stages = []
        channels = stem_channels
        for stage_index, (planes, num_blocks) in enumerate(
            zip(self.stage_planes, blocks_per_stage)
        ):
            first_stride = 1 if stage_index == 0 else 2
            blocks = []
            for block_index in range(num_blocks):
                stride = first_stride if block_index == 0 else 1
                blocks.append(block(channels, planes, stride))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(out), 1))


@register_model("resnet18")
def resnet18(num_classes: int, in_channels: int = 3) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels)


@register_model("resnet34")
def resnet34(num_classes: int, in_channels: int = 3) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels)


@register_model("resnet50")
def resnet50(num_classes: int, in_channels: int = 3) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels)


@register_model("resnet101")
def resnet101(num_classes: int, in_channels: int = 3) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, in_channels)


@register_model("resnet152")
def resnet152(num_classes: int, in_channels: int = 3) -> ResNet:
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, in_channels)


# ---------------------------------------------------------------------------
# Small CNN: the cheap default proxy
# ---------------------------------------------------------------------------


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        conv3x3(in_channels, out_channels, stride),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU layers (32/64/64 channels), pooled, then linear.

    The later layers are strided: halving the resolution before the wider
    layers keeps a 28x28 forward pass around 6M multiply-adds, so the proxy
    trains in seconds on a CPU, while still reaching 2x2 on an 8x8 input.
    """

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, 32),
            conv_bn_relu(32, 64, stride=2),
            conv_bn_relu(64, 64, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_model("small_cnn")
def small_cnn(num_classes: int, in_channels: int = 3) -> SmallCNN:
    return SmallCNN(num_classes, in_channels)


# ---------------------------------------------------------------------------
# Plain CNNs for CPU-sized image experiments
# ---------------------------------------------------------------------------


class StridedCNN(nn.Module):
    """Conv-BN-ReLU layers whose first one halves the resolution; global max pooling, then linear.

    ``layers`` lists (out_channels, stride) pairs, or "pool" for a 2x2 max pool. Halving
    the resolution in the first layer is what makes these cheap: the widest feature maps
    of a CIFAR net cost most of its time on a CPU, while a learned stride-2 stem keeps
    most of the accuracy (the same idea as the patchified stems of fast CIFAR trainers).
    """

    def __init__(self, layers: list, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        modules, channels = [], in_channels
        for layer in layers:
            if layer == "pool":
                modules.append(nn.MaxPool2d(2))
            else:
                width, stride = layer
                modules.append(conv_bn_relu(channels, width, stride))
                channels = width
        self.features = nn.Sequential(*modules)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_model("tiny_cnn")
def tiny_cnn(num_classes: int, in_channels: int = 3) -> StridedCNN:
    """24k parameters, three stride-2 layers (16/32/64): a proxy that sees a CIFAR epoch in seconds."""
    return StridedCNN([(16, 2), (32, 2), (64, 2)], num_classes, in_channels)


def fast_cnn(width: int, num_classes: int, in_channels: int = 3) -> StridedCNN:
    """A stride-2 stem of ``width`` channels, then 2x, 4x and 8x ``width`` with max pools between."""
    return StridedCNN([(width, 2), (2 * width, 1), "pool", (4 * width, 1), "pool", (8 * width, 1)], num_classes, in_channels)


for _width in (16, 20, 24, 32):
    register_model(f"fast_cnn{_width}")(lambda num_classes, in_channels=3, width=_width: fast_cnn(width, num_classes, in_channels))


# ---------------------------------------------------------------------------
# Text: VDCNN (character level)
# ---------------------------------------------------------------------------


def _register_vdcnn(depth: int) -> None:
    def factory(num_classes: int, in_channels: int = VOCAB_SIZE) -> VDCNN:
        return VDCNN(depth, num_classes, vocab_size=in_channels)

    factory.__name__ = factory.__qualname__ = f"vdcnn{depth}"
    factory.__doc__ = f"VDCNN of depth {depth} (max-pooling, no shortcuts) over characters."
    register_model(f"vdcnn{depth}")(factory)


for _depth in VDCNN_DEPTHS:
    _register_vdcnn(_depth)


# ---------------------------------------------------------------------------
# ResNet-9 (svp.models.resnet9): a target that reaches about 94% on CIFAR-10 in seconds on a GPU
# ---------------------------------------------------------------------------

from svp.models.resnet9 import ResNet9  # noqa: E402  (its own module, like VDCNN)


@register_model("resnet9")
def resnet9(num_classes: int, in_channels: int = 3) -> ResNet9:
    return ResNet9(num_classes, in_channels)
