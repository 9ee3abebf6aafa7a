#!/usr/bin/env python3
"""Write the sparse fuzz-input form of an image (see fuzz/src/lib.rs):
"DXSP" | u64 LE image length | { u32 LE sector number | 512 bytes }* for every non-zero sector.

usage: mkseed.py IMAGE OUT [--offset BYTES]
"""
import struct
import sys

SECTOR = 512


def main():
    args = sys.argv[1:]
    offset = 0
    if "--offset" in args:
        i = args.index("--offset")
        offset = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    src, dst = args
    with open(src, "rb") as f:
        f.seek(0, 2)
        length = f.tell() - offset
        f.seek(offset)
        out = [b"DXSP", struct.pack("<Q", length)]
        n = 0
        zero = bytes(SECTOR)
        while True:
            s = f.read(SECTOR)
            if not s:
                break
            if s != zero[: len(s)]:
                out.append(struct.pack("<I", n))
                out.append(s.ljust(SECTOR, b"\0"))
            n += 1
    with open(dst, "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
