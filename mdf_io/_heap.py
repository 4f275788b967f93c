"""Checks of the HDF5 global heap behind variable-length strings, done before HDF5 reads them.

A variable-length string dataset stores, per element, a heap ID (length, collection address,
object index); the text lives in a global-heap collection ("GCOL"). HDF5 (2.0) decodes the
whole collection when one string is read and loops forever on a corrupt object size (a single
flipped byte is enough). :func:`check_vlen_strings` walks each referenced collection the way
HDF5 does and refuses one whose walk would not advance or would leave the collection.

Only contiguous and unfiltered chunked datasets can be inspected (their heap IDs are read
straight from the file); compact or compressed string datasets are read without this check.
"""
from __future__ import annotations

import math

import h5py

from .errors import MDFFormatError

_MAX_OBJECTS = 1 << 16


def check_vlen_strings(f: h5py.File, name: str, ds: h5py.Dataset) -> None:
    """Raise :class:`MDFFormatError` if a heap collection used by ``ds`` is corrupt."""
    tid = ds.id.get_type()
    if tid.get_class() != h5py.h5t.STRING or not tid.is_variable_str():
        return
    fcpl = f.id.get_create_plist()
    addr_size, len_size = fcpl.get_sizes()
    base = fcpl.get_userblock()
    step = 4 + addr_size + 4
    want = math.prod(ds.shape or ()) * step
    with open(f.filename, "rb") as fh:
        file_size = fh.seek(0, 2)
        collections: dict[int, dict] = {}
        for offset, size in _raw_extents(ds):
            size = min(size, want)
            if offset is None or base + offset + size > file_size:
                raise MDFFormatError(f.filename, name, "string references stored in the file",
                                     f"{size} bytes at byte {offset} (file: {file_size} bytes)")
            fh.seek(base + offset)
            raw = fh.read(size)
            for i in range(0, len(raw) - step + 1, step):
                length = int.from_bytes(raw[i:i + 4], "little")
                addr = int.from_bytes(raw[i + 4:i + 4 + addr_size], "little")
                index = int.from_bytes(raw[i + 4 + addr_size:i + step], "little")
                if length == 0 or addr in (0, (1 << 8 * addr_size) - 1):
                    continue
                if addr not in collections:
                    collections[addr] = _walk_collection(fh, base + addr, file_size, len_size,
                                                         f.filename, name)
                objects = collections[addr]
                if index not in objects or objects[index] < length:
                    raise MDFFormatError(f.filename, name, "text stored in the file's global heap",
                                         f"a dangling heap reference (object {index})")


def _raw_extents(ds: h5py.Dataset):
    """(file offset, size) of the raw data of a contiguous or unfiltered chunked dataset."""
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        return [] if offset is None else [(offset, ds.id.get_storage_size())]
    if layout == h5py.h5d.CHUNKED and dcpl.get_nfilters() == 0:
        chunks = []
        for i in range(ds.id.get_num_chunks()):
            info = ds.id.get_chunk_info(i)
            chunks.append((info.byte_offset, info.size))
        return chunks
    return []


def _walk_collection(fh, start: int, file_size: int, len_size: int, path, name) -> dict:
    """Object index -> size of the collection at ``start``, walked as HDF5 decodes it."""
    def bad(why):
        return MDFFormatError(path, name, "a valid global heap collection for its text", why)

    head = 8 + len_size
    if start + head > file_size:
        raise bad(f"a collection address ({start}) beyond the end of the file ({file_size} bytes)")
    fh.seek(start)
    header = fh.read(head)
    if len(header) < head or header[:4] != b"GCOL" or header[4] != 1:
        raise bad(f"no heap collection at byte {start}")
    size = int.from_bytes(header[8:head], "little")
    if size < head or start + size > file_size:
        raise bad(f"a collection of {size} bytes at byte {start} (file: {file_size})")
    fh.seek(start)
    chunk = fh.read(size)
    objhdr = 8 + len_size
    objects, p = {}, head
    for _ in range(_MAX_OBJECTS):
        if p >= size:
            return objects
        if p + objhdr > size:  # too small for an object: free space
            return objects
        index = int.from_bytes(chunk[p:p + 2], "little")
        obj_size = int.from_bytes(chunk[p + 8:p + objhdr], "little")
        need = obj_size if index == 0 else objhdr + -(-obj_size // 8) * 8
        if need <= 0 or p + need > size:
            raise bad(f"heap object {index} of {obj_size} bytes at offset {p} of {size}")
        if index:
            objects[index] = obj_size
        p += need
    raise bad("too many heap objects")
