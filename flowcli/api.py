"""The estimator: load weights -> preprocess -> network -> postprocess -> recipe. Arrays in, arrays out.

Pre- and post-processing are the original's (spec §1): RGB -> BGR, x 1/255, per-image means (inside the network),
bilinear resize to the next multiples of 32, and on the way out bilinear upsampling of the half-resolution field to
the input size with u scaled by W/W_a and v by H/H_a. A public checkpoint therefore gives the original's output at
any image size.

Around the network runs the weights' inference recipe (:mod:`flowcli.recipe`): the network at one or more input
scales (each candidate flow comes back in the input's pixels), candidate fusion and variational refinement. A public
checkpoint's recipe is the plain network, so its output is the original's; ``recipe="plain"`` asks for that with any
weights. ``scale`` multiplies every scale of the recipe (default 1).
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import warnings
from dataclasses import replace
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .devices import check_precision, resolve_device
from .runtime import native_bf16
from .io.image import as_rgb8
from .model import LiteFlowNet
from .recipe import Candidate, Recipe, resolve_recipe
from .weights import Checkpoint, liteflownet, load_checkpoint

MIN_SIZE = 32
SCALE_RANGE = (0.25, 4.0)

__all__ = ["Estimator", "MIN_SIZE", "SCALE_RANGE", "adapted_size", "check_scale", "estimate_flow",
           "estimate_flow_batch", "get_estimator", "resolve_device"]


def adapted_size(h: int, w: int, scale: float = 1.0) -> tuple[int, int]:
    """The network's input size for an HxW image: each side times ``scale``, rounded up to a multiple of 32 (at least
    32)."""
    return tuple(max(32, int(math.ceil(round(side * scale) / 32.0) * 32)) for side in (h, w))  # type: ignore[return-value]


def check_scale(scale: float) -> float:
    """``scale`` as a float inside :data:`SCALE_RANGE`, else a ValueError that says what it got."""
    lo, hi = SCALE_RANGE
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number in [{lo:g}, {hi:g}], got {scale!r}") from None
    if not lo <= value <= hi:  # also refuses nan
        raise ValueError(f"scale must be in [{lo:g}, {hi:g}], got {scale!r}")
    return value


def preprocess(rgb: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """NxHxWx3 uint8 RGB tensor -> Nx3xH_axW_a float BGR in [0, 1] (mean subtraction happens in the network)."""
    return resize_to_multiple(rgb.permute(0, 3, 1, 2).flip(1).float().div_(255.0), scale)


def resize_to_multiple(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Bilinear resize of an Nx3xHxW batch to :func:`adapted_size` (a no-op when already there); antialiased when
    ``scale`` < 1, so that a reduced image is not aliased (at 1 the resize is the original's, which never shrinks)."""
    ha, wa = adapted_size(*x.shape[2:], scale)
    if (ha, wa) == tuple(x.shape[2:]):
        return x
    return F.interpolate(x, size=(ha, wa), mode="bilinear", align_corners=False, antialias=scale < 1)


def postprocess(flow: torch.Tensor, h: int, w: int, net_size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Nx2x(H_a/2)x(W_a/2) network output -> Nx2xHxW flow in pixels of the HxW input (spec §1.2).

    ``net_size`` is the network's input size (default: the adapted size of HxW); values are rescaled from its
    pixels to the input's."""
    ha, wa = net_size or adapted_size(h, w)
    flow = F.interpolate(flow.float(), size=(h, w), mode="bilinear", align_corners=False)
    scale = torch.tensor([w / wa, h / ha], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    return flow * scale


def _sample(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of an NxCxHxW tensor at x + flow (Nx2xHxW, pixels); outside the frame the nearest border value."""
    n, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return F.grid_sample(x, torch.stack((gx, gy), dim=3), mode="bilinear", padding_mode="border", align_corners=True)


def warp_back(rgb2: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Frame 2 (NxHxWx3 uint8) pulled into frame 1's grid along ``flow`` (Nx2xHxW): ``out[y, x] = rgb2[y + v, x + u]``,
    bilinear, the border repeated outside; NxHxWx3 uint8 (what the network's preprocessing takes)."""
    x = rgb2.permute(0, 3, 1, 2).float()
    out = _sample(x, flow.float())
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def compose_flows(base: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The flow of frame 1 -> frame 2 from ``base`` (frame 1 -> frame 2) and ``residual`` (frame 1 -> frame 2 warped
    back by ``base``): ``residual(x) + base(x + residual(x))``, both Nx2xHxW."""
    return residual + _sample(base.float(), residual.float())


def _check_pair(img1: np.ndarray, img2: np.ndarray, names: tuple[str, str] = ("image 1", "image 2")):
    a = as_rgb8(img1, name=names[0])
    b = as_rgb8(img2, name=names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    if a.shape[0] < MIN_SIZE or a.shape[1] < MIN_SIZE:
        raise ValueError(f"{names[0]}: images must be at least {MIN_SIZE}x{MIN_SIZE}, got {a.shape[1]}x{a.shape[0]}")
    return a, b


class Estimator:
    """A loaded network and its inference recipe on a device. Reuse one for many pairs; :func:`estimate_flow` keeps
    one per setting.

    ``weights``: a path (public LiteFlowNet or flowcli checkpoint), a bundled name, a loaded
    :class:`~flowcli.weights.Checkpoint`, or None for the bundled weights (``model=`` instead runs an in-memory
    network with the plain recipe). ``recipe``: ``None``/``"default"`` (the weights' own: the plain network for a
    public checkpoint), ``"plain"``, a dict or a :class:`~flowcli.recipe.Recipe`; ``recipe_overrides`` (``scales=``,
    ``refine=``) change it (:meth:`~flowcli.recipe.Recipe.with_overrides`); a candidate ``net@S:NAME`` runs the
    network with the checkpoint's weight set ``NAME`` (a second network, built here once). ``scale`` (default 1)
    multiplies every input scale of the recipe, in [0.25, 4]; flows always come back in the input's pixels.

    ``precision`` is ``"fp32"`` (the original network's numbers), or ``"fp16"``/``"bf16"`` autocast on CUDA; on CPU
    only ``bf16``, which is faster than fp32 on CPUs with AVX512-BF16 or AMX and far slower on others, at a small cost
    in accuracy. None (default) lets the recipe decide: bf16 where it allows it (``Recipe.bf16``, set by the bundled
    weights, whose measured accuracy is the same) and the device computes it natively, fp32 elsewhere (public
    checkpoints: always fp32). ``channels_last`` (default on) stores activations NHWC, the layout oneDNN and cuDNN
    convolutions prefer; ``compile=True`` wraps the network in ``torch.compile`` (worth it for long runs at one size);
    ``cuda_graphs=True`` (CUDA only) records the forward pass once per input shape and precision and replays it.

    On CUDA an out-of-memory error is retried in fp16, then at half the resolution, with a warning each time
    (recorded in ``fallbacks``).
    """

    def __init__(self, weights: "str | os.PathLike | Checkpoint | None" = None, *, device: str | torch.device = "auto",
                 precision: Optional[str] = None, model: Optional[LiteFlowNet] = None, channels_last: bool = True,
                 compile: bool = False, cuda_graphs: bool = False, scale: float = 1.0,
                 recipe: "str | dict | Recipe | None" = None, recipe_overrides: Optional[dict] = None) -> None:
        self.scale = check_scale(scale)
        self.device = resolve_device(device)
        if precision is not None:
            check_precision(precision, self.device)
        if model is None:
            self.checkpoint = load_checkpoint(weights)
            model = liteflownet(weights=self.checkpoint)
        else:
            self.checkpoint = Checkpoint(state_dict={}, meta={"name": "in-memory model"})
        self.recipe = resolve_recipe(recipe, self.checkpoint.recipe, self.checkpoint.presets).with_overrides(
            **(recipe_overrides or {})).scaled(self.scale).check_available()
        # None: the recipe decides (bf16 where the weights' recipe allows it and the device computes it natively)
        self.precision = precision or ("bf16" if self.recipe.bf16 and native_bf16(self.device) else "fp32")
        self.channels_last = channels_last
        self.model = self._place(model)
        # the network with each extra weight set the recipe names (``net@S:NAME``), built once
        self.models = {"": self.model}
        for name in self.recipe.weight_sets:
            try:
                state = self.checkpoint.weight_set(name)
            except KeyError as exc:
                spec = next(c.spec for c in self.recipe.parsed if c.weights == name)
                raise ValueError(f"recipe candidate {spec}: {exc.args[0]}") from None
            self.models[name] = self._place(liteflownet(weights=replace(self.checkpoint, state_dict=state)))
        self._forwards = {name: torch.compile(m) if compile else m for name, m in self.models.items()}
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs needs a CUDA device, got {self.device}")
        self._graphs: Optional[dict] = {} if cuda_graphs else None
        self.fallbacks: list[str] = []
        self.retry_oom = self.device.type == "cuda"
        # weights from a stage-wise run that has not reached level 2 say where to stop
        meta = self.checkpoint.meta
        self.finest_level = int(meta.get("finest_level") or 2)
        self.skip_finest_r = bool(meta.get("skip_finest_r", False))

    def _place(self, model: LiteFlowNet) -> LiteFlowNet:
        model = model.to(self.device).eval()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def _autocast(self, precision: str, *, cache: bool = True):
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        # a graph being recorded must not keep autocast's cast-weight cache (torch.cuda.graph's documented rule)
        return torch.autocast(device_type=self.device.type, dtype=dtype, cache_enabled=cache)

    @torch.inference_mode()
    def flow_tensor(self, rgb1: torch.Tensor, rgb2: torch.Tensor, scale: Optional[float] = None,
                    weights: str = "") -> torch.Tensor:
        """The network alone at one input ``scale`` (default: the recipe's first), with the main weights or the
        recipe's weight set ``weights``: NxHxWx3 uint8 RGB tensors (any device) -> Nx2xHxW float32 flow in the input's
        pixels, on the estimator's device."""
        scale = (self.recipe.scales or (1.0,))[0] if scale is None else scale
        run = functools.partial(self._run, weights=weights)
        h, w = rgb1.shape[1:3]
        if self.device.type == "cuda" and rgb1.device.type == "cpu":
            # page-locked host memory lets the copy run asynchronously, overlapping the previous batch's compute
            rgb1, rgb2 = rgb1.pin_memory(), rgb2.pin_memory()
        x1 = preprocess(rgb1.to(self.device, non_blocking=True), scale)
        x2 = preprocess(rgb2.to(self.device, non_blocking=True), scale)
        net_size = tuple(x1.shape[2:])
        try:
            return postprocess(run(x1, x2), h, w, net_size=net_size)
        except torch.cuda.OutOfMemoryError:
            if not self.retry_oom:
                raise
            torch.cuda.empty_cache()
        if self.precision == "fp32":
            self._fallback(f"CUDA out of memory at {w}x{h}; retrying in fp16")
            try:
                return postprocess(run(x1, x2, precision="fp16"), h, w, net_size=net_size)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
        self._fallback(f"CUDA out of memory at {w}x{h}; estimating at half resolution and upsampling the flow")
        small = [resize_to_multiple(F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False))
                 for x in (x1, x2)]
        return postprocess(run(*small, precision="fp16"), h, w, net_size=tuple(small[0].shape[2:]))

    def _run(self, x1: torch.Tensor, x2: torch.Tensor, precision: Optional[str] = None, weights: str = "") -> torch.Tensor:
        if self.channels_last:
            x1 = x1.contiguous(memory_format=torch.channels_last)
            x2 = x2.contiguous(memory_format=torch.channels_last)
        precision = precision or self.precision
        if self._graphs is not None:
            return self._replay(x1, x2, precision, weights)
        with self._autocast(precision):
            return self._forwards[weights](x1, x2, finest_level=self.finest_level, skip_finest_r=self.skip_finest_r)

    def _replay(self, x1: torch.Tensor, x2: torch.Tensor, precision: str, weights: str = "") -> torch.Tensor:
        """The forward pass through a CUDA graph recorded for this shape, layout, precision and weight set."""
        key = (tuple(x1.shape), x1.dtype, self.channels_last, precision, weights)
        entry = self._graphs.get(key)
        if entry is None:
            static1, static2 = x1.clone(), x2.clone()

            def forward() -> torch.Tensor:
                with self._autocast(precision, cache=False):
                    return self._forwards[weights](static1, static2, finest_level=self.finest_level,
                                         skip_finest_r=self.skip_finest_r)

            # warm up on a side stream (cuDNN picks its algorithms, the allocator settles), then record
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                forward()
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=side):  # the warm-up's stream: its library handles exist already
                out = forward()
            entry = self._graphs[key] = (graph, static1, static2, out)
        graph, static1, static2, out = entry
        static1.copy_(x1)
        static2.copy_(x2)
        graph.replay()
        return out.clone()  # the static output is overwritten by the next replay

    def _fallback(self, message: str) -> None:
        self.fallbacks.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def network_flows(self, t1: torch.Tensor, t2: torch.Tensor,
                      run: Optional[Callable[[str, Callable[[], torch.Tensor]], torch.Tensor]] = None
                      ) -> list[torch.Tensor]:
        """The recipe's network candidates (``net@S``, ``net@S:NAME``, ``cascade@B/R``) for NxHxWx3 uint8 RGB tensors:
        Nx2xHxW flows in the input's pixels, in recipe order; each network pass is computed once. ``run(name, pass)``,
        where given, runs each pass (``name`` as ``net@0.25`` or the cascade's spec) and returns its result: how
        :func:`flowcli.bench.bench_recipe` times them."""
        run = run or (lambda name, fn: fn())
        passes: dict[tuple[float, str], torch.Tensor] = {}

        def net(scale: float, weights: str = "") -> torch.Tensor:
            if (scale, weights) not in passes:  # a cascade's base pass is often a candidate of its own
                passes[scale, weights] = run(Candidate("net", scale, weights=weights).spec,
                                             lambda: self.flow_tensor(t1, t2, scale, weights))
            return passes[scale, weights]

        flows = []
        for c in self.recipe.network_candidates:
            if c.kind == "net":
                flows.append(net(c.scale, c.weights))
            else:
                base = net(c.base)
                flows.append(run(c.spec, lambda: compose_flows(base, self.flow_tensor(
                    t1, warp_back(t2.to(self.device), base), c.scale))))
        return flows

    def candidates(self, imgs1: Sequence[np.ndarray], imgs2: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """The network's part of the recipe for a batch of same-size HxWx3 uint8 RGB pairs: per pair, one HxWx2 float32
        flow per network candidate of the recipe (:meth:`network_flows`; in the input's pixels), in order."""
        flows = self.network_flows(torch.from_numpy(np.stack(imgs1)), torch.from_numpy(np.stack(imgs2)))
        per_pair = [f.permute(0, 2, 3, 1).float().cpu().numpy() for f in flows]
        return [[np.ascontiguousarray(f[i]) for f in per_pair] for i in range(len(imgs1))]

    def flow_arrays(self, imgs1: Sequence[np.ndarray], imgs2: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Same-size HxWx3 uint8 RGB pairs -> their HxWx2 float32 flows, the whole recipe: the one path between numpy
        and the network that every job uses (batch jobs may call :meth:`candidates` and ``recipe.finish`` apart, to
        run the CPU part in worker threads)."""
        prepared = [self.recipe.prepare(a, b) for a, b in zip(imgs1, imgs2)]
        network = self.candidates(imgs1, [b for b, _ in prepared])
        return [self.recipe.finish(a, b, c, offset) for a, (b, offset), c in zip(imgs1, prepared, network)]

    def estimate(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """One pair of images (HxWx3 uint8 RGB, or gray/RGBA/16-bit/float by :mod:`flowcli.io.image`'s rule) ->
        HxWx2 float32 flow in pixels, channel 0 horizontal."""
        return self.estimate_batch([(img1, img2)])[0]

    def estimate_batch(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, batch_size: int = 8) -> list[np.ndarray]:
        """Many pairs -> list of HxWx2 flows, in order. Pairs of one size go through the network together."""
        checked = [_check_pair(a, b, (f"pair {i} image 1", f"pair {i} image 2")) for i, (a, b) in enumerate(pairs)]
        results: list[Optional[np.ndarray]] = [None] * len(checked)
        by_size: dict[tuple, list[int]] = {}
        for i, (a, _) in enumerate(checked):
            by_size.setdefault(a.shape, []).append(i)
        for idx in by_size.values():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                flows = self.flow_arrays([checked[i][0] for i in chunk], [checked[i][1] for i in chunk])
                for i, flow in zip(chunk, flows):
                    results[i] = flow
        return results  # type: ignore[return-value]


_CACHE: dict[tuple, Estimator] = {}
_LOCK = threading.Lock()


def get_estimator(weights: Optional[str | os.PathLike] = None, *, device: str | torch.device = "auto",
                  precision: Optional[str] = None, **options) -> Estimator:
    """A cached :class:`Estimator` for these settings (weights are loaded once per process)."""
    dev = resolve_device(device)
    key = (str(weights) if weights is not None else None, str(dev), precision,
           tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _LOCK:
        est = _CACHE.get(key)
        if est is None:
            est = _CACHE[key] = Estimator(weights, device=dev, precision=precision, **options)
        return est


def estimate_flow(img1: np.ndarray, img2: np.ndarray, *, weights: Optional[str | os.PathLike] = None,
                  device: str = "auto", precision: Optional[str] = None, scale: float = 1.0,
                  recipe: "str | dict | Recipe | None" = None) -> np.ndarray:
    """Optical flow from ``img1`` to ``img2``.

    Takes two HxWx3 uint8 RGB arrays of one size, at least 32x32 (grayscale, RGBA, 16-bit and float [0, 1] arrays
    are converted by the rule in :mod:`flowcli.io.image`). Returns HxWx2 float32 flow in pixels of the input,
    channel 0 horizontal (x), so that ``img2[y + v, x + u] ~ img1[y, x]``.

    ``weights``: a public LiteFlowNet checkpoint, a flowcli checkpoint, or None for the bundled weights.
    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``. ``precision``: None (the recipe decides: bf16 where
    the weights allow it and the device computes it natively, else fp32), ``"fp32"``, ``"bf16"``, or ``"fp16"`` on
    CUDA. ``scale``: multiplies the recipe's input scales. ``recipe``: None/``"default"`` (the weights'
    own recipe), ``"plain"`` (the network alone), a dict or a :class:`~flowcli.recipe.Recipe`. Runs without gradients.
    """
    return get_estimator(weights, device=device, precision=precision, scale=scale,
                         recipe=_recipe_key(recipe)).estimate(img1, img2)


def estimate_flow_batch(pairs: Sequence[tuple[np.ndarray, np.ndarray]], *, weights: Optional[str | os.PathLike] = None,
                        device: str = "auto", precision: Optional[str] = None, scale: float = 1.0,
                        recipe: "str | dict | Recipe | None" = None, batch_size: int = 8) -> list[np.ndarray]:
    """:func:`estimate_flow` for many pairs at once (batched on the device); returns the flows in order."""
    return get_estimator(weights, device=device, precision=precision, scale=scale,
                         recipe=_recipe_key(recipe)).estimate_batch(pairs, batch_size=batch_size)


def _recipe_key(recipe):
    """A hashable stand-in for a dict recipe, so that the estimator cache can key on it."""
    return Recipe.from_dict(recipe) if isinstance(recipe, dict) else recipe
