#!/usr/bin/env python3
"""Run .tflite models through the real TFLM interpreter (PyPI `tflite-micro`) and print the
arena allocation it recorded, one JSON object per model on stdout:

    {"file": "m.tflite", "head": 12345, "tail": 6789, "total": 19134,
     "tail_parts": {"NodeAndRegistration struct": {"bytes": 1216, "count": 19}, ...}}

or {"file": ..., "error": "..."} when the model could not be run.

Usage: python tflm_probe.py [--arena BYTES] MODEL.tflite [MODEL.tflite ...]
       python tflm_probe.py --record-manifest DIR   (adds the measured tflm_head / tflm_tail
                                                     of every model to DIR/manifest.json)

Each model runs in a child process (this wheel may segfault on a too small arena) whose file
descriptors 1 and 2 are captured, since print_allocations() writes through C stdio.
"""
import json
import os
import re
import subprocess
import sys


def child(path, arena):
    import numpy as np
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(
        path, arena_size=arena, intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
    for i, det in enumerate(interp.get_input_details(0) and [interp.get_input_details(0)] or []):
        shape, dtype = det["shape"], det["dtype"]
        interp.set_input(np.zeros(shape, dtype=dtype), i)
    interp.invoke()
    sys.stdout.flush()
    interp.print_allocations()


def probe(path, arena):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(arena), path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    text = proc.stdout.decode("utf-8", "replace")
    found = {}
    for key in ("head", "tail", "total"):
        m = re.search(r"Arena allocation %s (\d+) bytes" % key, text)
        if m:
            found[key] = int(m.group(1))
    # the recorded tail categories, e.g. 'NodeAndRegistration struct' used 1216 bytes ...
    parts = {}
    for name, used, count in re.findall(r"'([^']+)' used (\d+) bytes .*? for (\d+) ", text):
        parts[name] = {"bytes": int(used), "count": int(count)}
    if parts:
        found["tail_parts"] = parts
    if proc.returncode != 0 or "head" not in found:
        return {"file": path, "error": "exit %d: %s" % (proc.returncode, text.strip()[-2000:])}
    found["file"] = path
    return found


def main(argv):
    if len(argv) >= 3 and argv[0] == "--child":
        child(argv[2], int(argv[1]))
        return 0
    arena = 64 * 1024 * 1024
    if len(argv) == 2 and argv[0] == "--record-manifest":
        path = os.path.join(argv[1], "manifest.json")
        with open(path) as f:
            manifest = json.load(f)
        for m in manifest:
            r = probe(os.path.join(argv[1], m["file"]), arena)
            if "error" in r:
                print(json.dumps(r), file=sys.stderr)
                return 1
            m["tflm_head"], m["tflm_tail"] = r["head"], r["tail"]
        with open(path, "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        return 0
    if len(argv) >= 2 and argv[0] == "--arena":
        arena = int(argv[1])
        argv = argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for path in argv:
        print(json.dumps(probe(path, arena)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
