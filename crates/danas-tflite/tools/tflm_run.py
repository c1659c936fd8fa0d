#!/usr/bin/env python3
"""Run an int8 .tflite model through the real TFLM interpreter (PyPI `tflite-micro`) on
many inputs and write its outputs.

Usage: python tflm_run.py MODEL.tflite INPUTS.bin OUTPUTS.bin

INPUTS.bin holds N inputs back to back, each the model input's element count of int8
values (NHWC); OUTPUTS.bin receives the N int8 outputs back to back. Prints one JSON
object: {"images": N, "input": [shape], "output": [shape]}, or {"error": ...} with exit
status 1 when the model cannot be loaded or run.
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    import numpy as np
    from tflite_micro import runtime

    model, inputs, outputs = argv
    try:
        interp = runtime.Interpreter.from_file(model, arena_size=64 * 1024 * 1024)
        ind = interp.get_input_details(0)
        outd = interp.get_output_details(0)
        shape = [int(d) for d in ind["shape"]]
        if ind["dtype"] != np.int8 or outd["dtype"] != np.int8:
            raise ValueError("input %s / output %s are not int8" % (ind["dtype"], outd["dtype"]))
        per = int(np.prod(shape))
        raw = np.fromfile(inputs, dtype=np.int8)
        if per == 0 or raw.size % per != 0:
            raise ValueError("%s: %d values are not a whole number of %d-value inputs" % (inputs, raw.size, per))
        n = raw.size // per
        out = []
        for i in range(n):
            interp.set_input(raw[i * per:(i + 1) * per].reshape(shape), 0)
            interp.invoke()
            out.append(np.asarray(interp.get_output(0), dtype=np.int8).reshape(-1))
        result = np.concatenate(out) if out else np.zeros(0, dtype=np.int8)
        result.tofile(outputs)
        print(json.dumps({"images": n, "input": shape, "output": [int(d) for d in outd["shape"]]}))
        return 0
    except Exception as e:  # report any failure as one JSON line
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
