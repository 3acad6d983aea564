"""Counts the pixels of a PNG close to given colours (standard library only).

Usage: png_colors.py FILE.png RRGGBB [RRGGBB ...]
Prints JSON: {"width", "height", "distinct", "counts": {"RRGGBB": n}}, where a
pixel counts for a colour when every channel is within 16 of it. Handles
8-bit, non-interlaced greyscale/RGB/RGBA PNGs (what Chromium's --screenshot
writes); anything else is an error (exit 1).
"""
import collections
import itertools
import json
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise SystemExit(f"{path}: no IHDR")
    width, height, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace != 0:
        raise SystemExit(f"{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev, i = [], bytes(stride), 0
    for _ in range(height):
        f = raw[i]
        line = raw[i + 1 : i + 1 + stride]
        i += 1 + stride
        if f == 1:
            line = sub(line, channels)
        elif f == 2:
            line = add_bytes(line, prev)
        elif f in (3, 4):
            line = average_or_paeth(f, line, prev, channels)
        elif f != 0:
            raise SystemExit(f"{path}: unknown PNG filter {f}")
        rows.append(line)
        prev = line
    return width, height, channels, rows


# The PNG filters, undone (RFC 2083 6.3). Up and Sub run at C speed (integer
# arithmetic on whole rows, itertools); only Average and Paeth go byte by byte.
def add_bytes(x, y):
    """Bytewise (x + y) mod 256 of two equal-length byte strings."""
    n = len(x)
    low = int.from_bytes(b"\x7f" * n, "big")
    high = int.from_bytes(b"\x80" * n, "big")
    a, b = int.from_bytes(x, "big"), int.from_bytes(y, "big")
    return (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(n, "big")


def sub(line, channels):
    out = bytearray(len(line))
    for c in range(channels):
        sums = itertools.accumulate(line[c::channels])
        out[c::channels] = bytes(map((255).__and__, sums))
    return bytes(out)


def average_or_paeth(f, line, prev, channels):
    out = bytearray(line)
    for x in range(len(out)):
        a = out[x - channels] if x >= channels else 0
        b = prev[x]
        if f == 3:
            out[x] = (out[x] + (a + b) // 2) & 255
            continue
        c = prev[x - channels] if x >= channels else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[x] = (out[x] + pred) & 255
    return bytes(out)


def main():
    path, wanted = sys.argv[1], sys.argv[2:]
    width, height, channels, rows = decode(path)
    targets = [(w, tuple(int(w[k : k + 2], 16) for k in (0, 2, 4))) for w in wanted]
    # Pixels counted by colour at C speed, then each distinct colour checked.
    colours = collections.Counter()
    for row in rows:
        colours.update(row[x : x + channels] for x in range(0, len(row), channels))
    counts = {w: 0 for w in wanted}
    distinct = set()
    for px, n in colours.items():
        rgb = (px[0], px[0], px[0]) if channels == 1 else tuple(px[:3])
        distinct.add(rgb)
        for name, t in targets:
            if all(abs(rgb[k] - t[k]) <= 16 for k in range(3)):
                counts[name] += n
    print(json.dumps({"width": width, "height": height, "distinct": len(distinct), "counts": counts}))


if __name__ == "__main__":
    main()
