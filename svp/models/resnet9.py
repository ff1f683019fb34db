"""ResNet-9: the fast CIFAR-10 target of D. Page's "How to train your ResNet" (myrtle.ai, 2018).

It was the DAWNBench winner for single-GPU CIFAR-10 training: 94% test accuracy in 24
epochs (79 s on one V100), with batch 512, SGD with Nesterov momentum 0.9, weight
decay 5e-4 and a learning rate rising linearly from 0 to 0.4 over 5 epochs, then
falling linearly to 0 (``config/cifar10-gpu-fast.yaml`` approximates that ramp with
one constant rate per epoch, as svp's schedules are). Later entries (airbench) are
faster still, but through tricks outside a plain SGD loop (whitening, lookahead, test-
time augmentation); this network needs none of them, so svp can train it as it is.

Why it is fast: nine layers only, each wide (64 to 512 channels) and at low resolution
after early pooling, so a GPU runs a few large convolutions instead of many small ones.
It is a target, not a proxy: about 6.6M parameters and 0.38 G multiply-adds per 32x32
image, against 0.04 G for ``preact_resnet20``.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    # No conv bias: the BatchNorm's shift replaces it.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """x + two conv-BN-ReLU layers of x (the sum is not activated again)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """prep 64, then 128 (pool, residual), 256 (pool), 512 (pool, residual); max pool, linear.

    Layer widths are ``width`` times 1, 2, 4 and 8. Weights keep PyTorch's default
    initialisation, with which the recipe above was tuned.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, logit_scale: float = 0.125) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, width),
            conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2),
            Residual(2 * width),
            conv_bn_relu(2 * width, 4 * width),
            nn.MaxPool2d(2),
            conv_bn_relu(4 * width, 8 * width),
            nn.MaxPool2d(2),
            Residual(8 * width),
        )
        # Global max pooling (Page's 4x4 max pool on 32x32 inputs) frees the input size.
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(8 * width, num_classes, bias=False)
        # Scaling the logits down keeps the softmax soft early on, which the 0.4 peak
        # learning rate relies on (Page found 0.125 best).
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1)) * self.logit_scale
