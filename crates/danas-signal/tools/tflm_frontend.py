#!/usr/bin/env python3
"""Run a danas preprocessor.tflite frame by frame in the real TFLM interpreter (PyPI
`tflite-micro`, which registers TFLM's signal ops) and write its outputs.

Usage: python tflm_frontend.py MODEL CLIPS.i16 CLIPS SAMPLES WINDOW STRIDE OUT.bin

CLIPS.i16 holds CLIPS clips of SAMPLES little-endian int16 samples each. Every clip runs
from a freshly allocated interpreter (the spectral subtraction's noise estimate starts at
zero), one invocation per frame: frame k is samples k*STRIDE .. k*STRIDE+WINDOW. OUT.bin
receives, per clip and frame, output 0 (int16 features) then output 1 (int8 features).
Prints one JSON line: {"clips": N, "frames": F}.
"""
import json
import sys

import numpy as np
from tflite_micro import runtime


def main(argv):
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    model, clips_path, n, samples, window, stride, out_path = argv
    n, samples, window, stride = int(n), int(samples), int(window), int(stride)
    data = np.fromfile(clips_path, dtype="<i2")
    if data.size != n * samples:
        print("expected %d samples, found %d" % (n * samples, data.size), file=sys.stderr)
        return 2
    frames = 0 if samples < window else 1 + (samples - window) // stride
    with open(model, "rb") as f:
        model_bytes = f.read()
    with open(out_path, "wb") as out:
        for c in range(n):
            clip = data[c * samples:(c + 1) * samples]
            interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=1 << 20)
            for k in range(frames):
                interp.set_input(clip[k * stride:k * stride + window].astype(np.int16), 0)
                interp.invoke()
                out.write(np.asarray(interp.get_output(0), dtype="<i2").tobytes())
                out.write(np.asarray(interp.get_output(1), dtype=np.int8).tobytes())
    print(json.dumps({"clips": n, "frames": frames}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
