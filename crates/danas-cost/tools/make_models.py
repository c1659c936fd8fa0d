#!/usr/bin/env python3
"""Generate small int8 MobileNetV2-style .tflite models for danas-cost's TFLM exactness tests.

The networks follow danas' blueprint rules (crates/danas-core/src/blueprint.rs): stem 3x3/2 conv,
inverted residual blocks (1x1 expand + ReLU6, 3x3 depthwise + ReLU6 with SAME padding and no
explicit ZeroPadding, 1x1 linear projection, residual add when stride 1 and channels agree),
last 1x1 conv to 1280 channels only when the last stage is kept, global average pooling,
a Dense layer with a non-zero bias, softmax. BatchNorm folds into the conv biases.

Run once in a throwaway venv with TensorFlow (tensorflow-cpu):
    python3 -m venv /tmp/venv-tf && /tmp/venv-tf/bin/pip install tensorflow-cpu
    /tmp/venv-tf/bin/python crates/danas-cost/tools/make_models.py crates/danas-cost/tests/models
It writes MODEL.tflite files and manifest.json (each model's equivalent candidate flags).
Everything random is seeded.

With `--spec SPEC.json` it builds the models listed there instead (used by
`cargo xtask repro cost-model --scale cpu`): a JSON list of objects with `name` and
either the candidate fields `res`, `color`, `alpha`, `depths`, `classes` (the
blueprint network above), or `kind` = `keras-mobilenetv2` (Keras' own
`tf.keras.applications.MobileNetV2`, weights=None, with its explicit ZeroPadding
layers; fields `res`, `alpha`, `classes`), or `kind` = `flatten-dynamic` (the
blueprint network with an unknown batch size and an AveragePooling2D + Flatten head,
which the converter turns into SHAPE / STRIDED_SLICE / PACK / RESHAPE ops). With
`"float": true` a model is converted without quantisation (float32).
"""
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf

keras = tf.keras
L = keras.layers

# (t, c, n, s) of the seven MobileNetV2 stages; stages 3..7 are searchable.
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

# name, resolution, colour, alpha, depths of stages 3..7, classes
MODELS = [
    ("m32_rgb_a02_d11111", 32, "rgb", 0.2, [1, 1, 1, 1, 1], 2),
    ("m48_gray_a025_d22000", 48, "grayscale", 0.25, [2, 2, 0, 0, 0], 2),
    ("m64_rgb_a05_d32100", 64, "rgb", 0.5, [3, 2, 1, 0, 0], 3),
    ("m40_rgb_a01_d34331", 40, "rgb", 0.1, [3, 4, 3, 3, 1], 2),
    ("m33_gray_a075_d10000", 33, "grayscale", 0.75, [1, 0, 0, 0, 0], 4),
    ("m96_gray_a035_d34300", 96, "grayscale", 0.35, [3, 4, 3, 0, 0], 2),
    ("m24_rgb_a1_d11000", 24, "rgb", 1.0, [1, 1, 0, 0, 0], 2),
    ("m70_rgb_a02_d21110", 70, "rgb", 0.2, [2, 1, 1, 1, 0], 5),
]


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def bn(x, rng):
    layer = L.BatchNormalization(epsilon=1e-3, momentum=0.999)
    y = layer(x)
    c = x.shape[-1]
    layer.set_weights([
        rng.uniform(0.5, 1.5, c).astype("float32"),
        rng.uniform(-0.2, 0.2, c).astype("float32"),
        rng.uniform(-0.1, 0.1, c).astype("float32"),
        rng.uniform(0.5, 1.5, c).astype("float32"),
    ])
    return y


def build(res, color, alpha, depths, classes, seed, dynamic_flatten=False):
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    ch = 3 if color == "rgb" else 1
    inp = L.Input((res, res, ch)) if dynamic_flatten else L.Input((res, res, ch), batch_size=1)
    x = L.Conv2D(make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.ReLU(6.0)(bn(x, rng))
    in_ch = x.shape[-1]
    all_depths = [1, 2] + list(depths)
    for s, (t, c, _n, stride0) in enumerate(STAGES):
        out_ch = make_divisible(c * alpha)
        for i in range(all_depths[s]):
            stride = stride0 if i == 0 else 1
            block_in = x
            if s > 0:
                x = L.Conv2D(t * in_ch, 1, padding="same", use_bias=False)(x)
                x = L.ReLU(6.0)(bn(x, rng))
            x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
            x = L.ReLU(6.0)(bn(x, rng))
            x = L.Conv2D(out_ch, 1, padding="same", use_bias=False)(x)
            x = bn(x, rng)
            if stride == 1 and in_ch == out_ch:
                x = L.Add()([block_in, x])
            in_ch = out_ch
    if all_depths[6] > 0:
        last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        x = L.Conv2D(last, 1, use_bias=False)(x)
        x = L.ReLU(6.0)(bn(x, rng))
    if dynamic_flatten:
        x = L.AveragePooling2D(pool_size=(x.shape[1], x.shape[2]))(x)
        x = L.Flatten()(x)
    else:
        x = L.GlobalAveragePooling2D()(x)
    dense = L.Dense(classes, activation="softmax")
    x = dense(x)
    w, _ = dense.get_weights()
    dense.set_weights([w, rng.uniform(0.05, 0.2, classes).astype("float32")])
    return keras.Model(inp, x)


def convert(model, res, ch, seed, float_model=False):
    if float_model:
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()
    rng = np.random.default_rng(seed + 1000)

    def rep():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, res, res, ch)).astype("float32")]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def keras_mobilenetv2(res, alpha, classes, seed):
    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(input_shape=(res, res, 3), alpha=alpha, weights=None,
                                          classes=classes, include_top=True)


def from_spec(out_dir, spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    manifest = []
    for k, m in enumerate(spec):
        kind = m.get("kind", "blueprint")
        if kind == "keras-mobilenetv2":
            model = keras_mobilenetv2(m["res"], m["alpha"], m["classes"], seed=100 + k)
            ch = 3
        else:
            model = build(m["res"], m["color"], m["alpha"], m["depths"], m["classes"], seed=100 + k,
                          dynamic_flatten=(kind == "flatten-dynamic"))
            ch = 3 if m["color"] == "rgb" else 1
        data = convert(model, m["res"], ch, seed=100 + k, float_model=m.get("float", False))
        path = os.path.join(out_dir, m["name"] + ".tflite")
        with open(path, "wb") as f:
            f.write(data)
        entry = dict(m)
        entry["file"] = m["name"] + ".tflite"
        manifest.append(entry)
        print(f"{path}: {len(data)} bytes", file=sys.stderr)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def main():
    args = sys.argv[1:]
    if "--spec" in args:
        i = args.index("--spec")
        spec = args[i + 1]
        rest = args[:i] + args[i + 2:]
        out_dir = rest[0] if rest else "."
        os.makedirs(out_dir, exist_ok=True)
        from_spec(out_dir, spec)
        return
    out_dir = args[0] if args else "crates/danas-cost/tests/models"
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for k, (name, res, color, alpha, depths, classes) in enumerate(MODELS):
        model = build(res, color, alpha, depths, classes, seed=k)
        data = convert(model, res, 3 if color == "rgb" else 1, seed=k)
        path = os.path.join(out_dir, name + ".tflite")
        with open(path, "wb") as f:
            f.write(data)
        manifest.append({"file": name + ".tflite", "res": res, "color": color, "alpha": alpha,
                         "depths": depths, "classes": classes})
        print(f"{path}: {len(data)} bytes", file=sys.stderr)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
