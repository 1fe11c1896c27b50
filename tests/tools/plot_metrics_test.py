"""tools/plot_metrics.py: plots both metrics formats, refuses bad input with one line and the
CLI's exit codes (docs/errors.md), never writes over its input, and writes the image whole (Note
[outputs written whole]): a failed write leaves the previous image and no temporary file."""
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "..", "..", "tools", "plot_metrics.py")
try:
    import matplotlib  # noqa: F401
except ImportError:
    print("skipped: matplotlib is not installed for this python3")
    sys.exit(77)

CSV = """epoch,lr,train_loss,val_loss,val_accuracy,grad_norm,skipped_steps,seconds,samples_per_s,loss_scale
1,0.001,0.52,nan,nan,1.9,0,1.5,800,1
2,0.0005,0.31,nan,nan,1.4,0,1.4,810,1
"""
JSONL = """{"epoch": 1, "lr": 0.001, "train_loss": 0.52, "val_loss": 0.48, "val_accuracy": 0.83}
{"epoch": 2, "lr": 0.0005, "train_loss": 0.31, "val_loss": null, "val_accuracy": 0.86}
"""


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def plot(*args, limit=None):
    def limited():
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True,
                          preexec_fn=limited, timeout=120)


def refused(status, text, *args):
    r = plot(*args)
    err = r.stderr.strip()
    if r.returncode != status or text not in err or "\n" in err or "Traceback" in err:
        fail(f"{args}: expected exit {status} with one line containing {text!r}, "
             f"got {r.returncode}: {r.stderr}")


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


with tempfile.TemporaryDirectory() as d:
    def at(name, text=None):
        p = os.path.join(d, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p

    csv_path, jsonl_path, png = at("m.csv", CSV), at("m.jsonl", JSONL), at("out.png")
    for metrics in (csv_path, jsonl_path):
        r = plot(metrics, png, "--test-accuracy", "0.9")
        if r.returncode != 0 or not is_png(png):
            fail(f"{metrics} was not plotted: {r.returncode} {r.stderr}")
    if oct(os.stat(png).st_mode & 0o777) != oct(0o666 & ~os.umask(0o022)):
        fail(f"the image has mode {oct(os.stat(png).st_mode & 0o777)}, not a new file's")

    # The arguments: exit 2.
    refused(2, "is the metrics file: writing the plot there would destroy it", csv_path, csv_path)
    os.symlink(csv_path, at("link.png"))
    refused(2, "is the metrics file", csv_path, at("link.png"))
    if open(csv_path).read() != CSV:
        fail("the metrics file was changed")
    refused(2, "the extension names the image format", csv_path, at("out.csv"))
    refused(2, "cannot read the metrics file", at("missing.csv"), png)
    refused(2, "cannot write", csv_path, os.path.join(d, "no", "such", "dir.png"))
    # The file's content: exit 1.
    refused(1, "holds no epochs", at("header.csv", CSV.splitlines()[0] + "\n"), png)
    refused(1, "holds no epochs", at("empty.jsonl", ""), png)
    refused(1, "has no column train_loss", at("other.csv", "epoch,lr\n1,0.1\n"), png)
    refused(1, "line 3: train_loss is 'abc', not a number",
            at("bad.csv", CSV.replace("0.31", "abc")), png)
    refused(1, "line 3: not a JSON object", at("bad.jsonl", JSONL + "[1, 2]\n"), png)
    refused(1, "lr is [1], not a number", at("list.jsonl", JSONL.replace("0.0005", "[1]")), png)

    # A write that fails (a 1 KiB file size limit: EFBIG) leaves the previous image whole.
    before = open(png, "rb").read()
    r = plot(csv_path, png, limit=1024)
    if r.returncode != 1 or "cannot write" not in r.stderr:
        fail(f"a failed write: exit {r.returncode}: {r.stderr}")
    if open(png, "rb").read() != before:
        fail("a failed write changed the previous image")
    left = [n for n in os.listdir(d) if n.startswith(".plot-")]
    if left:
        fail(f"temporary files left behind: {left}")

print("plot_metrics: ok")
