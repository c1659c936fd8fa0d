//! Profile TOML files: parsing with errors that name the field and its line, sizes in
//! bytes or KiB, and the commented template `danas mcus --template` writes.

use std::fmt::Write;

use serde::Deserialize;

use crate::CostError;
use crate::profile::{CyclesPerMac, Kernels, Profile, arena_reserve};

/// A profile as written in a file: every field optional (missing ones are reported by
/// name), sizes in bytes or KiB.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    board: Option<String>,
    core: Option<String>,
    clock_mhz: Option<f64>,
    sram_bytes: Option<u64>,
    sram_kib: Option<f64>,
    arena_bytes: Option<u64>,
    arena_kib: Option<f64>,
    flash_bytes: Option<u64>,
    flash_kib: Option<f64>,
    kernels: Option<Kernels>,
    pointer_bytes: Option<u32>,
    cycles_per_mac: Option<CyclesPerMac>,
    cycles_per_element: Option<f64>,
    per_op_cycles: Option<f64>,
    runtime_flash_bytes: Option<u64>,
    runtime_flash_kib: Option<f64>,
    max_latency_ms: Option<f64>,
}

/// The top-level keys of a profile file.
const TOP_KEYS: [&str; 17] = [
    "name",
    "board",
    "core",
    "clock_mhz",
    "sram_bytes",
    "sram_kib",
    "arena_bytes",
    "arena_kib",
    "flash_bytes",
    "flash_kib",
    "kernels",
    "pointer_bytes",
    "cycles_per_element",
    "per_op_cycles",
    "runtime_flash_bytes",
    "runtime_flash_kib",
    "max_latency_ms",
];

/// 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    text.get(..at.min(text.len())).map_or(1, |t| t.matches('\n').count() + 1)
}

/// The table a line belongs to (`""` at the top level) and the key it assigns.
fn key_on_line(text: &str, line: usize) -> (String, Option<String>) {
    let mut table = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if i + 1 == line {
            let key = t.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string());
            return (table, key.filter(|k| !k.is_empty() && !k.starts_with('[')));
        }
    }
    (table, None)
}

/// The line that assigns `field` (`table.key` or `key`), if any.
fn line_of_key(text: &str, field: &str) -> Option<usize> {
    let (table, key) = field.split_once('.').unwrap_or(("", field));
    let mut current = "";
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim();
            continue;
        }
        if current == table && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

fn origin_at(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{origin}, line {l}"),
        None => origin.to_string(),
    }
}

/// A size given in bytes or in KiB (not both), in bytes.
fn size(origin: &str, text: &str, stem: &str, bytes: Option<u64>, kib: Option<f64>) -> Result<Option<u64>, CostError> {
    let bad = |field: String, reason: String| CostError::InvalidProfile {
        origin: origin_at(origin, line_of_key(text, &field)),
        field,
        reason,
    };
    match (bytes, kib) {
        (Some(_), Some(_)) => Err(bad(format!("{stem}_kib"), format!("and `{stem}_bytes` are both given; keep one"))),
        (Some(b), None) => Ok(Some(b)),
        (None, Some(k)) if k.is_finite() && k >= 0.0 => Ok(Some((k * 1024.0).round() as u64)),
        (None, Some(k)) => Err(bad(format!("{stem}_kib"), format!("is {k}; must be a finite number >= 0"))),
        (None, None) => Ok(None),
    }
}

/// Parses a profile file's text; see [`Profile::from_toml_str`].
pub(crate) fn parse(text: &str, origin: &str) -> Result<Profile, CostError> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start));
        let msg = e.message().to_string();
        let (table, key) = line.map(|l| key_on_line(text, l)).unwrap_or_default();
        let named = msg.split('`').nth(1).map(str::to_string);
        let unknown = msg.starts_with("unknown field");
        // The key the error is about: the one the message names for unknown and missing
        // fields, otherwise the key on the line the error points at.
        let field_key =
            if unknown || msg.starts_with("missing field") { named.clone().or(key) } else { key.or(named.clone()) };
        let field = match (table.is_empty(), field_key) {
            (_, None) => "(syntax)".to_string(),
            (true, Some(k)) => k,
            (false, Some(k)) => format!("{table}.{k}"),
        };
        let mut reason = if let Some(v) = msg.strip_prefix("invalid value: integer `").and_then(|r| r.split('`').next())
            && v.starts_with('-')
        {
            format!("is negative ({v}); must be >= 0")
        } else {
            msg.clone()
        };
        if unknown
            && !table.is_empty()
            && let Some(k) = &named
            && TOP_KEYS.contains(&k.as_str())
        {
            let _ = write!(
                reason,
                "; `{k}` is a top-level key, but it follows the `[{table}]` header, so TOML puts it in that \
                 table: move it above `[{table}]`"
            );
        }
        CostError::InvalidProfile { origin: origin_at(origin, line), field, reason }
    })?;
    let missing = |field: &str| CostError::InvalidProfile {
        origin: origin.to_string(),
        field: field.to_string(),
        reason: "is missing (see `danas mcus --template`)".to_string(),
    };
    let sram = size(origin, text, "sram", raw.sram_bytes, raw.sram_kib)?;
    let flash = size(origin, text, "flash", raw.flash_bytes, raw.flash_kib)?;
    let arena = size(origin, text, "arena", raw.arena_bytes, raw.arena_kib)?;
    let runtime = size(origin, text, "runtime_flash", raw.runtime_flash_bytes, raw.runtime_flash_kib)?;
    let p = Profile {
        name: raw.name.ok_or_else(|| missing("name"))?,
        board: raw.board.ok_or_else(|| missing("board"))?,
        core: raw.core.ok_or_else(|| missing("core"))?,
        clock_mhz: raw.clock_mhz.ok_or_else(|| missing("clock_mhz"))?,
        sram_bytes: sram.ok_or_else(|| missing("sram_kib"))?,
        arena_bytes: arena,
        flash_bytes: flash.ok_or_else(|| missing("flash_kib"))?,
        kernels: raw.kernels.ok_or_else(|| missing("kernels"))?,
        pointer_bytes: raw.pointer_bytes.ok_or_else(|| missing("pointer_bytes"))?,
        cycles_per_mac: raw.cycles_per_mac.ok_or_else(|| missing("cycles_per_mac"))?,
        cycles_per_element: raw.cycles_per_element.ok_or_else(|| missing("cycles_per_element"))?,
        per_op_cycles: raw.per_op_cycles.ok_or_else(|| missing("per_op_cycles"))?,
        runtime_flash_bytes: runtime.ok_or_else(|| missing("runtime_flash_kib"))?,
        max_latency_ms: raw.max_latency_ms,
    };
    p.validate(origin).map_err(|e| match e {
        CostError::InvalidProfile { field, reason, .. } => {
            let line = line_of_key(text, &field).or_else(|| line_of_key(text, &field.replace("_bytes", "_kib")));
            CostError::InvalidProfile { origin: origin_at(origin, line), field, reason }
        }
        other => other,
    })?;
    Ok(p)
}

/// A number of bytes as KiB for a template: an integer when exact.
fn kib(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) { (bytes / 1024).to_string() } else { format!("{:.3}", bytes as f64 / 1024.0) }
}

/// The profile as a commented TOML template, sizes in KiB like the command-line flags.
pub(crate) fn template(p: &Profile) -> String {
    let mut s = String::new();
    let q = |v: &str| toml::Value::String(v.to_string()).to_string();
    let _ = writeln!(s, "# danas MCU profile (a template from the built-in `{}`).", p.name);
    let _ = writeln!(s, "# Edit it for your board, then pass it as `--mcu FILE.toml` to search / estimate.");
    let _ = writeln!(s, "# Sizes are in KiB (1 KiB = 1024 bytes), like --ram-kib / --flash-kib; `*_bytes` works too.");
    let _ = writeln!(s, "# Every key is required except arena_kib and max_latency_ms. Keep the");
    let _ = writeln!(s, "# [cycles_per_mac] table last: TOML puts every key below its header into it.\n");
    let _ = writeln!(s, "# Short name shown in reports and manifests; give your board its own.");
    let _ = writeln!(s, "name = {}", q(&p.name));
    let _ = writeln!(s, "# The board and MCU, for people.");
    let _ = writeln!(s, "board = {}", q(&p.board));
    let _ = writeln!(s, "# The CPU core.");
    let _ = writeln!(s, "core = {}", q(&p.core));
    let _ = writeln!(s, "# Clock in MHz (a number, not a string).");
    let _ = writeln!(s, "clock_mhz = {:?}", p.clock_mhz);
    let _ = writeln!(s, "# All SRAM of the MCU, KiB.");
    let _ = writeln!(s, "sram_kib = {}", kib(p.sram_bytes));
    let _ = writeln!(
        s,
        "# SRAM for the tensor arena, KiB: the RAM limit of a search. Without it the arena gets the\n\
         # SRAM less a reserve (an eighth, at least 16 KiB) for stack, heap and application."
    );
    match p.arena_bytes {
        Some(a) => {
            let _ = writeln!(s, "arena_kib = {}", kib(a));
        }
        None => {
            let _ = writeln!(s, "# arena_kib = {}", kib(p.sram_bytes.saturating_sub(arena_reserve(p.sram_bytes))));
        }
    }
    let _ = writeln!(s, "# Flash for model and code, KiB: the flash limit of a search.");
    let _ = writeln!(s, "flash_kib = {}", kib(p.flash_bytes));
    let _ = writeln!(s, "# Flash the TFLM runtime and the application take, KiB (counted in every model's flash).");
    let _ = writeln!(s, "runtime_flash_kib = {}", kib(p.runtime_flash_bytes));
    let _ = writeln!(s, "# Kernel library linked: \"cmsis-nn\", \"tflm-reference\" or \"in-place\".");
    let _ = writeln!(s, "kernels = {}", q(p.kernels.name()));
    let _ = writeln!(s, "# Pointer size of the target in bytes (4 on Cortex-M); sizes the arena's tail.");
    let _ = writeln!(s, "pointer_bytes = {}", p.pointer_bytes);
    let _ = writeln!(s, "# Latency model: cycles per element of element-wise ops, pools and softmax ...");
    let _ = writeln!(s, "cycles_per_element = {:?}", p.cycles_per_element);
    let _ = writeln!(s, "# ... and fixed cycles per op. `danas mcus --calibrate` fits them to your measurements.");
    let _ = writeln!(s, "per_op_cycles = {:?}", p.per_op_cycles);
    let _ = writeln!(s, "# Optional latency limit in ms.");
    match p.max_latency_ms {
        Some(l) => {
            let _ = writeln!(s, "max_latency_ms = {l:?}");
        }
        None => {
            let _ = writeln!(s, "# max_latency_ms = 100.0");
        }
    }
    let c = &p.cycles_per_mac;
    let _ = writeln!(s, "\n# Cycles per multiply-accumulate of each kind of op (keep this table last).");
    let _ = writeln!(s, "[cycles_per_mac]");
    let _ = writeln!(s, "conv1x1 = {:?}", c.conv1x1);
    let _ = writeln!(s, "conv = {:?}", c.conv);
    let _ = writeln!(s, "depthwise = {:?}", c.depthwise);
    let _ = writeln!(s, "fc = {:?}", c.fc);
    s
}
