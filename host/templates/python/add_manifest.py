#!/usr/bin/env python3
"""Finish a componentize-py component for Warden.

    add_manifest.py IN.wasm OUT.wasm --manifest warden.toml [--drop-export exports]

1. Appends the manifest as a top-level custom section named `warden-manifest`
   (id 0, LEB128 size, LEB128 name length, name, payload). Refuses a component
   that already has one: the host rejects two.
2. With --drop-export NAME (build.sh passes `exports`), removes the top-level
   instance export NAME. componentize-py leaves its build-time `exports`
   interface (the `init` function its pre-initialisation calls) exported from
   the final component, and Warden refuses a plugin that exports anything
   besides its role's interface. Every export creates an index in the
   instance index space and later sections refer to instances by index, so
   the export is replaced in place by an empty instance (`(instance)`, an
   instance section with one inline-export bag of no items): all indices stay
   as they were and nothing else needs rewriting. The init function is still
   in the component, merely unreachable.

Only the standard library; only the top level of the component is touched.
"""

import argparse
import sys

MAGIC = b"\x00asm"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"
SECTION_CUSTOM = 0
SECTION_INSTANCE = 5
SECTION_EXPORT = 11
SORT_INSTANCE = 0x05
MANIFEST_SECTION = "warden-manifest"


class FormatError(Exception):
    pass


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_u32(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise FormatError("truncated LEB128 number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise FormatError("LEB128 number too long")


def read_name(data, pos):
    length, pos = read_u32(data, pos)
    if pos + length > len(data):
        raise FormatError("truncated name")
    return data[pos:pos + length].decode("utf-8"), pos + length


def custom_section(name, payload):
    encoded = name.encode("utf-8")
    body = leb128(len(encoded)) + encoded + payload
    return bytes([SECTION_CUSTOM]) + leb128(len(body)) + body


def sections(component):
    """The top-level sections as (id, payload, raw bytes)."""
    if component[:4] != MAGIC or component[4:8] != COMPONENT_VERSION:
        raise FormatError("not a WebAssembly component (wrong magic or layer/version)")
    pos = 8
    while pos < len(component):
        section_id = component[pos]
        size, body = read_u32(component, pos + 1)
        end = body + size
        if end > len(component):
            raise FormatError(f"section {section_id} at byte {pos} runs past the end")
        yield section_id, component[body:end], component[pos:end]
        pos = end


def skip_externdesc(data, pos):
    kind = data[pos]
    pos += 1
    if kind == 0x00:  # core module: 0x11 typeidx
        if data[pos] != 0x11:
            raise FormatError("unexpected core extern description")
        return read_u32(data, pos + 1)[1]
    if kind in (0x01, 0x04, 0x05):  # func, component, instance: typeidx
        return read_u32(data, pos)[1]
    if kind == 0x03:  # type bound: eq typeidx | sub resource
        bound = data[pos]
        if bound == 0x00:
            return read_u32(data, pos + 1)[1]
        if bound == 0x01:
            return pos + 1
    raise FormatError(f"unsupported extern description 0x{kind:02x} in an export")


def export_entries(payload):
    """Split an export section's payload into (name, sort, raw entry bytes)."""
    count, pos = read_u32(payload, 0)
    entries = []
    for _ in range(count):
        start = pos
        if payload[pos] != 0x00:
            raise FormatError(f"unsupported export name form 0x{payload[pos]:02x}")
        name, pos = read_name(payload, pos + 1)
        sort = payload[pos]
        pos += 2 if sort == 0x00 else 1  # core sorts carry a second byte
        _, pos = read_u32(payload, pos)  # the item's index
        has_type = payload[pos]
        pos += 1
        if has_type == 0x01:
            pos = skip_externdesc(payload, pos)
        elif has_type != 0x00:
            raise FormatError("malformed export entry")
        entries.append((name, sort, payload[start:pos]))
    if pos != len(payload):
        raise FormatError("trailing bytes in an export section")
    return entries


def section(section_id, entries):
    body = leb128(len(entries)) + b"".join(entries)
    return bytes([section_id]) + leb128(len(body)) + body


# An instance section holding one instance made of no exports: `(instance)`.
EMPTY_INSTANCE_SECTION = section(SECTION_INSTANCE, [b"\x01\x00"])


def finish(component, manifest, drop_exports=()):
    out = [component[:8]]
    dropped = set()
    for section_id, payload, raw in sections(component):
        if section_id == SECTION_CUSTOM and read_name(payload, 0)[0] == MANIFEST_SECTION:
            raise FormatError(f"the component already has a `{MANIFEST_SECTION}` section")
        if section_id != SECTION_EXPORT or not drop_exports:
            out.append(raw)
            continue
        entries = export_entries(payload)
        if not any(name in drop_exports for name, _, _ in entries):
            out.append(raw)
            continue
        kept = []
        for name, sort, entry in entries:
            if name not in drop_exports:
                kept.append(entry)
                continue
            if sort != SORT_INSTANCE:
                raise FormatError(f"export `{name}` is not an instance; refusing to drop it")
            if kept:
                out.append(section(SECTION_EXPORT, kept))
                kept = []
            out.append(EMPTY_INSTANCE_SECTION)
            dropped.add(name)
        if kept:
            out.append(section(SECTION_EXPORT, kept))
    missing = set(drop_exports) - dropped
    if missing:
        raise FormatError("no top-level export named " + ", ".join(f"`{m}`" for m in sorted(missing)))
    out.append(custom_section(MANIFEST_SECTION, manifest))
    return b"".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--manifest", required=True, help="the warden.toml to embed")
    parser.add_argument("--drop-export", action="append", default=[], metavar="NAME",
                        help="a top-level instance export to remove (repeatable)")
    args = parser.parse_args(argv)
    with open(args.manifest, "rb") as f:
        manifest = f.read()
    try:
        manifest.decode("utf-8")
    except UnicodeDecodeError:
        sys.exit(f"add_manifest: {args.manifest} is not UTF-8")
    with open(args.input, "rb") as f:
        component = f.read()
    try:
        finished = finish(component, manifest, args.drop_export)
    except FormatError as e:
        sys.exit(f"add_manifest: {args.input}: {e}")
    with open(args.output, "wb") as f:
        f.write(finished)


if __name__ == "__main__":
    main()
