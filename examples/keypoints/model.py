"""A small fully-convolutional heatmap network, CenterNet-like at output stride 1.

An encoder of 3x3 conv blocks (BatchNorm, ReLU) going down to 1/4 resolution, an
upsampling path with skip connections back to full resolution (a tiny U-Net, as
CenterNet's DLA-up and hourglass backbones are at larger scale), and CenterNet's head: a
3x3 conv, ReLU, and a 1x1 conv to one output channel per class.  Receptive field at the
output: 31 pixels, an object (at most 14 pixels across) with its surroundings.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F


def conv_block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class HeatmapNet(nn.Module):
    """(N, 1, H, W) image -> (N, classes, H, W) raw outputs (logits, or for the MSE
    convention the heatmap itself); H and W multiples of 4."""

    def __init__(self, classes, width=16):
        super().__init__()
        w1, w2, w3 = width, 2 * width, 3 * width
        self.stem = nn.Sequential(conv_block(1, w1), conv_block(w1, w1))
        self.down1 = nn.Sequential(conv_block(w1, w2, 2), conv_block(w2, w2))
        self.down2 = nn.Sequential(conv_block(w2, w3, 2), conv_block(w3, w3))
        self.up1 = conv_block(w3 + w2, w2)
        self.up0 = conv_block(w2 + w1, w1)
        self.head = nn.Sequential(nn.Conv2d(w1, w1, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(w1, classes, 1))

    def init_output_bias(self, prior):
        """CenterNet's initialization of the last bias: logit(prior) for a sigmoid output
        (prior 0.1 gives -2.19), so that training starts from few false alarms; prior None
        sets 0 (an output read as the heatmap itself, the MSE convention)."""
        bias = self.head[-1].bias
        with torch.no_grad():
            bias.fill_(0.0 if prior is None else math.log(prior / (1 - prior)))

    def forward(self, x):
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        u1 = self.up1(torch.cat([F.interpolate(s2, scale_factor=2.0, mode="nearest"), s1], 1))
        u0 = self.up0(torch.cat([F.interpolate(u1, scale_factor=2.0, mode="nearest"), s0], 1))
        return self.head(u0)
