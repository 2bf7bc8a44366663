#!/usr/bin/env python3
"""Writes the app's PNG icons (public/icon-192.png, icon-512.png, icon-maskable-512.png) from
the same shapes as public/favicon.svg: an indigo rounded square with a white speech bubble.
No imaging library: the shapes are rasterized here, 4x4 supersampled, and encoded with zlib."""
import struct
import sys
import zlib
from pathlib import Path

INDIGO = (0x4F, 0x46, 0xE5)
WHITE = (0xFF, 0xFF, 0xFF)
# The bubble of favicon.svg, in its 32x32 box: M8 10h16v9H15l-5 4v-4H8z
BUBBLE = [(8, 10), (24, 10), (24, 19), (15, 19), (10, 23), (10, 19), (8, 19)]


def inside(poly, x, y):
    hit = False
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def rounded(x, y, size, radius):
    cx = min(max(x, radius), size - radius)
    cy = min(max(y, radius), size - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def render(size, maskable):
    # A maskable icon fills its square (the platform cuts the shape) and keeps the bubble
    # inside the 80% safe zone; the plain one is the favicon's rounded square.
    scale = size / 32 * (0.7 if maskable else 1.0)
    offset = (size - 32 * scale) / 2
    rows = []
    n = 4
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(n):
                for sx in range(n):
                    x, y = px + (sx + 0.5) / n, py + (sy + 0.5) / n
                    if not maskable and not rounded(x, y, size, size * 7 / 32):
                        continue
                    bx, by = (x - offset) / scale, (y - offset) / scale
                    color = WHITE if inside(BUBBLE, bx, by) else INDIGO
                    for i in range(3):
                        acc[i] += color[i]
                    acc[3] += 255
            k = n * n
            alpha = acc[3] / k
            rgb = [round(c / (acc[3] / 255)) if acc[3] else 0 for c in acc[:3]]
            row += bytes(rgb + [round(alpha)])
        rows.append(bytes(row))
    return png(size, b"".join(rows))


def png(size, raw):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    public = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "public")
    for name, size, maskable in [("icon-192.png", 192, False), ("icon-512.png", 512, False), ("icon-maskable-512.png", 512, True)]:
        (public / name).write_bytes(render(size, maskable))


if __name__ == "__main__":
    main()
