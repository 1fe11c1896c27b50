"""tools/cutrain_torch.py's file writing (Note [outputs written whole]): save_tensors replaces a
file whole - a failure mid-write leaves the previous one and no temporary file - follows a link
and keeps it, and writes a named pipe in place."""
import os
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
print("cutrain_torch file writing: ok")
