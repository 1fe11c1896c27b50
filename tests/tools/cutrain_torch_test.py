"""tools/cutrain_torch.py's files: save_tensors replaces a file whole (Note [outputs written
whole]) - a failure mid-write leaves the previous one and no temporary file - follows a link and
keeps it, writes a named pipe in place, and records the data's CRC-32 (Note [data checksum]);
read_tensors refuses what cutrain refuses - a file that is not safetensors, a truncated or
inconsistent one, data that does not match its checksum - with a ValueError naming the file."""
import json
import os
import struct
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
try:
    import torch
except ImportError:
    print("skipped: PyTorch is not installed for this python3")
    sys.exit(77)

import cutrain_torch  # noqa: E402


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "w.safetensors")
    a = {"x": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    cutrain_torch.save_tensors(path, a, {"format": "pt"})
    back = cutrain_torch.read_tensors(path)
    if not torch.equal(back["x"], a["x"]):
        fail("a round trip changed the values")
    before = open(path, "rb").read()

    # A failure before the rename (here: the sync) leaves the previous file and nothing beside it.
    real_fsync = os.fsync
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    os.fsync = broken_fsync
    try:
        cutrain_torch.save_tensors(path, {"x": torch.zeros(1000)})
        fail("a failed write was not reported")
    except OSError:
        pass
    finally:
        os.fsync = real_fsync
    if open(path, "rb").read() != before:
        fail("a failed write damaged the previous file")
    if sorted(os.listdir(d)) != ["w.safetensors"]:
        fail(f"a failed write left files behind: {os.listdir(d)}")

    # A link: its target is written, the link stays.
    os.symlink("target.safetensors", os.path.join(d, "link.safetensors"))
    cutrain_torch.save_tensors(os.path.join(d, "link.safetensors"), a)
    if not os.path.islink(os.path.join(d, "link.safetensors")):
        fail("the link was replaced")
    if not torch.equal(cutrain_torch.read_tensors(os.path.join(d, "target.safetensors"))["x"], a["x"]):
        fail("the link's target was not written")

    # A named pipe is written in place.
    fifo = os.path.join(d, "out.fifo")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    cutrain_torch.save_tensors(fifo, a)
    reader.join()
    if not os.path.exists(fifo) or os.path.isfile(fifo):
        fail("the named pipe was replaced")
    if got[0] != open(os.path.join(d, "target.safetensors"), "rb").read():
        fail("the pipe did not carry the file")

    # What read_tensors refuses, each a ValueError naming the file and the defect.
    def refused(data, text):
        bad = os.path.join(d, "bad.safetensors")
        with open(bad, "wb") as f:
            f.write(data)
        try:
            cutrain_torch.read_tensors(bad)
        except ValueError as e:
            if bad not in str(e) or text not in str(e):
                fail(f"refused, but said {e!r}; expected {text!r}")
            return
        fail(f"{data[:40]!r}... was read; expected {text!r}")

    good = open(path, "rb").read()
    (n,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + n])
    if "cutrain.data_crc32" not in header["__metadata__"]:
        fail("save_tensors wrote no checksum")
    refused(b"x1,x2,label\n0.5,0.25,1\n", "not a safetensors file, or a damaged one")
    refused(b"\x01\x00", "shorter than its 8-byte header length")
    refused(good[:8] + b"[" + good[9:], "its header is not JSON")
    refused(good[:-4], "lie outside")  # truncated
    flipped = bytearray(good)
    flipped[-1] ^= 0x40
    refused(bytes(flipped), "does not match its checksum")
    def with_header(h):
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + good[8 + n:]
    h = json.loads(good[8:8 + n])
    h["x"]["shape"] = [7, 3]
    refused(with_header(h), "bytes for shape [7, 3]")
    h["x"] = {"dtype": "F32", "shape": "2x3", "data_offsets": [0, 24]}
    refused(with_header(h), "not a tensor entry")

# save_model names what it cannot write and how to write it instead: a SyncBatchNorm (torch's
# DDP conversion) is saved as the BatchNorm it was made from.
with tempfile.TemporaryDirectory() as d:
    def plain():
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    try:  # (convert_sync_batchnorm replaces the children in place)
        cutrain_torch.save_model(torch.nn.SyncBatchNorm.convert_sync_batchnorm(plain()),
                                 os.path.join(d, "m.safetensors"))
        fail("save_model wrote a SyncBatchNorm")
    except ValueError as e:
        if "module 1: torch.nn.SyncBatchNorm: save the model before" not in str(e):
            fail(f"SyncBatchNorm refused without the fix: {e}")
    cutrain_torch.save_model(plain(), os.path.join(d, "m.safetensors"))

# A residual block with a projection shortcut (torchvision's BasicBlock with its downsample)
# goes through save_model and build_model whole: its modules, names and outputs.
with tempfile.TemporaryDirectory() as d:
    torch.manual_seed(3)
    nn = torch.nn
    block = cutrain_torch.Residual(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4),
                                   nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                                   shortcut=[nn.Conv2d(2, 4, 1, stride=2, bias=False),
                                             nn.BatchNorm2d(4)])
    model = nn.Sequential(nn.Unflatten(1, (2, 6, 5)), block, nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 3)).eval()
    with torch.no_grad():
        model[1].shortcut[1].running_var.uniform_(0.5, 2.0)
    path = os.path.join(d, "block.safetensors")
    cutrain_torch.save_model(model, path)
    back = cutrain_torch.build_model(path)
    if "1.shortcut.0.weight" not in back.state_dict() or "1.shortcut.1.running_var" not in back.state_dict():
        fail(f"build_model lost the shortcut: {list(back.state_dict())}")
    x = torch.randn(4, 60)
    with torch.no_grad():
        if not torch.equal(back(x), model(x)):
            fail("the rebuilt block computes otherwise")
        plain = x.reshape(4, 2, 6, 5)
        want = model[1].shortcut(plain) + model[1].body(plain)
        if not torch.equal(model[1](plain), want):
            fail("Residual with a shortcut is not shortcut(x) + body(x)")
print("cutrain_torch files: ok")
