"""Small building blocks shared by the units."""
from __future__ import annotations

import torch
from torch import nn

LRELU_SLOPE = 0.1  # every activation of LiteFlowNet is a leaky ReLU with slope 0.1 (spec §0)


def lrelu() -> nn.Module:
    # in place: every activation follows a conv whose output nothing else reads (saves a pass over memory)
    return nn.LeakyReLU(LRELU_SLOPE, inplace=True)


def conv_stack(channels: list[int], *, last_kernel: int | None = None, last_act: bool = True) -> nn.Sequential:
    """3x3 'same' convs through ``channels``, each followed by a leaky ReLU; optionally a final k x k conv to 2
    channels without activation. Sequential indices therefore skip activations (.0, .2, .4, ...), as in the
    public checkpoint layout."""
    layers: list[nn.Module] = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(cin, cout, 3, 1, 1), lrelu()]
    if last_kernel is not None:
        layers.append(nn.Conv2d(channels[-1], 2, last_kernel, 1, last_kernel // 2))
    elif not last_act:
        layers.pop()
    return nn.Sequential(*layers)


def bilinear_upsampler(channels: int) -> nn.ConvTranspose2d:
    """Grouped 4x4 stride-2 deconvolution initialised to the fixed bilinear kernel of Caffe's filler (spec §4.3).

    Stored as an ordinary parameter so that checkpoints load into it; the trainer freezes it."""
    up = nn.ConvTranspose2d(channels, channels, 4, 2, 1, groups=channels, bias=False)
    k = torch.tensor([0.25, 0.75, 0.75, 0.25])
    with torch.no_grad():
        up.weight.copy_(torch.outer(k, k).expand(channels, 1, 4, 4))
    return up
