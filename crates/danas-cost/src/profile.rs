//! MCU profiles: the board's limits, its kernel library and latency coefficients.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::CostError;

/// The kernel library linked into the firmware. It decides the scratch buffers that
/// kernels request and the default latency coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kernels {
    /// TFLM's portable reference kernels.
    TflmReference,
    /// Arm CMSIS-NN optimised kernels (im2col scratch buffers).
    CmsisNn,
    /// A TinyEngine-style runtime with in-place depthwise convolution.
    InPlace,
}

impl Kernels {
    /// The kebab-case name used in TOML and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::TflmReference => "tflm-reference",
            Kernels::CmsisNn => "cmsis-nn",
            Kernels::InPlace => "in-place",
        }
    }
}

/// Cycles per multiply-accumulate for each kind of compute op.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CyclesPerMac {
    /// Pointwise (1×1) convolutions.
    pub conv1x1: f64,
    /// Dense k×k convolutions (k > 1), e.g. the stem.
    pub conv: f64,
    /// Depthwise convolutions.
    pub depthwise: f64,
    /// Fully connected layers.
    pub fc: f64,
}

impl CyclesPerMac {
    fn scaled(self, f: f64) -> Self {
        Self { conv1x1: self.conv1x1 * f, conv: self.conv * f, depthwise: self.depthwise * f, fc: self.fc * f }
    }
}

/// A microcontroller with its runtime: everything the cost model needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name used with `--mcu` (e.g. `nucleo-h743`).
    pub name: String,
    /// Board and MCU, for people.
    pub board: String,
    /// CPU core (e.g. `Cortex-M7`).
    pub core: String,
    /// Clock in MHz.
    pub clock_mhz: f64,
    /// The board's SRAM, in bytes.
    pub sram_bytes: u64,
    /// SRAM for the tensor arena, in bytes, when the board says so (a contiguous
    /// region, say). Absent: the SRAM less [`arena_reserve`] for the stack, heap,
    /// application and the runtime's globals ([`Profile::arena_budget`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arena_bytes: Option<u64>,
    /// Flash for model and code, in bytes.
    pub flash_bytes: u64,
    /// Kernel library linked.
    pub kernels: Kernels,
    /// Pointer size of the target in bytes (4 on Cortex-M); sizes the arena tail.
    pub pointer_bytes: u32,
    /// Latency coefficients.
    pub cycles_per_mac: CyclesPerMac,
    /// Cycles per element for element-wise ops, pools, MEAN and softmax.
    pub cycles_per_element: f64,
    /// Fixed cycles per op (dispatch, requantisation set-up).
    pub per_op_cycles: f64,
    /// Flash taken by the runtime and application code, in bytes.
    pub runtime_flash_bytes: u64,
    /// Optional latency limit in ms used by the feasibility check.
    #[serde(default)]
    pub max_latency_ms: Option<f64>,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// CMSIS-NN coefficients on a Cortex-M7 (≈ 4.1 cycles/MAC whole-model, §7 of the notes).
const M7_CMSIS: CyclesPerMac = CyclesPerMac { conv1x1: 3.6, conv: 4.8, depthwise: 6.5, fc: 4.0 };

/// TFLM reference kernels: one cost per MAC for every convolution kind (the same plain
/// loop nest), another for fully connected layers. Fitted (`conv-fc`) on the published
/// MLPerf Tiny v0.5 latencies of the one reference-kernel submission, the PCL Scepu02
/// (RV32IMAC, 336 MHz): held-out error 4–18 % on the three convolutional models
/// (`cargo xtask repro latency`, docs/results/cost-model/latency). Other cores scale it
/// by their core factor, which is not measured.
const REFERENCE: CyclesPerMac = CyclesPerMac { conv1x1: 36.9, conv: 36.9, depthwise: 36.9, fc: 17.3 };

#[allow(clippy::too_many_arguments)]
fn board(
    name: &str,
    board: &str,
    core: &str,
    clock_mhz: f64,
    sram_bytes: u64,
    flash_bytes: u64,
    kernels: Kernels,
    core_factor: f64,
) -> Profile {
    let lib_factor = match kernels {
        Kernels::CmsisNn => 1.0,
        Kernels::TflmReference => 11.3,
        Kernels::InPlace => 0.52,
    };
    let cycles_per_mac = match kernels {
        Kernels::TflmReference => REFERENCE.scaled(core_factor),
        _ => M7_CMSIS.scaled(core_factor * lib_factor),
    };
    Profile {
        name: name.into(),
        board: board.into(),
        core: core.into(),
        clock_mhz,
        sram_bytes,
        arena_bytes: None,
        flash_bytes,
        kernels,
        pointer_bytes: 4,
        cycles_per_mac,
        cycles_per_element: 2.0 * core_factor * lib_factor.sqrt(),
        per_op_cycles: 2000.0,
        runtime_flash_bytes: 93 * KIB,
        max_latency_ms: None,
    }
}

/// The built-in catalogue: the eight boards of the reference notes, plus a host profile
/// (64-bit, TFLM reference kernels) matching the PyPI `tflite-micro` interpreter.
///
/// Latency coefficients are defaults: CMSIS-NN boards from published whole-model cycles
/// per MAC on a Cortex-M7 (≈ 4) scaled per core; reference-kernel boards from the
/// MLPerf Tiny results of a reference-kernel board (see `REFERENCE` in the source).
/// Calibrate them for a board with [`crate::calibrate`] or [`crate::calibrate_with`].
pub fn catalogue() -> Vec<Profile> {
    use Kernels::*;
    let mut v = vec![
        board("nano33-ble", "Arduino Nano 33 BLE Sense (nRF52840)", "Cortex-M4F", 64.0, 256 * KIB, MIB, CmsisNn, 1.6),
        board("stm32f746-disco", "STM32F746G-DISCO", "Cortex-M7", 216.0, 320 * KIB, MIB, CmsisNn, 1.0),
        // The arena gets the 512 KB contiguous AXI SRAM; stack and data live in the
        // DTCM and the other SRAM banks.
        board("nucleo-h743", "NUCLEO-H743ZI (STM32H743)", "Cortex-M7", 480.0, 512 * KIB, 2 * MIB, CmsisNn, 1.0)
            .with_arena(512 * KIB),
        board("nucleo-l4r5", "NUCLEO-L4R5ZI (STM32L4R5)", "Cortex-M4", 120.0, 640 * KIB, 2 * MIB, CmsisNn, 1.6),
        board("nucleo-u575", "NUCLEO-U575ZI-Q (STM32U575)", "Cortex-M33", 160.0, 786 * KIB, 2 * MIB, CmsisNn, 1.5),
        board("rpi-pico", "Raspberry Pi Pico (RP2040)", "Cortex-M0+", 133.0, 264 * KIB, 2 * MIB, CmsisNn, 4.0),
        board("esp32-s3", "ESP32-S3", "Xtensa LX7", 240.0, 512 * KIB, 8 * MIB, TflmReference, 0.8),
        board("nicla-vision", "Arduino Nicla Vision (STM32H747)", "Cortex-M7", 480.0, MIB, 2 * MIB, CmsisNn, 1.0)
            .with_arena(512 * KIB),
        // The MLPerf Tiny v0.5 submission with TFLM's reference kernels (SRAM 2 MB, 4 MB SPI flash).
        board("pcl-scepu02", "PCL Scepu02 (RV32IMAC)", "RV32IMAC", 336.0, 2 * MIB, 4 * MIB, TflmReference, 1.0),
    ];
    let mut host = board(
        "host",
        "Host (PyPI tflite-micro, reference kernels)",
        "x86-64",
        1000.0,
        u64::MAX / 4,
        u64::MAX / 4,
        TflmReference,
        1.0,
    );
    host.pointer_bytes = 8;
    host.runtime_flash_bytes = 0;
    v.push(host);
    v
}

/// The SRAM a board keeps for everything but the tensor arena when its profile gives
/// no `arena_bytes`: an eighth of the SRAM, at least 16 KiB (stack, heap, the
/// application's buffers and the runtime's globals).
///
/// ```
/// assert_eq!(danas_cost::arena_reserve(256 * 1024), 32 * 1024);
/// assert_eq!(danas_cost::arena_reserve(64 * 1024), 16 * 1024);
/// ```
pub fn arena_reserve(sram_bytes: u64) -> u64 {
    (sram_bytes / 8).max(16 * KIB).min(sram_bytes / 2)
}

impl Profile {
    /// The board's limits: the arena budget ([`Profile::arena_budget`]), the flash and
    /// the optional latency limit.
    pub fn limits(&self) -> crate::Limits {
        crate::Limits { ram_bytes: self.arena_budget(), flash_bytes: self.flash_bytes, latency_ms: self.max_latency_ms }
    }

    /// SRAM for the tensor arena: `arena_bytes` when the profile gives it, otherwise
    /// the SRAM less [`arena_reserve`].
    pub fn arena_budget(&self) -> u64 {
        self.arena_bytes.unwrap_or(self.sram_bytes - arena_reserve(self.sram_bytes))
    }

    /// Where the arena budget comes from, for people: `"512 KiB arena (the board's
    /// arena_bytes)"` or `"224 KiB arena (256 KiB SRAM less a 32 KiB reserve)"`.
    pub fn arena_note(&self) -> String {
        let k = |b: u64| fmt_kib(b);
        match self.arena_bytes {
            Some(a) => format!("{} arena (the board's arena budget)", k(a)),
            None => format!(
                "{} arena ({} SRAM less a {} reserve for stack, heap and application)",
                k(self.arena_budget()),
                k(self.sram_bytes),
                k(arena_reserve(self.sram_bytes))
            ),
        }
    }

    /// One line naming the board, its limits and kernel library, for start-up lines
    /// and reports.
    pub fn describe(&self) -> String {
        let unlimited = self.sram_bytes > 1 << 50;
        if unlimited {
            return format!("{} ({}), kernels {}, no RAM or flash limit", self.name, self.board, self.kernels.name());
        }
        format!(
            "{} ({}, {}, {} MHz), kernels {}, {}, flash {} (model + {} runtime)",
            self.name,
            self.board,
            self.core,
            self.clock_mhz,
            self.kernels.name(),
            self.arena_note(),
            fmt_kib(self.flash_bytes),
            fmt_kib(self.runtime_flash_bytes)
        )
    }

    fn with_arena(mut self, bytes: u64) -> Self {
        self.arena_bytes = Some(bytes);
        self
    }

    /// The catalogue profile called `name` (case-insensitive).
    ///
    /// # Errors
    /// [`CostError::UnknownMcu`] listing the known names.
    pub fn builtin(name: &str) -> Result<Profile, CostError> {
        let all = catalogue();
        let want = name.trim().to_ascii_lowercase();
        match all.iter().find(|p| p.name == want) {
            Some(p) => Ok(p.clone()),
            None => {
                Err(CostError::UnknownMcu { name: name.to_string(), known: all.into_iter().map(|p| p.name).collect() })
            }
        }
    }

    /// A catalogue name, or the path of a profile TOML file (a name ending in
    /// `.toml`, or any existing file).
    ///
    /// # Errors
    /// [`CostError::UnknownMcu`] listing the known names; the file's own errors.
    pub fn resolve(name_or_path: &str) -> Result<Profile, CostError> {
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) || path.is_file() {
            return Profile::from_toml_file(path);
        }
        Profile::builtin(name_or_path)
    }

    /// The default profile: `nucleo-h743`, the paper's 512 KiB RAM / 2 MiB flash part.
    pub fn default_mcu() -> Profile {
        let mut all = catalogue();
        all.swap_remove(2)
    }

    /// Parses a profile from TOML text; `origin` names it in errors.
    ///
    /// Every field is required except `arena_bytes` and `max_latency_ms`; sizes may be
    /// given in bytes (`sram_bytes`) or KiB (`sram_kib`). Numbers must be finite and
    /// non-negative (the clock, SRAM, flash and pointer size strictly positive). An
    /// unknown key is an error.
    ///
    /// # Errors
    /// [`CostError::InvalidProfile`] naming the field and, when known, its line.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Profile, CostError> {
        crate::profile_toml::parse(text, origin)
    }

    /// This profile as a commented TOML template with sizes in KiB (`danas mcus
    /// --template`); [`Profile::from_toml_str`] reads it back to the same profile.
    pub fn to_template(&self) -> String {
        crate::profile_toml::template(self)
    }

    /// Reads a profile from a TOML file.
    ///
    /// # Errors
    /// [`CostError::Io`] or [`CostError::InvalidProfile`].
    pub fn from_toml_file(path: &Path) -> Result<Profile, CostError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CostError::Io { path: path.to_path_buf(), source })?;
        Profile::from_toml_str(&text, &path.display().to_string())
    }

    /// This profile as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks the ranges of every numeric field.
    ///
    /// # Errors
    /// [`CostError::InvalidProfile`] naming the first bad field.
    pub fn validate(&self, origin: &str) -> Result<(), CostError> {
        let bad = |field: &str, reason: &str| {
            Err(CostError::InvalidProfile { origin: origin.into(), field: field.into(), reason: reason.into() })
        };
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if !pos(self.clock_mhz) {
            return bad("clock_mhz", "must be a finite number > 0");
        }
        if self.sram_bytes == 0 {
            return bad("sram_bytes", "must be > 0");
        }
        if self.flash_bytes == 0 {
            return bad("flash_bytes", "must be > 0");
        }
        if let Some(a) = self.arena_bytes
            && (a == 0 || a > self.sram_bytes)
        {
            return bad("arena_bytes", "must be > 0 and at most the SRAM");
        }
        if !matches!(self.pointer_bytes, 2 | 4 | 8) {
            return bad("pointer_bytes", "must be 2, 4 or 8");
        }
        let c = &self.cycles_per_mac;
        for (f, v) in [
            ("cycles_per_mac.conv1x1", c.conv1x1),
            ("cycles_per_mac.conv", c.conv),
            ("cycles_per_mac.depthwise", c.depthwise),
            ("cycles_per_mac.fc", c.fc),
            ("cycles_per_element", self.cycles_per_element),
            ("per_op_cycles", self.per_op_cycles),
        ] {
            if !nonneg(v) {
                return bad(f, "must be a finite number >= 0");
            }
        }
        if let Some(l) = self.max_latency_ms
            && !pos(l)
        {
            return bad("max_latency_ms", "must be a finite number > 0");
        }
        Ok(())
    }
}

/// `512 KiB`, `1.5 KiB`.
pub(crate) fn fmt_kib(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn catalogue_has_the_eight_boards() {
        let c = catalogue();
        assert!(c.len() >= 8);
        for p in &c {
            p.validate("catalogue").unwrap();
        }
        let h = Profile::builtin("NUCLEO-H743").unwrap();
        assert_eq!(h.sram_bytes, 512 * 1024);
        assert_eq!(h.flash_bytes, 2 * 1024 * 1024);
        assert_eq!(Profile::default_mcu().name, "nucleo-h743");
    }

    #[test]
    fn unknown_mcu_lists_known() {
        let e = Profile::builtin("arduino-uno").unwrap_err().to_string();
        assert!(e.contains("arduino-uno") && e.contains("nucleo-h743") && e.contains("rpi-pico"), "{e}");
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let p = Profile::builtin("rpi-pico").unwrap();
        let text = p.to_toml();
        let q = Profile::from_toml_str(&text, "x.toml").unwrap();
        assert_eq!(p, q);
        // missing field
        let missing: String = text.lines().filter(|l| !l.starts_with("clock_mhz")).collect::<Vec<_>>().join("\n");
        let e = Profile::from_toml_str(&missing, "x.toml").unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("clock_mhz"), "{e}");
        // negative integer field
        let neg = text.replace(&format!("sram_bytes = {}", p.sram_bytes), "sram_bytes = -5");
        let e = Profile::from_toml_str(&neg, "x.toml").unwrap_err().to_string();
        assert!(e.contains("sram_bytes") && e.contains("negative"), "{e}");
        // negative nested float
        let neg = text.replace("depthwise = ", "depthwise = -");
        let e = Profile::from_toml_str(&neg, "x.toml").unwrap_err().to_string();
        assert!(e.contains("cycles_per_mac.depthwise"), "{e}");
        // zero clock
        let zero = text.replace("clock_mhz = 133.0", "clock_mhz = 0.0");
        let e = Profile::from_toml_str(&zero, "x.toml").unwrap_err().to_string();
        assert!(e.contains("clock_mhz"), "{e}");
    }

    #[test]
    fn board_limits_leave_a_stated_reserve() {
        let nano = Profile::builtin("nano33-ble").unwrap();
        let l = nano.limits();
        assert_eq!(l.ram_bytes, 224 * 1024, "256 KiB SRAM less an eighth");
        assert_eq!(l.flash_bytes, 1024 * 1024);
        assert!(
            nano.describe().contains("224 KiB arena") && nano.describe().contains("cmsis-nn"),
            "{}",
            nano.describe()
        );
        // The H743's arena is its 512 KB AXI SRAM: the paper's limits.
        let h7 = Profile::default_mcu().limits();
        assert_eq!((h7.ram_bytes, h7.flash_bytes), (512 * 1024, 2048 * 1024));
    }

    #[test]
    fn toml_errors_name_field_and_line() {
        let text = Profile::builtin("nano33-ble").unwrap().to_template();
        let bad = text.replace("clock_mhz = 64.0", "clock_mhz = \"480\"");
        let line = bad.lines().position(|l| l.starts_with("clock_mhz")).unwrap() + 1;
        let e = Profile::from_toml_str(&bad, "b.toml").unwrap_err().to_string();
        assert!(e.contains("`clock_mhz`") && e.contains(&format!("line {line}")), "{e}");
        // A top-level key appended after the table is an error that says why.
        let e = Profile::from_toml_str(&format!("{text}max_latency_ms = 5.0\n"), "b.toml").unwrap_err().to_string();
        assert!(e.contains("cycles_per_mac.max_latency_ms") && e.contains("move it above"), "{e}");
        let e = Profile::from_toml_str(&text.replace("core =", "cores ="), "b.toml").unwrap_err().to_string();
        assert!(e.contains("`cores`") && e.contains("unknown field"), "{e}");
        let e = Profile::from_toml_str(&format!("sram_bytes = 1\n{text}"), "b.toml").unwrap_err().to_string();
        assert!(e.contains("both"), "{e}");
    }

    #[test]
    fn template_is_commented_kib_and_reads_back() {
        for p in catalogue().into_iter().filter(|p| p.name != "host") {
            let t = p.to_template();
            assert!(
                t.contains("sram_kib = ")
                    && t.contains("flash_kib = ")
                    && t.lines().filter(|l| l.starts_with('#')).count() > 10
            );
            assert_eq!(Profile::from_toml_str(&t, "t.toml").unwrap(), p, "{t}");
        }
    }
}
