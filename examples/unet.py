"""A small UNet (Ronneberger et al. 2015) for 2-D or 3-D inputs: two 3x3 conv + BatchNorm + ReLU
per level, max-pool down, transposed conv up, skip connections by concatenation."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, ndim: int) -> nn.Sequential:
    conv = nn.Conv2d if ndim == 2 else nn.Conv3d
    norm = nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d
    return nn.Sequential(conv(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True),
                         conv(cout, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """`forward(x)`: x (B, in_channels, *spatial) float, each spatial size divisible by
    2**depth; returns logits (B, num_classes, *spatial)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, *, base: int = 16,
                 depth: int = 3, ndim: int = 2) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        widths = [base * 2 ** i for i in range(depth + 1)]
        up = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
        self.pool = nn.MaxPool2d(2) if ndim == 2 else nn.MaxPool3d(2)
        self.down = nn.ModuleList(
            [_block(c_in, c_out, ndim) for c_in, c_out in zip([in_channels] + widths, widths)])
        self.up = nn.ModuleList([up(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)])
        self.merge = nn.ModuleList([_block(2 * widths[i], widths[i], ndim) for i in range(depth)])
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        self.head = conv(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.merge[i](torch.cat([skips.pop(), self.up[i](x)], dim=1))
        return self.head(x)
