"""Line charts as PNG files with the standard library only (zlib + struct).

How this works: a ``Canvas`` is an RGB pixel buffer; ``line_chart`` draws one panel
(axes, grid, numbered ticks in a 3x5 pixel digit font, one polyline with dots per
series) into a rectangle of it, and ``save_png`` writes the buffer as a PNG (one IDAT,
filter 0). Good enough to see throughput and latency against offered load without
installing a plotting library; series colours are named in the benchmark's output.
"""

from __future__ import annotations

import struct
import zlib

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (200, 200, 200)
BLUE = (31, 119, 180)
ORANGE = (255, 127, 14)
GREEN = (44, 160, 44)
RED = (214, 39, 40)

#: 3x5 glyphs of the characters tick labels use.
GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "k": "100101110101101",
}
#: Glyph scale in pixels.
FONT_SCALE = 2
TICKS = 5


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def set(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i:i + 3] = bytes(colour)

    def line(self, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int], dash: int = 0) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            if dash and (s // dash) % 2:
                continue
            x = x0 + (x1 - x0) * s // steps
            y = y0 + (y1 - y0) * s // steps
            self.set(x, y, colour)
            self.set(x, y + 1, colour)

    def dot(self, x: int, y: int, colour: tuple[int, int, int], r: int = 3) -> None:
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                if dx * dx + dy * dy <= r * r:
                    self.set(x + dx, y + dy, colour)

    def text(self, x: int, y: int, text: str, colour: tuple[int, int, int] = BLACK) -> None:
        for ch in text:
            glyph = GLYPHS.get(ch)
            if glyph:
                for i, bit in enumerate(glyph):
                    if bit == "1":
                        for sx in range(FONT_SCALE):
                            for sy in range(FONT_SCALE):
                                self.set(x + (i % 3) * FONT_SCALE + sx, y + (i // 3) * FONT_SCALE + sy, colour)
            x += 4 * FONT_SCALE


def _label(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def line_chart(canvas: Canvas, box: tuple[int, int, int, int], xs: list[float],
               series: list[tuple[list[float], tuple[int, int, int]]], diagonal: bool = False) -> None:
    """One panel in ``box`` = (left, top, right, bottom); y starts at 0."""
    left, top, right, bottom = box
    x_max = max(xs) * 1.05 if xs else 1.0
    y_max = max([max(v, default=0) for v, _ in series] + ([max(xs)] if diagonal else []), default=1.0) * 1.1 or 1.0

    def px(x: float) -> int:
        return left + int((right - left) * x / x_max)

    def py(y: float) -> int:
        return bottom - int((bottom - top) * y / y_max)

    for t in range(TICKS + 1):
        gy = py(y_max * t / TICKS)
        canvas.line(left, gy, right, gy, GREY)
        canvas.text(left - 6 - 4 * FONT_SCALE * len(_label(y_max * t / TICKS)), gy - 5, _label(y_max * t / TICKS))
        gx = px(x_max * t / TICKS)
        canvas.line(gx, top, gx, bottom, GREY)
        canvas.text(gx - 8, bottom + 6, _label(x_max * t / TICKS))
    canvas.line(left, top, left, bottom, BLACK)
    canvas.line(left, bottom, right, bottom, BLACK)
    if diagonal:
        canvas.line(px(0), py(0), px(min(x_max, y_max)), py(min(x_max, y_max)), GREY, dash=6)
    for values, colour in series:
        points = [(px(x), py(y)) for x, y in zip(xs, values)]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            canvas.line(x0, y0, x1, y1, colour)
        for x, y in points:
            canvas.dot(x, y, colour)


def save_png(canvas: Canvas, path: str) -> None:
    rows = b"".join(b"\x00" + bytes(canvas.pixels[3 * canvas.width * y:3 * canvas.width * (y + 1)])
                    for y in range(canvas.height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", canvas.width, canvas.height, 8, 2, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
