"""A procedural image data set: ten classes of 64×64 scenes, each an object in its typical context.

It exists so that the embedded model set can be trained, and its samples judged, with no downloaded data.
Every image comes from one `numpy.random.Generator`, so a seed fixes the whole set. Scenes are drawn at twice
the size and box-downsampled (cheap anti-aliasing); each class varies position, scale, rotation, palette,
background, clutter and lighting so that samplers have real within-class diversity to find or to miss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
_SS = 2  # supersampling factor
_S = SIZE * _SS

CLASS_NAMES = [
    "lighthouse",
    "sunset",
    "tree",
    "sailboat",
    "house",
    "flower",
    "fish",
    "car",
    "mountain",
    "balloon",
]

Color = tuple[int, int, int]
_RENDERERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {}


def _renders(name: str):
    def register(fn):
        _RENDERERS[name] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------- helpers


def _jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 18) -> Color:
    c = np.asarray(color, np.float64) + rng.normal(0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> Color:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))


def _gradient(top: Sequence[float], bottom: Sequence[float], height: int = _S, width: int = _S) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    col = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(col, (height, width, 3))


def _canvas(top: Sequence[float], bottom: Sequence[float]) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(_gradient(top, bottom)).astype(np.uint8))


def _paste_gradient(img: Image.Image, y0: int, top: Sequence[float], bottom: Sequence[float]) -> None:
    """Fill rows y0..end with a vertical gradient (sea, ground, water)."""
    y0 = int(np.clip(y0, 0, _S - 1))
    band = np.ascontiguousarray(_gradient(top, bottom, _S - y0)).astype(np.uint8)
    img.paste(Image.fromarray(band), (0, y0))


_SKIES = {
    "day": ((70, 130, 210), (175, 215, 245)),
    "pale": ((150, 185, 225), (225, 235, 245)),
    "overcast": ((135, 140, 150), (195, 198, 205)),
    "dusk": ((70, 60, 120), (240, 160, 120)),
    "night": ((10, 15, 45), (50, 60, 110)),
}


def _sky(rng: np.random.Generator, kinds: Sequence[str] = ("day", "day", "pale", "overcast", "dusk")):
    kind = _pick(rng, kinds)
    top, bottom = _SKIES[kind]
    return kind, _jitter(rng, top, 20), _jitter(rng, bottom, 20)


def _clouds(draw: ImageDraw.ImageDraw, rng: np.random.Generator, n: int, y_max: float, tint: Color) -> None:
    for _ in range(n):
        cx, cy = rng.uniform(-10, _S + 10), rng.uniform(0, y_max)
        w = rng.uniform(12, 40)
        col = _jitter(rng, tint, 10)
        for _ in range(int(rng.integers(2, 5))):
            dx, dy, r = rng.uniform(-w / 2, w / 2), rng.uniform(-4, 3), rng.uniform(5, 11)
            draw.ellipse([cx + dx - r * 1.4, cy + dy - r, cx + dx + r * 1.4, cy + dy + r], fill=col)


def _birds(draw: ImageDraw.ImageDraw, rng: np.random.Generator, n: int, y_max: float, color: Color) -> None:
    for _ in range(n):
        x, y, s = rng.uniform(5, _S - 5), rng.uniform(5, y_max), rng.uniform(3, 6)
        draw.line([(x - s, y - s * 0.6), (x, y), (x + s, y - s * 0.6)], fill=color, width=2)


def _waves(draw: ImageDraw.ImageDraw, rng: np.random.Generator, y0: float, color: Color, n: int) -> None:
    for _ in range(n):
        y = rng.uniform(y0 + 2, _S)
        x = rng.uniform(-5, _S)
        length = rng.uniform(4, 14) * (0.5 + (y - y0) / _S)
        draw.line([(x, y), (x + length, y)], fill=_jitter(rng, color, 12), width=int(rng.integers(1, 3)))


def _layer() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    layer = Image.new("RGBA", (_S, _S), (0, 0, 0, 0))
    return layer, ImageDraw.Draw(layer)


def _composite(
    img: Image.Image, layer: Image.Image, angle: float, center: tuple[float, float]
) -> Image.Image:
    """Rotate an object layer about its own centre and lay it over the scene."""
    if abs(angle) > 0.5:  # nearest is enough: the box downsampling afterwards smooths the edges
        layer = layer.rotate(angle, resample=Image.NEAREST, center=center)
    base = img.convert("RGBA")
    base.alpha_composite(layer)
    return base.convert("RGB")


def _hill_ground(rng: np.random.Generator, draw: ImageDraw.ImageDraw, y: float, color: Color) -> None:
    """A rolling ground line from left to right at height y."""
    pts = [(-2, _S + 2)]
    phase, amp, freq = rng.uniform(0, 6.3), rng.uniform(1, 8), rng.uniform(0.02, 0.06)
    for x in range(-2, _S + 3, 8):
        pts.append((x, y + amp * math.sin(phase + freq * x)))
    pts.append((_S + 2, _S + 2))
    draw.polygon(pts, fill=color)


_GROUNDS = [(80, 150, 60), (110, 160, 70), (150, 140, 90), (235, 235, 240), (95, 120, 60), (170, 150, 100)]
_VIVID = [
    (220, 40, 40),
    (240, 130, 30),
    (240, 210, 40),
    (60, 160, 60),
    (40, 90, 200),
    (140, 60, 170),
    (240, 110, 170),
    (250, 250, 250),
    (40, 40, 40),
    (40, 180, 190),
]


# ---------------------------------------------------------------------------------------------- classes


@_renders("lighthouse")
def _lighthouse(rng: np.random.Generator) -> Image.Image:
    kind, top, bottom = _sky(rng, ("day", "day", "pale", "overcast", "dusk", "night"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    horizon = rng.uniform(0.5, 0.75) * _S
    if kind != "night":
        _clouds(draw, rng, int(rng.integers(0, 4)), horizon - 10, (245, 245, 250))
    sea = _jitter(rng, _pick(rng, [(30, 80, 140), (30, 110, 130), (50, 70, 100)]), 15)
    _paste_gradient(img, int(horizon), sea, _mix(sea, (10, 20, 40), 0.5))
    _waves(draw, rng, horizon, _mix(sea, (255, 255, 255), 0.4), int(rng.integers(4, 16)))
    scale = rng.uniform(0.7, 1.3)
    x = rng.uniform(0.2, 0.8) * _S
    base_y = horizon + rng.uniform(4, 20)
    height = 70 * scale
    w0, w1 = 13 * scale, 8 * scale
    layer, ld = _layer()
    rock = _jitter(rng, _pick(rng, [(90, 80, 70), (110, 105, 100), (70, 60, 55)]), 12)
    rw = rng.uniform(18, 34) * scale
    ld.ellipse([x - rw, base_y - 7 * scale, x + rw, base_y + 14 * scale], fill=rock + (255,))
    stripes = int(rng.integers(2, 6))
    col_a = _jitter(rng, _pick(rng, [(210, 40, 40), (30, 30, 30), (40, 70, 160), (235, 235, 235)]), 12)
    col_b = _jitter(rng, (240, 240, 235), 8)
    y_top = base_y - height
    for i in range(stripes):
        ya, yb = base_y - height * i / stripes, base_y - height * (i + 1) / stripes
        wa, wb = w0 + (w1 - w0) * i / stripes, w0 + (w1 - w0) * (i + 1) / stripes
        ld.polygon(
            [(x - wa, ya), (x + wa, ya), (x + wb, yb), (x - wb, yb)],
            fill=(col_a if i % 2 else col_b) + (255,),
        )
    dark = _jitter(rng, (40, 40, 45), 10) + (255,)
    ld.rectangle([x - w1 - 3 * scale, y_top - 3 * scale, x + w1 + 3 * scale, y_top], fill=dark)
    glow = _jitter(rng, (255, 230, 120), 15)
    ld.rectangle([x - w1 * 0.7, y_top - 12 * scale, x + w1 * 0.7, y_top - 3 * scale], fill=glow + (255,))
    cap = _jitter(rng, _pick(rng, [(170, 30, 30), (40, 40, 40), (60, 90, 60)]), 12) + (255,)
    ld.polygon(
        [(x - w1, y_top - 12 * scale), (x + w1, y_top - 12 * scale), (x, y_top - 20 * scale)], fill=cap
    )
    if kind in ("night", "dusk") or rng.random() < 0.25:
        side = _pick(rng, [-1, 1])
        ly = y_top - 8 * scale
        ld.polygon([(x, ly), (x + side * 70, ly - 14), (x + side * 70, ly + 10)], fill=glow + (90,))
    return _composite(img, layer, rng.uniform(-6, 6), (x, base_y))


@_renders("sunset")
def _sunset(rng: np.random.Generator) -> Image.Image:
    top = _jitter(rng, _pick(rng, [(60, 40, 110), (30, 30, 80), (120, 60, 120), (200, 90, 60)]), 20)
    low = _jitter(rng, _pick(rng, [(250, 150, 60), (245, 100, 80), (250, 200, 90), (240, 120, 140)]), 15)
    img = _canvas(top, low)
    draw = ImageDraw.Draw(img)
    horizon = rng.uniform(0.45, 0.75) * _S
    for _ in range(int(rng.integers(0, 5))):  # thin streaky clouds lit from below
        y, x, w = rng.uniform(5, horizon - 8), rng.uniform(-20, _S), rng.uniform(20, 60)
        draw.ellipse([x, y, x + w, y + rng.uniform(2, 5)], fill=_jitter(rng, _mix(top, low, 0.7), 15))
    sun_col = _jitter(rng, _pick(rng, [(255, 230, 120), (255, 190, 80), (255, 120, 60), (255, 250, 200)]), 8)
    r = rng.uniform(7, 22)
    sx = rng.uniform(0.15, 0.85) * _S
    sy = horizon + rng.uniform(-1.2, 0.3) * r
    glow = Image.new("RGBA", (_S, _S), (0, 0, 0, 0))
    ImageDraw.Draw(glow).ellipse([sx - 2 * r, sy - 2 * r, sx + 2 * r, sy + 2 * r], fill=sun_col + (70,))
    img = _composite(img, glow, 0, (sx, sy))
    draw = ImageDraw.Draw(img)
    draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=sun_col)
    water_top = _mix(low, (40, 30, 60), rng.uniform(0.3, 0.6))
    _paste_gradient(img, int(horizon), water_top, _mix(top, (0, 0, 0), 0.5))
    draw = ImageDraw.Draw(img)
    for i in range(int(rng.integers(6, 14))):  # the sun's broken reflection
        y = horizon + 2 + i * rng.uniform(3, 6)
        half = r * rng.uniform(0.4, 1.1) * (1 - i / 18)
        draw.line(
            [(sx - half, y), (sx + half, y)], fill=_mix(sun_col, water_top, rng.uniform(0, 0.5)), width=2
        )
    if rng.random() < 0.5:  # distant island silhouette
        ix, iw = rng.uniform(-10, _S), rng.uniform(15, 50)
        draw.polygon(
            [(ix, horizon + 1), (ix + iw * 0.4, horizon - rng.uniform(3, 12)), (ix + iw, horizon + 1)],
            fill=_mix(top, (0, 0, 0), 0.6),
        )
    if rng.random() < 0.5:
        _birds(draw, rng, int(rng.integers(1, 5)), horizon - 15, _mix(top, (0, 0, 0), 0.7))
    return img


def _deciduous(ld: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, s: float, leaf: Color):
    trunk = _jitter(rng, (100, 70, 40), 12) + (255,)
    h = rng.uniform(25, 40) * s
    ld.polygon([(x - 4 * s, y), (x + 4 * s, y), (x + 2 * s, y - h), (x - 2 * s, y - h)], fill=trunk)
    crown = rng.uniform(20, 30) * s
    for _ in range(int(rng.integers(5, 10))):
        dx, dy = rng.normal(0, crown * 0.45), rng.normal(0, crown * 0.35)
        r = rng.uniform(0.45, 0.7) * crown
        ld.ellipse(
            [x + dx - r, y - h + dy - r, x + dx + r, y - h + dy + r], fill=_jitter(rng, leaf, 14) + (255,)
        )


def _conifer(ld: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, s: float, leaf: Color):
    ld.rectangle([x - 3 * s, y - 12 * s, x + 3 * s, y], fill=_jitter(rng, (90, 60, 35), 10) + (255,))
    tiers, h = int(rng.integers(3, 5)), rng.uniform(55, 75) * s
    for i in range(tiers):
        yb = y - 8 * s - h * i / (tiers + 1)
        w = 22 * s * (1 - i / (tiers + 0.5))
        ld.polygon(
            [(x - w, yb), (x + w, yb), (x, yb - h / tiers * 1.6)], fill=_jitter(rng, leaf, 10) + (255,)
        )


@_renders("tree")
def _tree(rng: np.random.Generator) -> Image.Image:
    _, top, bottom = _sky(rng)
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    _clouds(draw, rng, int(rng.integers(0, 4)), _S * 0.4, (245, 245, 248))
    ground = _jitter(rng, _pick(rng, _GROUNDS), 15)
    hill_x, hill_y = rng.uniform(0.2, 0.8) * _S, rng.uniform(0.55, 0.8) * _S
    hw = rng.uniform(50, 110)
    _hill_ground(rng, draw, hill_y + rng.uniform(8, 25), _mix(ground, (0, 0, 0), 0.15))
    draw.ellipse([hill_x - hw, hill_y, hill_x + hw, hill_y + hw * 0.8], fill=ground)
    leaf = _pick(
        rng, [(50, 130, 50), (70, 150, 40), (30, 100, 50), (210, 120, 30), (200, 60, 30), (220, 190, 50)]
    )
    layer, ld = _layer()
    s = rng.uniform(0.8, 1.4)
    tree = _conifer if rng.random() < 0.3 else _deciduous
    tree(ld, rng, hill_x, hill_y + 4, s, leaf)
    if rng.random() < 0.4:  # flowers or stones in the grass
        for _ in range(int(rng.integers(3, 12))):
            fx, fy = rng.uniform(0, _S), rng.uniform(hill_y + 6, _S)
            draw.ellipse([fx - 1.5, fy - 1.5, fx + 1.5, fy + 1.5], fill=_jitter(rng, _pick(rng, _VIVID), 10))
    return _composite(img, layer, rng.uniform(-8, 8), (hill_x, hill_y))


@_renders("sailboat")
def _sailboat(rng: np.random.Generator) -> Image.Image:
    kind, top, bottom = _sky(rng, ("day", "day", "pale", "overcast", "dusk"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    horizon = rng.uniform(0.45, 0.7) * _S
    _clouds(draw, rng, int(rng.integers(0, 4)), horizon - 10, (248, 248, 250))
    sea = _jitter(rng, _pick(rng, [(40, 100, 170), (30, 120, 140), (60, 90, 130), (20, 70, 120)]), 15)
    _paste_gradient(img, int(horizon), _mix(sea, (255, 255, 255), 0.15), _mix(sea, (0, 0, 0), 0.35))
    _waves(draw, rng, horizon, _mix(sea, (255, 255, 255), 0.45), int(rng.integers(6, 20)))
    if rng.random() < 0.4:
        draw.polygon(
            [
                (rng.uniform(-20, 60), horizon + 1),
                (rng.uniform(40, 90), horizon - rng.uniform(3, 10)),
                (rng.uniform(90, 150), horizon + 1),
            ],
            fill=_mix(sea, (60, 90, 60), 0.6),
        )
    s = rng.uniform(0.7, 1.3)
    x = rng.uniform(0.25, 0.75) * _S
    wl = horizon + rng.uniform(10, 40)  # water line of the hull
    layer, ld = _layer()
    hull = _jitter(
        rng, _pick(rng, [(120, 60, 30), (240, 240, 240), (180, 30, 30), (30, 40, 90), (30, 30, 30)]), 12
    )
    hl = rng.uniform(26, 36) * s
    ld.polygon(
        [(x - hl, wl - 8 * s), (x + hl, wl - 8 * s), (x + hl * 0.7, wl + 2 * s), (x - hl * 0.75, wl + 2 * s)],
        fill=hull + (255,),
    )
    mast_h = rng.uniform(55, 70) * s
    mx = x + rng.uniform(-0.2, 0.2) * hl
    ld.line([(mx, wl - 8 * s), (mx, wl - 8 * s - mast_h)], fill=(60, 50, 40, 255), width=max(1, int(2 * s)))
    sail = _jitter(
        rng, _pick(rng, [(250, 250, 245), (250, 250, 245), (230, 60, 50), (240, 200, 60), (70, 120, 200)]), 8
    )
    ld.polygon(
        [(mx - 2, wl - 12 * s), (mx - 2, wl - 8 * s - mast_h), (mx - hl * 0.9, wl - 12 * s)],
        fill=sail + (255,),
    )
    jib = sail if rng.random() < 0.6 else _jitter(rng, _pick(rng, _VIVID), 8)
    ld.polygon(
        [(mx + 2, wl - 12 * s), (mx + 2, wl - 10 * s - mast_h * 0.85), (mx + hl * 0.8, wl - 12 * s)],
        fill=jib + (255,),
    )
    if rng.random() < 0.5:
        _birds(draw, rng, int(rng.integers(1, 4)), horizon - 12, (40, 40, 50))
    img = _composite(img, layer, rng.uniform(-14, 14), (x, wl))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


@_renders("house")
def _house(rng: np.random.Generator) -> Image.Image:
    kind, top, bottom = _sky(rng, ("day", "day", "pale", "overcast", "dusk", "night"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    if kind != "night":
        _clouds(draw, rng, int(rng.integers(0, 3)), _S * 0.3, (245, 245, 248))
    ground_y = rng.uniform(0.62, 0.85) * _S
    _hill_ground(rng, draw, ground_y, _jitter(rng, _pick(rng, _GROUNDS), 15))
    s = rng.uniform(0.7, 1.25)
    x = rng.uniform(0.3, 0.7) * _S
    base = ground_y + rng.uniform(2, 12)
    w, h = rng.uniform(28, 40) * s, rng.uniform(24, 36) * s
    layer, ld = _layer()
    wall = _jitter(
        rng,
        _pick(
            rng,
            [
                (240, 235, 220),
                (230, 200, 140),
                (180, 70, 50),
                (150, 180, 210),
                (200, 200, 195),
                (240, 220, 90),
            ],
        ),
        12,
    )
    ld.rectangle([x - w, base - h, x + w, base], fill=wall + (255,))
    roof = _jitter(
        rng, _pick(rng, [(170, 40, 30), (110, 60, 40), (70, 70, 80), (40, 60, 110), (130, 110, 60)]), 12
    )
    over, rh = rng.uniform(3, 8) * s, rng.uniform(18, 34) * s
    if rng.random() < 0.7:
        ld.polygon(
            [(x - w - over, base - h), (x + w + over, base - h), (x, base - h - rh)], fill=roof + (255,)
        )
    else:
        ld.polygon(
            [
                (x - w - over, base - h),
                (x + w + over, base - h),
                (x + w * 0.6, base - h - rh * 0.7),
                (x - w * 0.6, base - h - rh * 0.7),
            ],
            fill=roof + (255,),
        )
    if rng.random() < 0.6:
        cx = x + rng.uniform(0.2, 0.6) * w
        ld.rectangle([cx - 3 * s, base - h - rh * 0.8, cx + 3 * s, base - h - rh * 0.3], fill=roof + (255,))
    door = _jitter(rng, _pick(rng, [(90, 55, 30), (40, 40, 60), (150, 30, 30)]), 10) + (255,)
    dx = x + rng.uniform(-0.6, 0.6) * w
    ld.rectangle([dx - 5 * s, base - 16 * s, dx + 5 * s, base], fill=door)
    glass = (250, 220, 110) if kind in ("night", "dusk") else _jitter(rng, (170, 210, 235), 15)
    for wx in (x - w * 0.55, x + w * 0.55):
        if abs(wx - dx) > 10 * s:
            ld.rectangle(
                [wx - 6 * s, base - h * 0.8, wx + 6 * s, base - h * 0.8 + 10 * s], fill=(250, 250, 250, 255)
            )
            ld.rectangle(
                [wx - 5 * s, base - h * 0.8 + s, wx + 5 * s, base - h * 0.8 + 9 * s], fill=glass + (255,)
            )
    if rng.random() < 0.5:  # fence or bushes
        fence_y = base + rng.uniform(2, 10)
        for fx in np.arange(rng.uniform(-4, 4), _S, rng.uniform(6, 10)):
            ld.rectangle([fx, fence_y - 10, fx + 2, fence_y], fill=_jitter(rng, (240, 240, 235), 10) + (255,))
    for _ in range(int(rng.integers(0, 3))):
        bx = rng.uniform(0, _S)
        r = rng.uniform(5, 10)
        draw.ellipse([bx - r, base - r * 1.2, bx + r, base + r * 0.5], fill=_jitter(rng, (50, 110, 50), 15))
    return _composite(img, layer, rng.uniform(-6, 6), (x, base))


@_renders("flower")
def _flower(rng: np.random.Generator) -> Image.Image:
    bg = rng.random()
    if bg < 0.5:  # foliage
        img = _canvas(_jitter(rng, (60, 110, 50), 20), _jitter(rng, (30, 70, 30), 15))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(8, 20))):
            bx, by, r = rng.uniform(0, _S), rng.uniform(0, _S), rng.uniform(6, 18)
            draw.ellipse([bx - r, by - r * 0.6, bx + r, by + r * 0.6], fill=_jitter(rng, (70, 130, 60), 25))
    else:  # sky or soil
        _, top, bottom = _sky(rng, ("day", "pale", "overcast"))
        img = _canvas(top, bottom)
        draw = ImageDraw.Draw(img)
        if rng.random() < 0.5:
            _hill_ground(rng, draw, rng.uniform(0.7, 0.9) * _S, _jitter(rng, _pick(rng, _GROUNDS[:3]), 15))
    layer, ld = _layer()
    heads = [(rng.uniform(0.3, 0.7) * _S, rng.uniform(0.25, 0.55) * _S, rng.uniform(0.8, 1.4))]
    for _ in range(int(rng.integers(0, 3))):
        heads.append((rng.uniform(0, 1) * _S, rng.uniform(0.3, 0.8) * _S, rng.uniform(0.35, 0.6)))
    stem = _jitter(rng, (50, 130, 40), 15) + (255,)
    for x, y, s in reversed(heads):
        ld.line([(x, y), (x + rng.uniform(-10, 10), _S + 2)], fill=stem, width=max(2, int(4 * s)))
        for side in (-1, 1):
            ly = y + rng.uniform(25, 45) * s
            xa, xb = sorted((x + side * 2, x + side * 18 * s))
            ld.ellipse([xa, ly - 4 * s, xb, ly + 4 * s], fill=stem)
        petal = _jitter(rng, _pick(rng, [c for c in _VIVID if c[1] < 200 or c[0] > 200]), 20) + (255,)
        n = int(rng.integers(5, 13))
        plen, pwid = rng.uniform(14, 22) * s, rng.uniform(5, 9) * s
        phase = rng.uniform(0, 2 * math.pi)
        for k in range(n):
            a = phase + 2 * math.pi * k / n
            px, py = x + math.cos(a) * plen * 0.6, y + math.sin(a) * plen * 0.6
            # an ellipse along angle a, as a polygon (PIL ellipses cannot rotate)
            pts = [
                (
                    px + math.cos(a) * plen * 0.55 * math.cos(t) - math.sin(a) * pwid * math.sin(t),
                    py + math.sin(a) * plen * 0.55 * math.cos(t) + math.cos(a) * pwid * math.sin(t),
                )
                for t in np.linspace(0, 2 * math.pi, 10, endpoint=False)
            ]
            ld.polygon(pts, fill=petal)
        cr = rng.uniform(4, 7) * s
        centre = _jitter(rng, _pick(rng, [(240, 200, 40), (110, 70, 30), (40, 30, 20), (250, 240, 200)]), 12)
        ld.ellipse([x - cr, y - cr, x + cr, y + cr], fill=centre + (255,))
    x0, y0, _ = heads[0]
    return _composite(img, layer, rng.uniform(-20, 20), (x0, y0))


@_renders("fish")
def _fish(rng: np.random.Generator) -> Image.Image:
    water = _jitter(rng, _pick(rng, [(40, 140, 180), (20, 80, 150), (30, 120, 120), (10, 50, 100)]), 15)
    img = _canvas(_mix(water, (255, 255, 255), 0.3), _mix(water, (0, 0, 0), 0.4))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.6:  # light shafts
        rays, rd = _layer()
        for _ in range(int(rng.integers(2, 5))):
            rx = rng.uniform(0, _S)
            rd.polygon([(rx, 0), (rx + 10, 0), (rx + 30, _S), (rx + 15, _S)], fill=(255, 255, 255, 28))
        img = _composite(img, rays, 0, (0, 0))
        draw = ImageDraw.Draw(img)
    if rng.random() < 0.6:
        _hill_ground(rng, draw, rng.uniform(0.8, 0.95) * _S, _jitter(rng, (190, 170, 120), 15))
    for _ in range(int(rng.integers(0, 5))):  # seaweed
        sx, h = rng.uniform(0, _S), rng.uniform(20, 60)
        pts = [(sx + 4 * math.sin(t * 0.3 + sx), _S - t) for t in np.arange(0, h, 4)]
        draw.line(pts, fill=_jitter(rng, (40, 120, 60), 20), width=3)
    s = rng.uniform(0.7, 1.3)
    x, y = rng.uniform(0.3, 0.7) * _S, rng.uniform(0.3, 0.7) * _S
    bl, bh = rng.uniform(22, 30) * s, rng.uniform(10, 17) * s
    body = _jitter(
        rng,
        _pick(
            rng,
            [(250, 140, 30), (240, 210, 50), (220, 50, 40), (60, 110, 220), (190, 195, 205), (240, 110, 170)],
        ),
        15,
    ) + (255,)
    layer, ld = _layer()
    ld.polygon(
        [(x + bl * 0.7, y), (x + bl * 1.35, y - bh * 0.9), (x + bl * 1.35, y + bh * 0.9)], fill=body
    )  # tail
    ld.polygon(
        [(x - bl * 0.1, y - bh * 0.8), (x + bl * 0.4, y - bh * 1.5), (x + bl * 0.5, y - bh * 0.7)], fill=body
    )
    ld.ellipse([x - bl, y - bh, x + bl, y + bh], fill=body)
    if rng.random() < 0.6:
        stripe = _jitter(rng, _pick(rng, [(250, 250, 250), (30, 30, 30), (60, 60, 160)]), 10) + (255,)
        for k in range(int(rng.integers(1, 4))):
            sx = x - bl * 0.3 + k * bl * 0.35
            ld.rectangle([sx - 2 * s, y - bh * 0.85, sx + 2 * s, y + bh * 0.85], fill=stripe)
    er = 3.2 * s
    ex = x - bl * 0.6
    ld.ellipse([ex - er, y - bh * 0.3 - er, ex + er, y - bh * 0.3 + er], fill=(250, 250, 250, 255))
    ld.ellipse(
        [ex - er / 2, y - bh * 0.3 - er / 2, ex + er / 2, y - bh * 0.3 + er / 2], fill=(10, 10, 10, 255)
    )
    for _ in range(int(rng.integers(0, 7))):  # bubbles
        bx, by, r = x - bl - rng.uniform(0, 10), y - rng.uniform(5, 50), rng.uniform(1.5, 4)
        draw.ellipse([bx - r, by - r, bx + r, by + r], outline=(220, 240, 250), width=1)
    img = _composite(img, layer, rng.uniform(-25, 25), (x, y))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


@_renders("car")
def _car(rng: np.random.Generator) -> Image.Image:
    _, top, bottom = _sky(rng, ("day", "day", "pale", "overcast", "dusk"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    road_y = rng.uniform(0.55, 0.75) * _S
    horizon = road_y - rng.uniform(4, 20)
    _hill_ground(rng, draw, horizon, _jitter(rng, _pick(rng, _GROUNDS), 15))
    for _ in range(int(rng.integers(0, 4))):  # roadside buildings or trees
        bx, bw, bh = rng.uniform(0, _S), rng.uniform(8, 25), rng.uniform(10, 40)
        if rng.random() < 0.5:
            draw.rectangle([bx, horizon - bh, bx + bw, horizon + 2], fill=_jitter(rng, (150, 150, 160), 30))
        else:
            draw.ellipse([bx, horizon - bh, bx + bw, horizon + 2], fill=_jitter(rng, (60, 110, 50), 20))
    asphalt = _jitter(rng, _pick(rng, [(70, 70, 75), (100, 100, 100), (50, 50, 55)]), 10)
    draw.rectangle([0, road_y, _S, _S], fill=asphalt)
    lane_y = road_y + rng.uniform(0.55, 0.8) * (_S - road_y)
    lane = _pick(rng, [(240, 240, 240), (240, 200, 40)])
    dash, off = rng.uniform(8, 16), rng.uniform(0, 16)
    for lx in np.arange(-off, _S, 2 * dash):
        draw.rectangle([lx, lane_y - 1, lx + dash, lane_y + 1], fill=lane)
    s = rng.uniform(0.75, 1.25)
    x = rng.uniform(0.3, 0.7) * _S
    wy = road_y + rng.uniform(0.2, 0.5) * (_S - road_y)  # wheel centres
    body = _jitter(rng, _pick(rng, _VIVID), 15) + (255,)
    bl, bh, wr = rng.uniform(32, 42) * s, rng.uniform(10, 14) * s, rng.uniform(6, 8) * s
    layer, ld = _layer()
    ld.rounded_rectangle([x - bl, wy - bh - wr * 0.3, x + bl, wy + wr * 0.2], radius=int(4 * s), fill=body)
    cab_f, cab_b = rng.uniform(0.1, 0.5), rng.uniform(0.5, 0.95)
    ch = rng.uniform(9, 14) * s
    ld.polygon(
        [
            (x - bl * cab_b, wy - bh - wr * 0.3),
            (x - bl * cab_b + 5 * s, wy - bh - wr * 0.3 - ch),
            (x + bl * cab_f - 3 * s, wy - bh - wr * 0.3 - ch),
            (x + bl * cab_f + 4 * s, wy - bh - wr * 0.3),
        ],
        fill=body,
    )
    glass = _jitter(rng, (150, 190, 220), 15) + (255,)
    ld.polygon(
        [
            (x - bl * cab_b + 3 * s, wy - bh - wr * 0.3 - 1),
            (x - bl * cab_b + 6 * s, wy - bh - wr * 0.3 - ch + 2),
            (x + bl * cab_f - 4 * s, wy - bh - wr * 0.3 - ch + 2),
            (x + bl * cab_f + 1 * s, wy - bh - wr * 0.3 - 1),
        ],
        fill=glass,
    )
    for cx in (x - bl * 0.6, x + bl * 0.6):
        ld.ellipse([cx - wr, wy - wr, cx + wr, wy + wr], fill=(20, 20, 20, 255))
        ld.ellipse(
            [cx - wr * 0.45, wy - wr * 0.45, cx + wr * 0.45, wy + wr * 0.45], fill=(170, 170, 175, 255)
        )
    ld.ellipse([x + bl - 4 * s, wy - bh * 0.8, x + bl, wy - bh * 0.5], fill=(255, 240, 170, 255))
    img = _composite(img, layer, rng.uniform(-5, 5), (x, wy))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


@_renders("mountain")
def _mountain(rng: np.random.Generator) -> Image.Image:
    kind, top, bottom = _sky(rng, ("day", "day", "pale", "overcast", "dusk"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    _clouds(draw, rng, int(rng.integers(0, 3)), _S * 0.35, (245, 245, 248))
    rock = _jitter(rng, _pick(rng, [(110, 110, 125), (90, 100, 130), (120, 100, 85), (100, 80, 110)]), 15)
    ranges = int(rng.integers(1, 4))
    snow = rng.random() < 0.7
    for i in range(ranges):
        far = (ranges - 1 - i) / max(ranges, 1)  # 0 = nearest
        col = _mix(rock, bottom, 0.55 * far)
        base = _S * (0.7 + 0.1 * i / max(ranges - 1, 1)) + rng.uniform(-6, 6)
        peaks = int(rng.integers(1, 4))
        pts = [(-5, base)]
        for p in range(peaks):
            px = (p + rng.uniform(0.2, 0.8)) * _S / peaks
            py = base - rng.uniform(0.35, 0.65) * _S * (1 - 0.3 * far)
            pts += [
                (px - rng.uniform(8, 20), py + rng.uniform(6, 16)),
                (px, py),
                (px + rng.uniform(8, 20), py + rng.uniform(6, 16)),
            ]
            pts.append(((p + 1) * _S / peaks, base - rng.uniform(0.05, 0.25) * _S))
        pts += [(_S + 5, base), (_S + 5, _S + 2), (-5, _S + 2)]
        draw.polygon(pts, fill=col)
        if snow:
            for j in range(2, len(pts) - 3, 4):
                (ax, ay), (bx, by), (cx, cy) = pts[j - 1], pts[j], pts[j + 1]
                t = rng.uniform(0.35, 0.6)
                draw.polygon(
                    [
                        (bx, by),
                        (bx + (ax - bx) * t, by + (ay - by) * t),
                        (bx + (cx - bx) * t, by + (cy - by) * t),
                    ],
                    fill=_mix((250, 250, 252), col, 0.3 * far),
                )
    valley = _jitter(rng, _pick(rng, [(70, 120, 50), (60, 90, 50), (140, 130, 80)]), 12)
    if rng.random() < 0.5:
        _hill_ground(rng, draw, rng.uniform(0.82, 0.95) * _S, valley)
    else:
        lake_y = rng.uniform(0.8, 0.92) * _S
        draw.rectangle([0, lake_y, _S, _S], fill=_mix(top, (30, 60, 90), 0.4))
    return img


@_renders("balloon")
def _balloon(rng: np.random.Generator) -> Image.Image:
    _, top, bottom = _sky(rng, ("day", "day", "pale", "dusk"))
    img = _canvas(top, bottom)
    draw = ImageDraw.Draw(img)
    _clouds(draw, rng, int(rng.integers(0, 5)), _S * 0.9, (250, 250, 252))
    if rng.random() < 0.4:  # fields far below
        _hill_ground(rng, draw, rng.uniform(0.85, 0.95) * _S, _jitter(rng, _pick(rng, _GROUNDS[:3]), 15))
    layer, ld = _layer()
    balloons = [(rng.uniform(0.3, 0.7) * _S, rng.uniform(0.25, 0.5) * _S, rng.uniform(0.8, 1.3))]
    for _ in range(int(rng.integers(0, 3))):
        balloons.append((rng.uniform(0, 1) * _S, rng.uniform(0.1, 0.6) * _S, rng.uniform(0.25, 0.45)))
    for x, y, s in reversed(balloons):
        r = 24 * s
        colours = [_jitter(rng, _pick(rng, _VIVID), 12) for _ in range(int(rng.integers(2, 4)))]
        ld.polygon(
            [
                (x - r * 0.85, y + r * 0.45),
                (x + r * 0.85, y + r * 0.45),
                (x + r * 0.3, y + r * 1.35),
                (x - r * 0.3, y + r * 1.35),
            ],
            fill=colours[0] + (255,),
        )
        bands = int(rng.integers(3, 7))
        for k in range(bands, 0, -1):  # nested ellipses of shrinking width read as vertical gores
            w = r * k / bands
            ld.ellipse([x - w, y - r, x + w, y + r], fill=colours[k % len(colours)] + (255,))
        bw, by = 5 * s, y + r * 1.6
        for sx in (-1, 1):
            ld.line(
                [(x + sx * r * 0.3, y + r * 1.35), (x + sx * bw * 0.8, by)], fill=(60, 50, 40, 255), width=1
            )
        ld.rectangle([x - bw, by, x + bw, by + 7 * s], fill=_jitter(rng, (130, 85, 40), 12) + (255,))
    x0, y0, _ = balloons[0]
    return _composite(img, layer, rng.uniform(-10, 10), (x0, y0))


# ------------------------------------------------------------------------------------ lighting and API


def _lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Global exposure, a colour cast, a side light and sensor noise, so no class has one fixed palette."""
    x = img.astype(np.float32)
    gain = rng.uniform(0.7, 1.2) * rng.uniform(0.92, 1.08, 3)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = np.cos(ang) * np.linspace(-1, 1, SIZE)[None, :] + np.sin(ang) * np.linspace(-1, 1, SIZE)[:, None]
    light = 1.0 + rng.uniform(0, 0.25) * ramp
    x = x * gain[None, None, :] * light[:, :, None] + rng.uniform(-15, 15)
    x += rng.uniform(0, 6) * rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def render(class_index: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 [64, 64, 3] RGB image of class `class_index`, drawn from `rng`."""
    if not 0 <= class_index < len(CLASS_NAMES):
        raise ValueError(f"class_index {class_index} out of range 0..{len(CLASS_NAMES) - 1}")
    big = _RENDERERS[CLASS_NAMES[class_index]](rng)
    return _lighting(rng, np.asarray(big.reduce(_SS)))


def make_dataset(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 64, 64, 3] RGB, labels int64 [N]), classes interleaved, N = 10 · n_per_class.

    Image i uses its own stream spawned from `seed`, so a set is a prefix of any larger set with the same
    seed.
    """
    n = n_per_class * len(CLASS_NAMES)
    streams = np.random.SeedSequence(seed).spawn(n)
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i, (ss, label) in enumerate(zip(streams, labels, strict=True)):
        images[i] = render(int(label), np.random.default_rng(ss))
    return images, labels


def channel_mean_bgr(images_rgb: np.ndarray) -> list[float]:
    """Per-channel mean in BGR order, as Caffe's `mean_value` is given."""
    return [float(v) for v in np.asarray(images_rgb, np.float64).mean(axis=(0, 1, 2))[::-1]]


def to_caffe_input(images_rgb: np.ndarray, mean_bgr: Sequence[float]) -> np.ndarray:
    """uint8 [N, H, W, 3] RGB → float32 [N, 3, H, W] BGR minus the mean, 0–255 scale: G's space."""
    x = np.asarray(images_rgb, np.float32)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x - np.asarray(mean_bgr, np.float32)[None, :, None, None])


def from_caffe_input(x: np.ndarray, mean_bgr: Sequence[float]) -> np.ndarray:
    """The inverse of `to_caffe_input`, rounded and clipped to uint8 RGB (for looking at generator output)."""
    rgb = (np.asarray(x, np.float32) + np.asarray(mean_bgr, np.float32)[None, :, None, None])[:, ::-1]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
