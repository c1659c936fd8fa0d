//! `model_data.cc` / `model_data.h`: the model as a C array for firmware.

use std::fmt::Write;

use crate::{Model, TfliteError};

/// The margin [`arena_size_with_margin`] adds to a predicted arena, in percent.
pub const ARENA_MARGIN_PERCENT: u64 = 5;
/// The smallest margin [`arena_size_with_margin`] adds, in bytes.
pub const ARENA_MARGIN_MIN_BYTES: u64 = 1024;
/// The alignment slack [`arena_size_with_margin`] adds: TFLM aligns the arena's start
/// to 16 bytes and loses up to 15 bytes when the buffer is not aligned.
pub const ARENA_ALIGN_SLACK_BYTES: u64 = 16;

/// The `kTensorArenaSize` for a predicted arena: the prediction plus
/// [`ARENA_MARGIN_PERCENT`] % (at least [`ARENA_MARGIN_MIN_BYTES`]) plus
/// [`ARENA_ALIGN_SLACK_BYTES`], rounded up to a multiple of 16. The margin covers the
/// few bytes by which the prediction can miss TFLM's own figure (a runtime build's
/// bookkeeping, initialisation scratch).
///
/// ```
/// assert_eq!(danas_tflite::arena_size_with_margin(10_000), 11_040);
/// assert_eq!(danas_tflite::arena_size_with_margin(100_000), 105_024);
/// ```
pub fn arena_size_with_margin(predicted: u64) -> u64 {
    let margin = (predicted * ARENA_MARGIN_PERCENT).div_ceil(100).max(ARENA_MARGIN_MIN_BYTES);
    (predicted + margin + ARENA_ALIGN_SLACK_BYTES).div_ceil(16) * 16
}

/// The model as C source, the way `xxd -i` writes it (12 bytes a line), aligned for
/// TFLM, with the arena size: returns (`model_data.h`, `model_data.cc`). `symbol`
/// names the array (`g_model`); `arena_bytes` is the predicted arena, kept as
/// `kTensorArenaPredicted`, and `kTensorArenaSize` is it with the margin of
/// [`arena_size_with_margin`].
pub fn c_array(bytes: &[u8], symbol: &str, arena_bytes: u64, comment: &str) -> (String, String) {
    let sym: String = symbol.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let sym = if sym.starts_with(|c: char| c.is_ascii_digit()) || sym.is_empty() { format!("m_{sym}") } else { sym };
    let guard = format!("{}_DATA_H_", sym.to_ascii_uppercase());
    let comment: String = comment.lines().map(|l| format!("// {l}\n")).collect();
    let size = arena_size_with_margin(arena_bytes);
    let header = format!(
        "{comment}#ifndef {guard}\n#define {guard}\n\n#include <cstddef>\n\n\
         // Tensor arena the model needs as danas predicts it (TFLM head + tail).\n\
         constexpr size_t kTensorArenaPredicted = {arena_bytes};\n\
         // The arena to allocate: the prediction plus {ARENA_MARGIN_PERCENT} % (at least {ARENA_MARGIN_MIN_BYTES} bytes)\n\
         // plus {ARENA_ALIGN_SLACK_BYTES} bytes of alignment slack, rounded up to 16. Declare it\n\
         // `alignas(16) static uint8_t tensor_arena[kTensorArenaSize];`.\n\
         constexpr size_t kTensorArenaSize = {size};\n\n\
         // The model (a .tflite flatbuffer), 16-byte aligned as TFLM wants it.\n\
         alignas(16) extern const unsigned char {sym}[];\nextern const unsigned int {sym}_len;\n\n#endif  // {guard}\n"
    );
    let mut cc = format!("{comment}#include \"model_data.h\"\n\nalignas(16) const unsigned char {sym}[] = {{\n");
    for chunk in bytes.chunks(12) {
        cc.push(' ');
        for (i, b) in chunk.iter().enumerate() {
            let _ = write!(cc, " 0x{b:02x}");
            if i + 1 < chunk.len() {
                cc.push(',');
            }
        }
        cc.push_str(",\n");
    }
    if cc.ends_with(",\n") {
        cc.truncate(cc.len() - 2);
        cc.push('\n');
    }
    let _ = write!(cc, "}};\nconst unsigned int {sym}_len = {};\n", bytes.len());
    (header, cc)
}

/// The TFLM `MicroMutableOpResolver` method that registers a builtin operator, from
/// its schema name: `CONV_2D` → `AddConv2D`, `FULLY_CONNECTED` → `AddFullyConnected`.
fn resolver_method(op_name: &str) -> String {
    let mut m = String::from("Add");
    for part in op_name.split('_').filter(|p| !p.is_empty()) {
        if part.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            m.push_str(part); // 2D, 3D stay as they are
        } else {
            let mut cs = part.chars();
            if let Some(c) = cs.next() {
                m.push(c.to_ascii_uppercase());
                m.extend(cs.map(|c| c.to_ascii_lowercase()));
            }
        }
    }
    m
}

/// The model's operators by their TFLite names (`CONV_2D`, `MEAN`, …), each once, in
/// the order the graph first uses them.
pub fn op_names(model: &Model) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for o in &model.operators {
        let n = o.op.name();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// `model_ops.h`: a TFLM op resolver with exactly the model's operators. Defines
/// `kModelOpCount`, the resolver type `ModelOpResolver`
/// (`tflite::MicroMutableOpResolver<kModelOpCount>`) and
/// `RegisterModelOps(ModelOpResolver&)`, which adds every operator and returns
/// `kTfLiteOk` or the first failure.
///
/// # Errors
/// [`TfliteError::Unsupported`] for a custom operator (TFLM has no builtin for it).
pub fn resolver_header(model: &Model, comment: &str) -> Result<String, TfliteError> {
    let ops = op_names(model);
    if let Some(c) = ops.iter().find(|n| n.starts_with("CUSTOM") || n.is_empty()) {
        return Err(TfliteError::Unsupported(format!("custom operator `{c}` in an op resolver")));
    }
    let comment: String = comment.lines().map(|l| format!("// {l}\n")).collect();
    let mut h = format!(
        "{comment}#ifndef DANAS_MODEL_OPS_H_\n#define DANAS_MODEL_OPS_H_\n\n\
         #include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"\n\n\
         // The model's operators: {}.\n\
         constexpr unsigned int kModelOpCount = {};\n\n\
         // An op resolver with room for exactly these operators.\n\
         using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;\n\n\
         // Adds the model's operators to `resolver`; returns kTfLiteOk, or the first failure.\n\
         inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{\n",
        ops.join(", "),
        ops.len()
    );
    for op in &ops {
        let _ = writeln!(h, "  if (resolver.{}() != kTfLiteOk) return kTfLiteError;", resolver_method(op));
    }
    h.push_str("  return kTfLiteOk;\n}\n\n#endif  // DANAS_MODEL_OPS_H_\n");
    Ok(h)
}

/// A C string literal of `s`: quotes, backslashes and control characters escaped,
/// non-ASCII characters as UTF-8 octal escapes.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' => out.push_str("\\?"), // no trigraphs
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

/// `model_info.h`: what firmware needs to feed the model and read its answer: the
/// input's height, width and channels (NHWC int8; a pixel `p` goes in as `p − 128`),
/// the number of classes and their names (`kClassNames[i]` is output `i`).
pub fn info_header(height: u32, width: u32, channels: u32, class_names: &[String], comment: &str) -> String {
    let comment: String = comment.lines().map(|l| format!("// {l}\n")).collect();
    let names: Vec<String> = class_names.iter().map(|n| format!("    {},\n", c_string(n))).collect();
    format!(
        "{comment}#ifndef DANAS_MODEL_INFO_H_\n#define DANAS_MODEL_INFO_H_\n\n\
         // The input: NHWC int8, each 8-bit pixel value p as p - 128 (see manifest.json).\n\
         constexpr int kInputHeight = {height};\nconstexpr int kInputWidth = {width};\n\
         constexpr int kInputChannels = {channels};\n\n\
         // The output: one int8 score per class; kClassNames[i] names output i.\n\
         constexpr int kNumClasses = {};\n\
         constexpr const char* kClassNames[kNumClasses] = {{\n{}}};\n\n#endif  // DANAS_MODEL_INFO_H_\n",
        class_names.len(),
        names.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_methods_follow_tflm_names() {
        assert_eq!(resolver_method("CONV_2D"), "AddConv2D");
        assert_eq!(resolver_method("DEPTHWISE_CONV_2D"), "AddDepthwiseConv2D");
        assert_eq!(resolver_method("FULLY_CONNECTED"), "AddFullyConnected");
        assert_eq!(resolver_method("AVERAGE_POOL_2D"), "AddAveragePool2D");
        assert_eq!(resolver_method("MEAN"), "AddMean");
        assert_eq!(resolver_method("SOFTMAX"), "AddSoftmax");
    }

    #[test]
    fn class_names_are_escaped() {
        let h = info_header(8, 8, 1, &["a\"b".into(), "c\\d".into(), "é".into()], "x");
        assert!(h.contains(r#""a\"b","#) && h.contains(r#""c\\d","#) && h.contains(r#""\303\251","#), "{h}");
        assert!(h.contains("constexpr int kNumClasses = 3;"));
    }

    #[test]
    fn margin_covers_the_prediction() {
        for p in [0u64, 1, 999, 20_000, 123_457, 5_000_000] {
            let a = arena_size_with_margin(p);
            assert!(
                a.is_multiple_of(16) && a >= p + ARENA_MARGIN_MIN_BYTES + ARENA_ALIGN_SLACK_BYTES && a >= p + p / 20,
                "{p}: {a}"
            );
        }
    }

    #[test]
    fn xxd_layout() {
        let (h, cc) = c_array(&(0u8..14).collect::<Vec<_>>(), "g_model", 1234, "test");
        assert!(h.contains("constexpr size_t kTensorArenaPredicted = 1234;"));
        assert!(h.contains(&format!("constexpr size_t kTensorArenaSize = {};", arena_size_with_margin(1234))));
        assert!(h.contains("alignas(16) extern const unsigned char g_model[];"));
        assert!(
            cc.contains("  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,\n  0x0c, 0x0d\n};")
        );
        assert!(cc.contains("const unsigned int g_model_len = 14;"));
    }
}
