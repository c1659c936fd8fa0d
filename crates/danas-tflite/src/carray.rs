//! `model_data.cc` / `model_data.h`: the model as a C array for firmware.

use std::fmt::Write;

/// The model as C source, the way `xxd -i` writes it (12 bytes a line), aligned for
/// TFLM, with the predicted arena size: returns (`model_data.h`, `model_data.cc`).
/// `symbol` names the array (`g_model`), `arena_bytes` becomes `kTensorArenaSize`.
pub fn c_array(bytes: &[u8], symbol: &str, arena_bytes: u64, comment: &str) -> (String, String) {
    let sym: String = symbol.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let sym = if sym.starts_with(|c: char| c.is_ascii_digit()) || sym.is_empty() { format!("m_{sym}") } else { sym };
    let guard = format!("{}_DATA_H_", sym.to_ascii_uppercase());
    let comment: String = comment.lines().map(|l| format!("// {l}\n")).collect();
    let header = format!(
        "{comment}#ifndef {guard}\n#define {guard}\n\n#include <cstddef>\n\n\
         // Tensor arena the model needs (TFLM head + tail, as danas predicts it).\n\
         constexpr size_t kTensorArenaSize = {arena_bytes};\n\n\
         extern const unsigned char {sym}[];\nextern const unsigned int {sym}_len;\n\n#endif  // {guard}\n"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxd_layout() {
        let (h, cc) = c_array(&(0u8..14).collect::<Vec<_>>(), "g_model", 1234, "test");
        assert!(h.contains("constexpr size_t kTensorArenaSize = 1234;"));
        assert!(
            cc.contains("  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,\n  0x0c, 0x0d\n};")
        );
        assert!(cc.contains("const unsigned int g_model_len = 14;"));
    }
}
