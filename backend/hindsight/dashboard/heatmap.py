"""Click heatmaps drawn with pillow over a page's screenshot.

Coordinates: a click is stored in CSS pixels of the visitor's viewport plus the page's
scroll (`x`, `y`); a screenshot is the page rendered `image_width / css_width` times its
CSS size. A click is placed on the element it hit when the screenshot knows that element
(`Page.elements`: the boxes tracker.js measured when it took the screenshot, by selector)
and the click knows where inside it it landed (`Click.offset`): at the element's box plus
that offset, clamped to the box, whatever the visitor's window width was. Otherwise (older
screenshots and clicks, an element the screenshot did not see) x is taken relative to each
visitor's viewport width (fluid layouts line up), y in CSS pixels of the page.
"""

from __future__ import annotations

import bisect
import io
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

RENDER_VERSION = 3          # part of the cache key: bump when the picture changes
BLANK_WIDTH = 1024          # no screenshot of the page: a white page this wide
MAX_BLANK_HEIGHT = 4000
REACH_LINES = (75, 50, 25)  # "this share of visitors saw this far" lines
# The screenshot's scale comes from the visitor's viewport width, which the client sends: a
# width of 1 px made the blur kernel (cells = 1792 / width), the rings and the labels' font
# thousands of times too large (minutes of CPU, gigabytes). A real page's scale is a few
# (device pixel ratio); a phone's 320 px viewport gives a kernel of 5.6 cells.
MAX_DRAW_SCALE = 4.0
MAX_SIGMA_CELLS = 8.0


@dataclass(frozen=True)
class Click:
    x: float                # CSS px from the page's left edge
    y: float                # CSS px from the page's top
    viewport_width: int     # the visitor's viewport width (0: unknown)
    rage: bool = False
    selector: str | None = None                  # the clicked element's (tracker.js's selector())
    offset: tuple[float, float] | None = None    # CSS px from that element's top left corner
    count: int = 1                               # clicks at this place (a roll-up's bin)


@dataclass(frozen=True)
class Page:
    """The picture to draw on: a screenshot (or None) and the CSS width it shows."""

    image: bytes | None
    image_width: int
    image_height: int
    css_width: int          # 0: unknown (taken as the image's width)
    # Element boxes on the screenshot, CSS px of the page: selector -> (x, y, width, height).
    elements: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        return self.image_width / self.css_width if self.css_width else 1.0

    @property
    def css_height(self) -> float:
        return self.image_height / self.scale


def position(page: Page, click: Click) -> tuple[float, float]:
    """Where a click lands on the page's picture, in image pixels."""
    x, y, _ = placed(page, click)
    return x, y


def placed(page: Page, click: Click) -> tuple[float, float, str]:
    """(x, y, how): on its element ("element") when the screenshot knows it, else by the
    fraction of the visitor's viewport width ("viewport")."""
    box = page.elements.get(click.selector) if click.selector and click.offset else None
    if box is not None and click.offset is not None:
        bx, by, bw, bh = box
        ox = min(max(click.offset[0], 0.0), max(bw - 1, 0))
        oy = min(max(click.offset[1], 0.0), max(bh - 1, 0))
        return (bx + ox) * page.scale, (by + oy) * page.scale, "element"
    width = click.viewport_width or page.css_width or page.image_width
    return click.x * page.image_width / width, click.y * page.scale, "viewport"


def element_boxes(stored: object) -> dict[str, tuple[float, float, float, float]]:
    """A screenshot's `elements` column ([[selector, x, y, width, height], ...]) as boxes by
    selector; anything malformed is skipped."""
    boxes: dict[str, tuple[float, float, float, float]] = {}
    if not isinstance(stored, list):
        return boxes
    for item in stored:
        if (isinstance(item, list) and len(item) == 5 and isinstance(item[0], str)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item[1:])):
            boxes[item[0]] = (float(item[1]), float(item[2]), float(item[3]), float(item[4]))
    return boxes


def click_offset(stored: object) -> tuple[float, float] | None:
    """A click's `event_data.o` ([x, y] inside its element, from tracker.js), or None."""
    if (isinstance(stored, list) and len(stored) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    and abs(v) < 1e7 for v in stored)):
        return float(stored[0]), float(stored[1])
    return None


def reach(depths: Iterable[float], css_height: float, steps: int = 10) -> list[dict]:
    """Share of sessions that saw at least each tenth of the page (depths in CSS px)."""
    values = sorted(min(1.0, d / css_height) if css_height > 0 else 1.0 for d in depths)
    total = len(values)
    rows = []
    for i in range(1, steps + 1):
        depth = i / steps
        seen = total - bisect.bisect_left(values, depth - 1e-9)
        rows.append({"depth_percent": round(depth * 100), "sessions": seen,
                     "sessions_percent": round(100 * seen / total, 1) if total else 0.0})
    return rows


def reach_lines(depths: Sequence[float], css_height: float) -> list[tuple[int, float]]:
    """For 75/50/25 %: the deepest CSS y that at least that share of sessions reached."""
    if not depths:
        return []
    ordered = sorted((min(d, css_height) for d in depths), reverse=True)
    lines = []
    for share in REACH_LINES:
        index = max(0, math.ceil(len(ordered) * share / 100) - 1)
        lines.append((share, ordered[index]))
    return lines


def _palette() -> tuple[list[int], list[int], list[int], list[int]]:
    """Blue -> cyan -> green -> yellow -> red, and an alpha that grows with the heat."""
    stops = [(0, (0, 0, 255)), (64, (0, 255, 255)), (128, (0, 255, 0)), (192, (255, 255, 0)),
             (255, (255, 0, 0))]
    r, g, b, a = [], [], [], []
    for v in range(256):
        for (v0, c0), (v1, c1) in zip(stops, stops[1:], strict=False):
            if v0 <= v <= v1:
                t = (v - v0) / (v1 - v0)
                color = [round(c0[i] + (c1[i] - c0[i]) * t) for i in range(3)]
                break
        r.append(color[0])
        g.append(color[1])
        b.append(color[2])
        a.append(0 if v < 20 else min(200, round(2 * (v - 20))))  # fades out at the edges
    return r, g, b, a


_LUT = _palette()


def _base(page: Page) -> Image.Image:
    if page.image is None:
        return Image.new("RGBA", (page.image_width, page.image_height), (255, 255, 255, 255))
    with Image.open(io.BytesIO(page.image)) as img:
        base = img.convert("RGBA")
    # Dim the page a little so the heat stands out on light and dark designs alike.
    return Image.blend(base, Image.new("RGBA", base.size, (40, 40, 40, 255)), 0.3)


def render(page: Page, clicks: Sequence[Click], depths: Sequence[float] = ()) -> bytes:
    """The heatmap as PNG bytes: heat where clicks were, rings on rage clicks, reach lines."""
    base = _base(page)
    width, height = base.size
    # Clicks are counted on a grid of cells (~8 px), then each cell spreads as a Gaussian
    # of ~14 CSS px: a kernel density, summed in floats so a lone click stays round and
    # visible next to a hot spot (8-bit blurs round it away).
    cell = max(2, round(width / 128))
    grid_w, grid_h = math.ceil(width / cell), math.ceil(height / cell)
    counts: Counter[tuple[int, int]] = Counter()
    rage_points = []
    for click in clicks:
        x, y = position(page, click)
        if 0 <= x < width and 0 <= y < height:
            counts[int(x // cell), int(y // cell)] += click.count
            if click.rage:
                rage_points.append((x, y))
    if counts:
        density = _density(counts, grid_w, grid_h, min(MAX_SIGMA_CELLS, max(0.8, 14.0 * page.scale / cell)))
        peak = max(density) or 1.0
        # A square root keeps single clicks visible next to a hot spot.
        levels = bytes(min(255, round(255 * math.sqrt(v / peak))) for v in density)
        heat = Image.frombytes("L", (grid_w, grid_h), levels).resize((width, height), Image.Resampling.BICUBIC)
        r, g, b, a = _LUT
        overlay = Image.merge("RGBA", (heat.point(r), heat.point(g), heat.point(b), heat.point(a)))
        base = Image.alpha_composite(base, overlay)
    draw = ImageDraw.Draw(base)
    draw_scale = min(page.scale, MAX_DRAW_SCALE)
    ring = max(6, round(12 * draw_scale))
    for x, y in rage_points[:500]:
        # White around red: visible on the hottest spot too.
        draw.ellipse((x - ring - 3, y - ring - 3, x + ring + 3, y + ring + 3), outline=(255, 255, 255, 255), width=2)
        draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=(220, 0, 40, 255), width=3)
    font = ImageFont.load_default(size=max(12, round(15 * draw_scale)))
    drawn: set[int] = set()
    for share, css_y in reach_lines(depths, page.css_height):
        y = round(min(height - 2, css_y * page.scale))
        if y in drawn:  # several shares at one depth: the largest says it all
            continue
        drawn.add(y)
        for x0 in range(0, width, 16):
            draw.line((x0, y, min(width, x0 + 9), y), fill=(255, 255, 255, 255), width=2)
        label = f"{share}% of visitors saw down to here"
        box = draw.textbbox((8, 0), label, font=font)
        tall = box[3] - box[1] + 6
        top = y - 2 - tall if y - 2 - tall >= 0 else y + 3  # above the line, or below it at the top
        draw.rectangle((4, top, box[2] + 6, top + tall), fill=(20, 26, 38, 255))
        draw.text((8, top + 2 - box[1]), label, fill=(255, 255, 255, 255), font=font)
    out = io.BytesIO()
    base.convert("RGB").save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _density(counts: Counter, grid_w: int, grid_h: int, sigma: float) -> array:
    """Sum of a Gaussian (in cells) around every counted cell, row by row in one float array."""
    reach_ = math.ceil(4 * sigma)
    kernel = [(dx, dy, math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)))
              for dy in range(-reach_, reach_ + 1) for dx in range(-reach_, reach_ + 1)
              if dx * dx + dy * dy <= reach_ * reach_]
    density = array("d", bytes(8 * grid_w * grid_h))
    for (cx, cy), n in counts.items():
        for dx, dy, w in kernel:
            x, y = cx + dx, cy + dy
            if 0 <= x < grid_w and 0 <= y < grid_h:
                density[y * grid_w + x] += n * w
    return density


def blank_page(clicks: Sequence[Click]) -> Page:
    """No screenshot of the page: a white page tall enough for its clicks."""
    return blank_page_to(max((c.y for c in clicks), default=0))


def blank_page_to(lowest: float) -> Page:
    """A white page tall enough for a click at CSS y `lowest`."""
    height = int(min(MAX_BLANK_HEIGHT, max(768, lowest + 100)))
    return Page(None, BLANK_WIDTH, height, BLANK_WIDTH)
