"""Counts the pixels of a PNG close to given colours (standard library only).

Usage: png_colors.py FILE.png RRGGBB [RRGGBB ...]
Prints JSON: {"width", "height", "distinct", "counts": {"RRGGBB": n}}, where a
pixel counts for a colour when every channel is within 16 of it. Handles
8-bit, non-interlaced greyscale/RGB/RGBA PNGs (what Chromium's --screenshot
writes); anything else is an error (exit 1).
"""
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
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    path, wanted = sys.argv[1], sys.argv[2:]
    width, height, channels, rows = decode(path)
    targets = [(w, tuple(int(w[k : k + 2], 16) for k in (0, 2, 4))) for w in wanted]
    counts = {w: 0 for w in wanted}
    distinct = set()
    for row in rows:
        for x in range(0, len(row), channels):
            px = (row[x], row[x], row[x]) if channels == 1 else tuple(row[x : x + 3])
            distinct.add(px)
            for name, t in targets:
                if all(abs(px[k] - t[k]) <= 16 for k in range(3)):
                    counts[name] += 1
    print(json.dumps({"width": width, "height": height, "distinct": len(distinct), "counts": counts}))


if __name__ == "__main__":
    main()
