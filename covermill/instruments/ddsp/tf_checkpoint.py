"""Read a TensorFlow checkpoint's model variables into an ``.npz``; run as a script in its own process.

``python tf_checkpoint.py PREFIX OUT.npz`` reads every tensor of the checkpoint ``PREFIX`` (so a
corrupt or truncated data file fails on its CRC32C) and saves the ``model/...`` variables (optimizer
slots left out) to ``OUT.npz`` under their object paths without ``/.ATTRIBUTES/VARIABLE_VALUE``.
On failure it prints one line to stderr and exits 3. :mod:`.magenta` runs it in a subprocess:
TensorFlow loaded into covermill's own process makes a later import of triton (torch's compiler,
imported by e.g. ``torch.optim``) crash the process, so TensorFlow never enters it.
This file imports nothing from covermill.
"""

from __future__ import annotations

import os
import sys

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def main(prefix: str, out: str) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except Exception as exc:
        print(f"{prefix}.index: corrupt or not a TensorFlow checkpoint ({_first_line(exc)})", file=sys.stderr)
        return 3
    arrays = {}
    for name in sorted(shapes):
        try:
            value = reader.get_tensor(name)
        except Exception as exc:
            print(f"{prefix}: corrupt or truncated checkpoint data reading {name} ({_first_line(exc)}); copy the "
                  "checkpoint again", file=sys.stderr)
            return 3
        if name.endswith(SUFFIX) and ".OPTIMIZER_SLOT" not in name and name.startswith("model/"):
            value = np.asarray(value)
            if value.dtype.kind not in "fiub":
                continue
            arrays[name[: -len(SUFFIX)]] = value
    # arrays as arr_0, arr_1, ... and their names (a str array: loads without pickle) beside them
    np.savez(out, *arrays.values(), __names__=np.array(list(arrays), dtype=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
