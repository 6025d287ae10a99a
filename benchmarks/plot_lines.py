"""Line-plot panels drawn with PIL alone (the project's env has no matplotlib): one panel per
series group over a shared x axis, shaded x spans (e.g. silent audio), a legend and y ticks.
Enough for the benchmark notes' figures; not a general plotting library."""
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]


def _font(size: int):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:   # Pillow without FreeType sizes
    return ImageFont.load_default()


def _nice_ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
  step = (hi - lo) / max(count - 1, 1)
  magnitude = 10 ** np.floor(np.log10(step)) if step > 0 else 1.0
  step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step),
             default=magnitude)
  return np.arange(np.ceil(lo / step) * step, hi + 1e-12, step)


def draw_panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], x: np.ndarray,
               series: Sequence[tuple[str, np.ndarray, Color, int]], shade: np.ndarray,
               title: str, x_label: str, y_range: tuple[float, float]) -> None:
  """One panel in `box` (left, top, right, bottom): `series` (label, y, colour, width) over `x`;
  `shade` a boolean per x, drawn as grey columns; y axis over `y_range` with ticks."""
  small, normal = _font(13), _font(15)
  left, top, right, bottom = box
  px0, py0, px1, py1 = left + 62, top + 26, right - 10, bottom - 36
  lo, hi = y_range
  to_px = lambda xv, yv: (px0 + (xv - x[0]) / max(x[-1] - x[0], 1e-9) * (px1 - px0),
                          py1 - (yv - lo) / max(hi - lo, 1e-12) * (py1 - py0))
  half = 0.5 * (x[1] - x[0]) if len(x) > 1 else 0.5
  for xv, on in zip(x, shade):
    if on:
      a, _ = to_px(max(xv - half, x[0]), lo)
      b, _ = to_px(min(xv + half, x[-1]), lo)
      draw.rectangle([a, py0, b, py1], fill=(222, 222, 222))
  for tick in _nice_ticks(lo, hi):
    _, ty = to_px(x[0], tick)
    draw.line([px0, ty, px1, ty], fill=(235, 235, 235) if tick else (170, 170, 170))
    draw.text((px0 - 6, ty), f"{tick:.2f}", fill=(0, 0, 0), font=small, anchor="rm")
  for tick in _nice_ticks(float(x[0]), float(x[-1]), 7):
    tx, _ = to_px(tick, lo)
    draw.line([tx, py1, tx, py1 + 4], fill=(0, 0, 0))
    draw.text((tx, py1 + 6), f"{tick:g}", fill=(0, 0, 0), font=small, anchor="mt")
  draw.rectangle([px0, py0, px1, py1], outline=(0, 0, 0))
  for _, y, color, width in series:
    draw.line([to_px(xv, float(np.clip(yv, lo, hi))) for xv, yv in zip(x, y)], fill=color,
              width=width, joint="curve")
  draw.text((px0, top + 4), title, fill=(0, 0, 0), font=normal)
  draw.text(((px0 + px1) / 2, bottom - 14), x_label, fill=(0, 0, 0), font=small, anchor="mm")


def draw_legend(draw: ImageDraw.ImageDraw, origin: tuple[int, int],
                entries: Sequence[tuple[str, Color, int]]) -> None:
  """A one-row legend: a short line in each colour, then its label; (label, colour, width)."""
  font = _font(14)
  x, y = origin
  for label, color, width in entries:
    if color is None:   # a shaded-area entry
      draw.rectangle([x, y - 7, x + 24, y + 7], fill=(222, 222, 222), outline=(160, 160, 160))
    else:
      draw.line([x, y, x + 24, y], fill=color, width=max(width, 2))
    draw.text((x + 30, y), label, fill=(0, 0, 0), font=font, anchor="lm")
    x += 40 + int(draw.textlength(label, font=font))


def save_panels(path: str, panels: Sequence[dict], legend: Sequence[tuple[str, Color, int]],
                width: int = 1100, panel_height: int = 300, heading: str = "") -> None:
  """Stack `panels` (kwargs of `draw_panel` without draw/box, plus an optional 'height' in
  pixels, default `panel_height`) under a heading and a legend."""
  head = 56 if heading else 34
  heights = [int(p.get("height", panel_height)) for p in panels]
  image = Image.new("RGB", (width, head + sum(heights)), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  if heading:
    draw.text((12, 8), heading, fill=(0, 0, 0), font=_font(16))
  draw_legend(draw, (70, head - 16), legend)
  top = head
  for panel, height in zip(panels, heights):
    kwargs = {k: v for k, v in panel.items() if k != "height"}
    draw_panel(draw, (0, top, width, top + height), **kwargs)
    top += height
  image.save(path)
