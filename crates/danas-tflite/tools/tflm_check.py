#!/usr/bin/env python3
"""Check an exported int8 model in the real TFLM interpreter (PyPI `tflite-micro`)
against what danas computed, over a whole dumped test split.

Usage: python tflm_check.py MODEL.tflite DIR

DIR holds what `danas export --dump-test-set DIR` wrote: inputs.bin (int8 NHWC inputs
back to back), labels.bin (u32 little-endian), outputs.bin (danas's int8 outputs).
Prints one JSON object:
  {"images": N, "tflm_accuracy": a, "danas_accuracy": b, "max_lsb_difference": d,
   "differing_values": k, "differing_predictions": p}
and exits 1 if the model cannot be run.
"""
import json
import os
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import numpy as np
    from tflite_micro import runtime

    model, d = argv
    interp = runtime.Interpreter.from_file(model, arena_size=64 * 1024 * 1024)
    ind, outd = interp.get_input_details(0), interp.get_output_details(0)
    shape = [int(v) for v in ind["shape"]]
    per_in, per_out = int(np.prod(shape)), int(np.prod(outd["shape"]))
    inputs = np.fromfile(os.path.join(d, "inputs.bin"), dtype=np.int8)
    labels = np.fromfile(os.path.join(d, "labels.bin"), dtype="<u4")
    ours = np.fromfile(os.path.join(d, "outputs.bin"), dtype=np.int8)
    n = labels.size
    if inputs.size != n * per_in or ours.size != n * per_out:
        print(json.dumps({"error": "sizes disagree: %d inputs, %d labels, %d outputs" % (inputs.size, n, ours.size)}))
        return 1
    tflm = np.zeros(n * per_out, dtype=np.int8)
    for i in range(n):
        interp.set_input(inputs[i * per_in:(i + 1) * per_in].reshape(shape), 0)
        interp.invoke()
        tflm[i * per_out:(i + 1) * per_out] = np.asarray(interp.get_output(0), dtype=np.int8).reshape(-1)
    t, o = tflm.reshape(n, per_out), ours.reshape(n, per_out)
    diff = np.abs(t.astype(np.int32) - o.astype(np.int32))
    # Ties resolve to the first class, as danas's argmax does.
    tp, op = t.argmax(axis=1), o.argmax(axis=1)
    print(json.dumps({
        "images": int(n),
        "tflm_accuracy": float((tp == labels).mean()) if n else 0.0,
        "danas_accuracy": float((op == labels).mean()) if n else 0.0,
        "max_lsb_difference": int(diff.max()) if n else 0,
        "differing_values": int((diff > 0).sum()),
        "differing_predictions": int((tp != op).sum()),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
