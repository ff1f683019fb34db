"""Very Deep Convolutional Networks for text classification (Conneau et al., EACL 2017).

VDCNN reads a text as a sequence of characters (indices into the alphabet of
``svp.data.text``, 0 = padding) and classifies it with a deep stack of temporal
convolutions, as the SVP paper's Amazon Review target (VDCNN29):

* a 16-dimensional character embedding and one convolution of 64 filters;
* four stages of convolutional blocks with 64, 128, 256 and 512 filters, each block
  two (conv 3 - BatchNorm - ReLU) layers, optionally with a shortcut around it; the
  stages are separated by max-pooling (kernel 3, stride 2), which halves the sequence,
  the paper's best down-sampling;
* k-max pooling (k = 8) of the last stage, which makes the input length free (down to
  64 characters), then three fully connected layers 2048 - 2048 - classes.

The depth counts the convolutions: 9, 17, 29 and 49 use (1,1,1,1), (2,2,2,2),
(5,5,2,2) and (8,8,5,3) blocks per stage, plus the first convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Blocks per stage for each published depth (table 2 of the paper).
BLOCKS_PER_STAGE: dict[int, tuple[int, int, int, int]] = {
    9: (1, 1, 1, 1),
    17: (2, 2, 2, 2),
    29: (5, 5, 2, 2),
    49: (8, 8, 5, 3),
}
STAGE_FILTERS = (64, 128, 256, 512)
EMBEDDING_DIM = 16
KMAX = 8
HIDDEN = 2048
# Three halvings and k-max pooling of 8: shorter inputs would leave fewer than k positions.
MIN_LENGTH = KMAX * 2 ** (len(STAGE_FILTERS) - 1)


def kmax_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k largest values of each channel over time, kept in their temporal order."""
    indices = x.topk(k, dim=2).indices.sort(dim=2).values
    return x.gather(2, indices)


class ConvBlock(nn.Module):
    """Two temporal conv 3 - BatchNorm - ReLU layers, optionally with a shortcut.

    With a shortcut the second ReLU comes after the sum (He et al. 2016), and a change
    of width is bridged by a 1x1 convolution, as in the paper's "shortcut" variant.
    """

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool) -> None:
        super().__init__()
        # No conv biases: each conv is followed by a BatchNorm whose shift replaces them.
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.shortcut: nn.Module | None = None
        if shortcut:
            self.shortcut = (
                nn.Identity() if in_channels == out_channels else nn.Conv1d(in_channels, out_channels, 1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class VDCNN(nn.Module):
    """Character-level VDCNN: (B, L) character indices -> (B, num_classes) logits."""

    def __init__(
        self, depth: int, num_classes: int, vocab_size: int, shortcut: bool = False
    ) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(f"VDCNN depth must be one of {sorted(BLOCKS_PER_STAGE)}, got {depth}")
        self.depth = depth
        # Index 0 is padding: its embedding stays zero, like Zhang et al.'s all-zero vectors.
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM, padding_idx=0)
        self.first_conv = nn.Conv1d(EMBEDDING_DIM, STAGE_FILTERS[0], 3, padding=1)
        stages = []
        channels = STAGE_FILTERS[0]
        for index, (filters, blocks) in enumerate(zip(STAGE_FILTERS, BLOCKS_PER_STAGE[depth])):
            layers: list[nn.Module] = [] if index == 0 else [nn.MaxPool1d(3, stride=2, padding=1)]
            for _ in range(blocks):
                layers.append(ConvBlock(channels, filters, shortcut))
                channels = filters
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Sequential(
            nn.Linear(channels * KMAX, HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm1d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, characters: torch.Tensor) -> torch.Tensor:
        if characters.dim() != 2 or characters.shape[1] < MIN_LENGTH:
            raise ValueError(
                f"VDCNN expects character indices of shape (batch, length >= {MIN_LENGTH}), got {tuple(characters.shape)}"
            )
        x = self.embedding(characters.long()).transpose(1, 2)  # (B, 16, L)
        x = self.stages(self.first_conv(x))
        return self.classifier(torch.flatten(kmax_pool(x, KMAX), 1))
