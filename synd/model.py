"""The two networks: a generator that paints the sound and a decoder that hears it back.

Generator: (base image, sound features) -> RGB image in [0, 1]. A small U-Net whose every
stage is modulated by the sound (FiLM: per-channel scale and shift computed from the
features), so sound shapes the picture at several scales, not only as extra input
channels. It also sees three coordinate channels (x, y, radius) scaled so that the short
side of a frame spans [-1, 1] at `native_size` pixels: that lets a fully convolutional net
compose a picture, and lets training on small crops of a virtual native-size frame
transfer to full frames. There is no normalisation layer, so nothing depends on batch
statistics at inference.

Decoder: image -> sound features. Strided convolutions and a global mean, so it reads
the sound from any crop of any size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from synd.tables import reject_unknown


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a generator/decoder pair; stored in every checkpoint."""

    feature_dim: int
    width: int = 12  # channels at half resolution; deeper stages use 2x and 4x
    res_blocks: int = 2  # residual blocks at 1/8 resolution
    cond_dim: int = 64  # hidden size of the features -> FiLM network
    decoder_width: int = 32
    native_size: int = 256  # short side (pixels) over which coordinates span [-1, 1]
    scene: int = 0  # 0: none; else the hidden size of the sound-driven scene (SceneHead)
    # The finest coordinate wave the generator sees (`fourier_features`); finer ones are
    # zeros. 4 (all): a generator may bake the finest into a fixed stripe lattice.
    fourier_max: int = 4

    @property
    def has_scene(self) -> bool:
        return self.scene > 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        reject_unknown(cls, d, "model config")
        cfg = cls(**d)
        for f in fields(cls):
            value = getattr(cfg, f.name)
            lowest = 0 if f.name == "scene" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
                kind = "a positive integer" if lowest else "an integer >= 0"
                raise ValueError(f"model config {f.name} must be {kind}, got {value!r}")
        return cfg


def make_coords(
    height: int,
    width: int,
    native_size: int,
    top: float = 0.0,
    left: float = 0.0,
    frame: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Coordinate channels (x, y, radius), shape (1, 3, height, width).

    The pixels are the window at (top, left) of a frame of size `frame` (default: the
    window itself). Coordinates are centred on the frame and scaled by its short side,
    so that the short side spans [-1, 1] whatever the size; `native_size` only matters
    for crops of a virtual frame, where `frame` is (native_size, native_size).
    """
    fh, fw = frame if frame is not None else (height, width)
    half = min(fh, fw) / 2.0
    ys = (torch.arange(height, dtype=torch.float32) + top + 0.5 - fh / 2.0) / half
    xs = (torch.arange(width, dtype=torch.float32) + left + 0.5 - fw / 2.0) / half
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    r = torch.sqrt(x * x + y * y)
    return torch.stack([x, y, r]).unsqueeze(0)


FOURIER_FREQS = (0.5, 1.0, 2.0, 4.0)


def fourier_features(coords: torch.Tensor, max_freq: float = FOURIER_FREQS[-1]) -> torch.Tensor:
    """sin/cos of the coordinates at a few frequencies: spatial building blocks (stripes,
    rings, checkers) that the sound can modulate, as in compositional pattern networks.
    Frequencies above `max_freq` are zeros (the channel layout, and so the weights' shape,
    stays the same for every choice)."""
    waves = [
        f(math.pi * k * coords) if k <= max_freq else torch.zeros_like(coords)
        for k in FOURIER_FREQS
        for f in (torch.sin, torch.cos)
    ]
    return torch.cat(waves, dim=1)


class FiLM(nn.Module):
    """Per-channel scale and shift computed from the sound, then the nonlinearity."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        gamma, beta = film.unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return F.leaky_relu(x * (1.0 + gamma) + beta, 0.2)


def conv3x3(cin: int, cout: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    # Replicate padding: zero padding paints a frame around every training crop.
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="replicate", bias=bias)


class FiLMConv(FiLM):
    """3x3 convolution whose output channels are scaled and shifted by the sound."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(cout)
        self.conv = conv3x3(cin, cout, stride)

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        return super().forward(self.conv(x), film)


#: The scene's colour blobs: centres (x, y) in coordinate units (the short side spans
#: [-1, 1]) on a 4x3 grid over a 16:9 frame, and their width. Broad and few, so the
#: scene is a composition, never a lattice.
SCENE_CENTRES = [(x, y) for y in (-0.6, 0.0, 0.6) for x in (-1.2, -0.4, 0.4, 1.2)]
SCENE_WIDTH = 0.5


def scene_basis(coords: torch.Tensor) -> torch.Tensor:
    """Normalised Gaussian weights of each scene blob at each pixel: (B, K, H, W) summing
    to 1 over K, from `make_coords` coordinates (B, 3, H, W)."""
    centres = torch.tensor(SCENE_CENTRES, dtype=coords.dtype, device=coords.device)
    dx = coords[:, :1] - centres[:, 0].view(1, -1, 1, 1)
    dy = coords[:, 1:2] - centres[:, 1].view(1, -1, 1, 1)
    return torch.softmax(-(dx * dx + dy * dy) / (2 * SCENE_WIDTH**2), dim=1)


class SceneHead(nn.Module):
    """Sound -> a smooth colour field: the large-scale picture, readable from afar.

    An MLP turns the features now and their slow average (seconds) into one colour per
    blob of `SCENE_CENTRES`; the field blends them with `scene_basis`. The frame loop
    paints on this field instead of a fixed pattern, so what a viewer sees from across
    the room (colours, where they sit) is a function of the music.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        k = len(SCENE_CENTRES)
        self.net = nn.Sequential(
            nn.Linear(2 * cfg.feature_dim, cfg.scene),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.scene, cfg.scene),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.scene, 3 * k),
        )

    def colours(self, features: torch.Tensor, slow: torch.Tensor) -> torch.Tensor:
        """(B, K, 3) colour logits of the blobs."""
        return self.net(torch.cat([features, slow], dim=1)).view(len(features), -1, 3)

    def forward(self, features: torch.Tensor, slow: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        """The field (B, 3, H, W) in [0, 1] for `basis` = `scene_basis(coords)`."""
        b, (k, h, w) = len(features), basis.shape[1:]
        colours = self.colours(features, slow).transpose(1, 2)  # (B, 3, K)
        flat = basis.reshape(basis.shape[0], k, h * w).expand(b, -1, -1)  # (B, K, HW)
        return torch.sigmoid(torch.bmm(colours, flat)).view(b, 3, h, w)


class Generator(nn.Module):
    """(base image, features, coordinates) -> image; see the module docstring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        # The first convolution is split into an image part and a position part: the
        # position part depends only on the frame size, so the frame loop computes it
        # once (`position_term`) instead of every frame.
        self.stem_image = conv3x3(3, c, stride=2)
        self.stem_position = conv3x3(3 + 6 * len(FOURIER_FREQS), c, stride=2, bias=False)
        self.down1 = FiLM(c)
        self.down2 = FiLMConv(c, 2 * c, stride=2)
        self.down3 = FiLMConv(2 * c, 4 * c, stride=2)
        self.res = nn.ModuleList(FiLMConv(4 * c, 4 * c) for _ in range(2 * cfg.res_blocks))
        self.up2 = FiLMConv(4 * c + 2 * c, 2 * c)
        self.up1 = FiLMConv(2 * c + c, c)
        self.to_rgb = conv3x3(c + 6, 3)
        self.film_layers = [self.down1, self.down2, self.down3, *self.res, self.up2, self.up1]
        film_size = sum(2 * layer.channels for layer in self.film_layers)
        self.cond = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.cond_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.cond_dim, cfg.cond_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(cfg.cond_dim, film_size),
        )
        film_out = self.cond[-1]
        assert isinstance(film_out, nn.Linear)
        # Start as a gentle modulation so early training is stable.
        nn.init.normal_(film_out.weight, std=0.01)
        nn.init.zeros_(film_out.bias)
        self.scene = SceneHead(cfg) if cfg.has_scene else None

    def film(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer FiLM parameters (batch, 2 * channels) from the features."""
        sizes = [2 * layer.channels for layer in self.film_layers]
        return list(self.cond(features).split(sizes, dim=1))

    def position_term(self, coords: torch.Tensor) -> torch.Tensor:
        """The first layer's response to position (coordinates and their Fourier features)."""
        waves = fourier_features(coords, self.cfg.fourier_max)
        return self.stem_position(torch.cat([coords, waves], dim=1))

    def encode(
        self, image: torch.Tensor, position: torch.Tensor, films: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The way down: image (base * 2 - 1) -> the 1/2 and 1/4 skips and the 1/8 result of
        the residual blocks. The two up-steps use the last two FiLM parameter sets."""
        return self.descend(self.stem_image(image) + position, films)

    def descend(
        self, stem: torch.Tensor, films: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`encode` from the first convolution's output (image and position terms summed)."""
        e1 = self.down1(stem, films[0])
        e2 = self.down2(e1, films[1])
        h = self.down3(e2, films[2])
        k = 3
        for i in range(0, len(self.res), 2):
            r = self.res[i](h, films[k])
            h = h + self.res[i + 1](r, films[k + 1])
            k += 2
        return e1, e2, h

    def forward(
        self,
        base: torch.Tensor,
        features: torch.Tensor,
        coords: torch.Tensor,
        position: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """base (B, 3, H, W) in [0, 1], features (B, F), coords (1 or B, 3, H, W) from
        `make_coords`; `position` = `position_term(coords)` if already computed."""
        films = self.film(features)
        if position is None:
            position = self.position_term(coords)
        if coords.shape[0] != base.shape[0]:
            coords = coords.expand(base.shape[0], -1, -1, -1)
        x0 = torch.cat([base * 2.0 - 1.0, coords], dim=1)
        e1, e2, h = self.encode(x0[:, :3], position, films)
        k = len(films) - 2
        h = F.interpolate(h, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        h = self.up2(torch.cat([h, e2], dim=1), films[k])
        h = F.interpolate(h, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        h = self.up1(torch.cat([h, e1], dim=1), films[k + 1])
        h = F.interpolate(h, size=x0.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.to_rgb(torch.cat([h, x0], dim=1)))


def replicate_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 3x3 convolution with replicate padding, as the generator's layers do it."""
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias)


# Bilinear 2x upsampling (align_corners=False, edges clamped) as 3-tap stencils on the
# low-resolution rows: _UPSAMPLE[a][d] gives the weights of rows (k-1, k, k+1) that make
# the high-resolution row 2k + a + d, for d = -1, 0, 1. Edge clamping is exactly what
# replicate padding of the low-resolution rows by one gives.
_UPSAMPLE = torch.tensor(
    [
        [[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25]],  # even rows 2k
        [[0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.0, 0.25, 0.75]],  # odd rows 2k + 1
    ],
    dtype=torch.float64,
)


def phase_weights(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 convolution applied after bilinear 2x upsampling, as one 3x3 convolution at the
    low resolution with 4x the output channels (one set per output pixel phase), to be put
    in place by `interleave_phases`: the same numbers, without ever making the upsampled
    image. weight (cout, cin, 3, 3) -> (4 * cout, cin, 3, 3), phase-major: output channel
    (2 * a + b) * cout + o is channel o at the pixels (2i + a, 2j + b)."""
    w = weight.double()
    phases = [torch.einsum("dt,oidx,xu->oitu", _UPSAMPLE[a], w, _UPSAMPLE[b]) for a in (0, 1) for b in (0, 1)]
    return torch.cat(phases, dim=0).to(weight.dtype)


def interleave_phases(x: torch.Tensor) -> torch.Tensor:
    """(B, 4C, H, W) phase-major (see `phase_weights`) -> (B, C, 2H, 2W).

    What `pixel_shuffle` does for channel-minor phases, written as stacks: ONNX Runtime
    runs these as copies, which took 0.63 ms of a 256x256 frame where its DepthToSpace
    (what `pixel_shuffle` exports to) took 0.92 ms, 11% of the frame."""
    p00, p01, p10, p11 = x.chunk(4, dim=1)
    rows = [torch.stack(pair, dim=-1).flatten(-2) for pair in ((p00, p01), (p10, p11))]
    return torch.stack(rows, dim=-2).flatten(-3, -2)


class FoldedGenerator(nn.Module):
    """The generator's inference pass for one frame size, rearranged to cost less.

    The same function as `Generator.forward` (tests compare them), with the constant work
    done once: the position term, the first layer's bias and its "2 * base - 1", and the
    coordinate half of the last layer are computed at construction; the base image is
    padded once for the two convolutions that read it; and each "upsample, concatenate,
    convolve" step becomes a convolution at the low resolution split into output phases
    (`phase_weights`) plus a convolution of the skip connection, so the upsampled tensors
    are never built. The full-resolution work shrinks to a 3-channel convolution of the
    base image. It is built from the generator's weights as they are now: build a new one
    after changing them.
    """

    # The buffers registered in __init__ (nn.Module's attribute lookup finds them).
    stem_base: torch.Tensor
    stem_constant: torch.Tensor
    rgb_base: torch.Tensor
    rgb_constant: torch.Tensor

    def __init__(self, generator: Generator, height: int, width: int):
        super().__init__()
        g = generator
        self.g = g
        c = g.cfg.width
        coords = make_coords(height, width, g.cfg.native_size).to(g.to_rgb.weight)
        with torch.no_grad():
            # stem_image(2 * base - 1) = conv(base, 2w) + bias - sum(w): the constant part
            # joins the position term.
            ws, bs = g.stem_image.weight, g.stem_image.bias
            assert bs is not None  # conv3x3 makes it with a bias
            self.register_buffer("stem_base", 2.0 * ws)
            self.register_buffer(
                "stem_constant", g.position_term(coords) + (bs - ws.sum(dim=(1, 2, 3))).view(1, -1, 1, 1)
            )
            w, b = g.to_rgb.weight, g.to_rgb.bias
            # to_rgb sees cat(h, 2 * base - 1, coords): the coordinate part, the bias and
            # the "- 1" are one constant image.
            constant = replicate_conv(coords, w[:, c + 3 :], b) - w[:, c : c + 3].sum(dim=(1, 2, 3)).view(
                1, -1, 1, 1
            )
            self.register_buffer("rgb_constant", constant)
            self.register_buffer("rgb_base", 2.0 * w[:, c : c + 3])
            # The upsampled inputs of to_rgb, up1 and up2: plain and phase-split weights.
            for name, weight in (
                ("rgb", w[:, :c]),
                ("up1", g.up1.conv.weight[:, : 2 * c]),
                ("up2", g.up2.conv.weight[:, : 4 * c]),
            ):
                self.register_buffer(f"{name}_up", weight.clone())
                self.register_buffer(f"{name}_phases", phase_weights(weight))

    def _up_conv(self, name: str, low: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """conv3x3(upsample(low) to `size`) without bias, with layer `name`'s weights."""
        weight, phases = getattr(self, f"{name}_up"), getattr(self, f"{name}_phases")
        if size[0] == 2 * low.shape[-2] and size[1] == 2 * low.shape[-1]:
            return interleave_phases(replicate_conv(low, phases))
        up = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return replicate_conv(up, weight)

    def forward(self, base: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        g = self.g
        c = g.cfg.width
        films = g.film(features)
        padded = F.pad(base, (1, 1, 1, 1), mode="replicate")
        stem = F.conv2d(padded, self.stem_base, stride=2) + self.stem_constant
        e1, e2, h = g.descend(stem, films)
        k = len(films) - 2
        up2, up1 = g.up2.conv, g.up1.conv
        h = self._up_conv("up2", h, e2.shape[-2:]) + replicate_conv(e2, up2.weight[:, 4 * c :], up2.bias)
        h = FiLM.forward(g.up2, h, films[k])
        h = self._up_conv("up1", h, e1.shape[-2:]) + replicate_conv(e1, up1.weight[:, 2 * c :], up1.bias)
        h = FiLM.forward(g.up1, h, films[k + 1])
        rgb = self._up_conv("rgb", h, base.shape[-2:]) + F.conv2d(padded, self.rgb_base) + self.rgb_constant
        return torch.sigmoid(rgb)


class SoundDecoder(nn.Module):
    """Image (any size) -> sound features: strided convolutions and a global mean."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.decoder_width
        self.body = nn.Sequential(
            nn.Conv2d(3, d, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(d, 2 * d, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * d, 4 * d, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * d, 4 * d, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(8 * d, cfg.feature_dim)

    def read(self, image: torch.Tensor, tile: int) -> torch.Tensor:
        """Features of a large image: the mean reading of its `tile`-pixel tiles.

        The decoder learns on crops of about `tile` pixels; reading a whole 256- or
        1080-pixel frame in one pass would pool over statistics it never saw.
        """
        b, c, h, w = image.shape
        if h < 2 * tile and w < 2 * tile:
            return self(image)
        ny, nx = max(1, h // tile), max(1, w // tile)
        top, left = (h - ny * tile) // 2, (w - nx * tile) // 2
        tiles = image[..., top : top + ny * tile, left : left + nx * tile]
        tiles = tiles.unfold(2, tile, tile).unfold(3, tile, tile)  # b, c, ny, nx, t, t
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(b * ny * nx, c, tile, tile)
        return self(tiles).view(b, ny * nx, -1).mean(dim=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = self.body(image * 2.0 - 1.0)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3), correction=0)], dim=1)
        return self.head(pooled)


def crop_side(size: int, fraction: float) -> int:
    """A decoder crop of `fraction` of a `size`-pixel training crop: a multiple of 8, >= 16."""
    return min(size, max(16, int(round(size * fraction / 8)) * 8))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
