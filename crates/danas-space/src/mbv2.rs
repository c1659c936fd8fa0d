use std::path::Path;

use danas_core::{Arch, Candidate, Color, DataConfig, LastConv, MBV2_STAGES, SEARCHABLE_STAGES, StageKnobs};
use serde::{Deserialize, Serialize};

use crate::{Gene, GeneGroup, Genome, SearchSpace, SpaceError};

/// A space whose genomes map to danas [`Candidate`]s.
pub trait CandidateSpace: SearchSpace {
    /// The candidate a valid genome stands for.
    ///
    /// # Errors
    /// [`SpaceError::InvalidGenome`] when the genome is not valid in this space.
    fn candidate(&self, genome: &Genome) -> Result<Candidate, SpaceError>;

    /// Every data configuration of the space.
    fn data_configs(&self) -> Vec<DataConfig>;

    /// The supernet of a data configuration: the largest architecture of the space
    /// for it, from which every candidate with that data configuration is a slice.
    fn supernet(&self, data: DataConfig) -> Candidate;
}

/// The settings of a MobileNetV2-family space, as written in a TOML space file.
///
/// ```toml
/// name = "mine"
/// description = "small grayscale space for my sensor"
/// resolutions = [32, 48, 64]
/// colors = ["grayscale"]
/// alphas = [0.25, 0.35, 0.5]
/// max_depths = [3, 2, 1, 0, 0]
/// # optional:
/// expansions = [3, 6]              # per searched stage
/// kernels = [3, 5]                 # depthwise kernel per searched stage
/// last_conv = ["auto", "none", { channels = 640 }]
/// mono_base_width = 0.33          # the paper code's grayscale quirk
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MbSpaceConfig {
    /// Short name.
    pub name: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Square input resolutions, in pixels.
    pub resolutions: Vec<u32>,
    /// Colour encodings.
    pub colors: Vec<Color>,
    /// Global width multipliers α.
    pub alphas: Vec<f64>,
    /// Largest depth of each searchable stage (stages 3–7); each stage's depth is
    /// searched over `0..=max`, and once a stage is 0 all later stages are 0.
    pub max_depths: Vec<u32>,
    /// Expansion factor choices for each searched stage (default: the table's 6).
    #[serde(default)]
    pub expansions: Vec<u32>,
    /// Depthwise kernel choices for each searched stage (default: 3).
    #[serde(default)]
    pub kernels: Vec<u32>,
    /// Choices for the final 1×1 conv (default: `auto`, the paper's rule).
    #[serde(default)]
    pub last_conv: Vec<LastConv>,
    /// If set, grayscale candidates use `alpha · mono_base_width` (the original
    /// code used 0.33 for its monochrome supernet).
    #[serde(default)]
    pub mono_base_width: Option<f64>,
}

impl MbSpaceConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`SpaceError::InvalidField`] naming the field and the value.
    pub fn validate(&self) -> Result<(), SpaceError> {
        if self.name.trim().is_empty() {
            return Err(SpaceError::field("name", "\"\"", "must not be empty"));
        }
        non_empty("resolutions", &self.resolutions)?;
        non_empty("colors", &self.colors)?;
        non_empty("alphas", &self.alphas)?;
        no_duplicates("resolutions", &self.resolutions)?;
        no_duplicates("colors", &self.colors)?;
        no_duplicates("expansions", &self.expansions)?;
        no_duplicates("kernels", &self.kernels)?;
        no_duplicates("last_conv", &self.last_conv)?;
        for (i, &r) in self.resolutions.iter().enumerate() {
            DataConfig::new(r, Color::Rgb)
                .validate()
                .map_err(|_| SpaceError::field(format!("resolutions[{i}]"), r, "must be between 1 and 4096 pixels"))?;
        }
        for (i, &a) in self.alphas.iter().enumerate() {
            if !(a.is_finite() && a > 0.0 && a <= 8.0) {
                return Err(SpaceError::field(format!("alphas[{i}]"), a, "must be > 0 and at most 8"));
            }
        }
        for (i, a) in self.alphas.iter().enumerate() {
            if self.alphas[..i].iter().any(|b| (a - b).abs() < 1e-12) {
                return Err(SpaceError::field(format!("alphas[{i}]"), a, "is listed twice"));
            }
        }
        let n = SEARCHABLE_STAGES.len();
        if self.max_depths.len() != n {
            return Err(SpaceError::field(
                "max_depths",
                format!("{:?}", self.max_depths),
                format!("needs exactly {n} values, one per searchable stage (stages 3-7)"),
            ));
        }
        for (i, (&d, st)) in self.max_depths.iter().zip(&MBV2_STAGES[SEARCHABLE_STAGES]).enumerate() {
            if d > st.repeats {
                return Err(SpaceError::field(
                    format!("max_depths[{i}]"),
                    d,
                    format!(
                        "stage {} ({} channels) has at most {} blocks",
                        i + SEARCHABLE_STAGES.start + 1,
                        st.channels,
                        st.repeats
                    ),
                ));
            }
        }
        for (i, &e) in self.expansions.iter().enumerate() {
            if e == 0 || e > 16 {
                return Err(SpaceError::field(format!("expansions[{i}]"), e, "must be between 1 and 16"));
            }
        }
        for (i, &k) in self.kernels.iter().enumerate() {
            if k == 0 || k % 2 == 0 || k > 9 {
                return Err(SpaceError::field(format!("kernels[{i}]"), k, "must be odd and between 1 and 9"));
            }
        }
        for (i, l) in self.last_conv.iter().enumerate() {
            if let LastConv::Channels(c) = l
                && (*c == 0 || *c > 8192)
            {
                return Err(SpaceError::field(format!("last_conv[{i}]"), c, "must be between 1 and 8192 channels"));
            }
        }
        if let Some(m) = self.mono_base_width
            && !(m.is_finite() && m > 0.0 && m <= 8.0)
        {
            return Err(SpaceError::field("mono_base_width", m, "must be > 0 and at most 8"));
        }
        Ok(())
    }
}

fn non_empty<T>(field: &str, v: &[T]) -> Result<(), SpaceError> {
    if v.is_empty() { Err(SpaceError::field(field, "[]", "must list at least one choice")) } else { Ok(()) }
}

fn no_duplicates<T: PartialEq + std::fmt::Debug>(field: &str, v: &[T]) -> Result<(), SpaceError> {
    for (i, x) in v.iter().enumerate() {
        if v[..i].contains(x) {
            return Err(SpaceError::field(format!("{field}[{i}]"), format!("{x:?}"), "is listed twice"));
        }
    }
    Ok(())
}

// Gene layout of an MbSpace genome.
const G_RES: usize = 0;
const G_COLOR: usize = 1;
const G_DEPTH: usize = 2; // 5 genes
const G_ALPHA: usize = 7;
const N_BASE: usize = 8;
const N_STAGES: usize = 5;

/// The MobileNetV2-family search space: resolution × colour × stage depths × α,
/// optionally per-stage expansion and kernel, and the last conv.
///
/// Genes: `resolution`, `color`, `depth[0..5]`, `alpha`, then `expansion[i]` and
/// `kernel[i]` per searched stage when more than one choice is given, then
/// `last_conv` when more than one choice is given. Genomes are kept canonical:
/// the expansion and kernel genes of a stage with depth 0 are 0, so distinct
/// genomes are distinct candidates.
#[derive(Debug, Clone)]
pub struct MbSpace {
    config: MbSpaceConfig,
    genes: Vec<Gene>,
    has_expansion: bool,
    has_kernel: bool,
    has_last: bool,
}

impl MbSpace {
    /// Builds a space from a validated configuration.
    ///
    /// # Errors
    /// [`SpaceError::InvalidField`] when the configuration is invalid.
    pub fn new(config: MbSpaceConfig) -> Result<Self, SpaceError> {
        config.validate()?;
        let len = |n: usize| n as u16;
        let mut genes = vec![
            Gene::ordinal("resolution", len(config.resolutions.len()), GeneGroup::Data),
            Gene::categorical("color", len(config.colors.len()), GeneGroup::Data),
        ];
        for (i, &d) in config.max_depths.iter().enumerate() {
            genes.push(Gene::ordinal(format!("depth[{i}]"), (d + 1) as u16, GeneGroup::Depth));
        }
        genes.push(Gene::ordinal("alpha", len(config.alphas.len()), GeneGroup::Width));
        let has_expansion = config.expansions.len() > 1;
        let has_kernel = config.kernels.len() > 1;
        let has_last = config.last_conv.len() > 1;
        if has_expansion {
            for i in 0..N_STAGES {
                genes.push(Gene::ordinal(format!("expansion[{i}]"), len(config.expansions.len()), GeneGroup::Other));
            }
        }
        if has_kernel {
            for i in 0..N_STAGES {
                genes.push(Gene::ordinal(format!("kernel[{i}]"), len(config.kernels.len()), GeneGroup::Other));
            }
        }
        if has_last {
            genes.push(Gene::categorical("last_conv", len(config.last_conv.len()), GeneGroup::Other));
        }
        Ok(Self { config, genes, has_expansion, has_kernel, has_last })
    }

    /// The paper's space: resolutions {224, 192, 160, 128, 96, 64, 32} × {rgb,
    /// grayscale} × 268 depth tuples × α ∈ {0.1, …, 1.0}: 37,520 candidates.
    pub fn paper() -> Self {
        Self::preset(MbSpaceConfig {
            name: "paper".into(),
            description: "Njor et al. 2025: 7 resolutions x rgb/grayscale, stage depths 3-7, alpha 0.1-1.0".into(),
            resolutions: vec![224, 192, 160, 128, 96, 64, 32],
            colors: vec![Color::Rgb, Color::Grayscale],
            alphas: (1..=10).map(|i| f64::from(i) / 10.0).collect(),
            max_depths: Arch::max_depths().to_vec(),
            expansions: Vec::new(),
            kernels: Vec::new(),
            last_conv: Vec::new(),
            mono_base_width: None,
        })
    }

    /// The paper's space with the original code's grayscale quirk: grayscale
    /// candidates use α × `base` (0.33 in the original).
    pub fn paper_with_mono_base_width(base: f64) -> Result<Self, SpaceError> {
        let mut c = Self::paper().config;
        c.mono_base_width = Some(base);
        Self::new(c)
    }

    /// A superset of the paper's space in spirit: more resolutions (32–224 with 48,
    /// 80, 112), α up to 1.4, per-stage expansion {3, 4, 6} and kernel {3, 5, 7},
    /// and the last conv's width.
    pub fn extended() -> Self {
        Self::preset(MbSpaceConfig {
            name: "extended".into(),
            description: "paper space plus 48/80/112 px, alpha to 1.4, per-stage expansion and kernel, last-conv width"
                .into(),
            resolutions: vec![224, 192, 160, 128, 112, 96, 80, 64, 48, 32],
            colors: vec![Color::Rgb, Color::Grayscale],
            alphas: vec![0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0, 1.2, 1.4],
            max_depths: Arch::max_depths().to_vec(),
            expansions: vec![3, 4, 6],
            kernels: vec![3, 5, 7],
            last_conv: vec![LastConv::Auto, LastConv::None, LastConv::Channels(320), LastConv::Channels(640)],
            mono_base_width: None,
        })
    }

    /// A small space for a CPU search in minutes: 16–32 px, shallow networks.
    pub fn demo() -> Self {
        Self::preset(MbSpaceConfig {
            name: "demo".into(),
            description: "small space for a CPU search in minutes: 16-32 px, rgb/grayscale, shallow, alpha 0.25-0.5"
                .into(),
            resolutions: vec![32, 24, 16],
            colors: vec![Color::Rgb, Color::Grayscale],
            alphas: vec![0.25, 0.35, 0.5],
            max_depths: vec![2, 2, 1, 0, 0],
            expansions: Vec::new(),
            kernels: Vec::new(),
            last_conv: Vec::new(),
            mono_base_width: None,
        })
    }

    fn preset(config: MbSpaceConfig) -> Self {
        match Self::new(config) {
            Ok(s) => s,
            // Presets are constants checked by the tests; reaching this is a bug in danas.
            Err(e) => panic!("built-in preset is invalid: {e}"),
        }
    }

    /// The built-in presets, in listing order.
    pub fn presets() -> Vec<MbSpace> {
        vec![Self::paper(), Self::extended(), Self::demo()]
    }

    /// A preset by name (`paper`, `extended`, `demo`).
    ///
    /// # Errors
    /// [`SpaceError::InvalidField`] listing the known names.
    pub fn by_name(name: &str) -> Result<Self, SpaceError> {
        match name {
            "paper" => Ok(Self::paper()),
            "extended" => Ok(Self::extended()),
            "demo" => Ok(Self::demo()),
            other => Err(SpaceError::field("space", other, "unknown preset; known: paper, extended, demo")),
        }
    }

    /// Parses a space from TOML text. `origin` names the source in errors.
    ///
    /// # Errors
    /// [`SpaceError::File`] for syntax errors, unknown keys and wrong types;
    /// [`SpaceError::File`] wrapping the field rule for invalid values.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, SpaceError> {
        let config: MbSpaceConfig = toml::from_str(text)
            .map_err(|e| SpaceError::File { path: origin.to_path_buf(), message: e.to_string().trim().to_string() })?;
        Self::new(config).map_err(|e| SpaceError::File { path: origin.to_path_buf(), message: e.to_string() })
    }

    /// Loads a space from a TOML file.
    ///
    /// # Errors
    /// [`SpaceError::File`] naming the file, and the key or value at fault.
    pub fn from_toml_file(path: &Path) -> Result<Self, SpaceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpaceError::File { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
        Self::from_toml_str(&text, path)
    }

    /// The configuration the space was built from.
    pub fn config(&self) -> &MbSpaceConfig {
        &self.config
    }

    /// Restricts the space to a single data configuration (the paper's
    /// hardware-aware, fixed-data baseline).
    ///
    /// # Errors
    /// [`SpaceError::InvalidField`] when the resulting configuration is invalid.
    pub fn with_fixed_data(&self, data: DataConfig) -> Result<Self, SpaceError> {
        let mut c = self.config.clone();
        c.resolutions = vec![data.resolution];
        c.colors = vec![data.color];
        c.name = format!("{}@{}", c.name, data);
        Self::new(c)
    }

    /// Number of distinct data configurations.
    pub fn num_data_configs(&self) -> usize {
        self.config.resolutions.len() * self.config.colors.len()
    }

    /// Number of valid depth tuples.
    pub fn num_depth_tuples(&self) -> u128 {
        self.depth_tuples().len() as u128
    }

    fn depth_tuples(&self) -> Vec<Vec<u32>> {
        let mut out = vec![vec![]];
        for &m in &self.config.max_depths {
            let mut next = Vec::new();
            for t in &out {
                let prev_zero = t.last().is_some_and(|&d| d == 0);
                for d in 0..=m {
                    if prev_zero && d > 0 {
                        continue;
                    }
                    let mut t2: Vec<u32> = t.clone();
                    t2.push(d);
                    next.push(t2);
                }
            }
            out = next;
        }
        out
    }

    fn alpha_for(&self, alpha_index: usize, color: Color) -> f64 {
        let a = self.config.alphas[alpha_index];
        match (color, self.config.mono_base_width) {
            (Color::Grayscale, Some(base)) => a * base,
            _ => a,
        }
    }

    fn depth(&self, g: &Genome, stage: usize) -> u16 {
        g.0.get(G_DEPTH + stage).copied().unwrap_or(0)
    }

    fn expansion_gene(&self, stage: usize) -> Option<usize> {
        self.has_expansion.then_some(N_BASE + stage)
    }

    fn kernel_gene(&self, stage: usize) -> Option<usize> {
        self.has_kernel.then_some(N_BASE + if self.has_expansion { N_STAGES } else { 0 } + stage)
    }

    fn last_gene(&self) -> Option<usize> {
        self.has_last.then_some(self.genes.len() - 1)
    }

    /// The genome of a candidate, if the candidate is a member of this space.
    pub fn genome_of(&self, cand: &Candidate) -> Option<Genome> {
        let c = &self.config;
        let mut g = vec![0u16; self.genes.len()];
        g[G_RES] = c.resolutions.iter().position(|&r| r == cand.data.resolution)? as u16;
        g[G_COLOR] = c.colors.iter().position(|&x| x == cand.data.color)? as u16;
        for (i, &d) in cand.arch.depths.iter().enumerate() {
            *g.get_mut(G_DEPTH + i)? = d as u16;
        }
        g[G_ALPHA] =
            (0..c.alphas.len()).find(|&i| (self.alpha_for(i, cand.data.color) - cand.arch.alpha).abs() < 1e-9)? as u16;
        for s in 0..N_STAGES {
            let knobs = cand.arch.knobs(s + SEARCHABLE_STAGES.start);
            if let Some(gi) = self.expansion_gene(s) {
                let e = knobs.expansion.unwrap_or(MBV2_STAGES[s + SEARCHABLE_STAGES.start].expansion);
                g[gi] = c.expansions.iter().position(|&x| x == e)? as u16;
            }
            if let Some(gi) = self.kernel_gene(s) {
                g[gi] = c.kernels.iter().position(|&x| x == knobs.kernel.unwrap_or(3))? as u16;
            }
        }
        if let Some(gi) = self.last_gene() {
            g[gi] = c.last_conv.iter().position(|&x| x == cand.arch.last_conv)? as u16;
        }
        let g = Genome(g);
        let back = self.candidate(&g).ok()?;
        (back == *cand).then_some(g)
    }
}

impl SearchSpace for MbSpace {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn description(&self) -> &str {
        &self.config.description
    }

    fn genes(&self) -> &[Gene] {
        &self.genes
    }

    fn check(&self, g: &Genome) -> Result<(), SpaceError> {
        let bad = |reason: String| Err(SpaceError::InvalidGenome { genome: g.0.clone(), reason });
        for s in 1..N_STAGES {
            if self.depth(g, s) > 0 && self.depth(g, s - 1) == 0 {
                return bad(format!("depth[{s}] = {} follows depth[{}] = 0", self.depth(g, s), s - 1));
            }
        }
        for s in 0..N_STAGES {
            if self.depth(g, s) == 0 {
                for gi in [self.expansion_gene(s), self.kernel_gene(s)].into_iter().flatten() {
                    if g.0.get(gi).copied().unwrap_or(0) != 0 {
                        return bad(format!("gene {} must be 0 when depth[{s}] = 0", self.genes[gi].name));
                    }
                }
            }
        }
        Ok(())
    }

    /// Raises a zero depth that precedes a non-zero one to 1 (keeping the deepest
    /// kept stage), then zeroes the knobs of stages with depth 0.
    fn repair(&self, mut g: Genome) -> Genome {
        if g.0.len() != self.genes.len() {
            return g;
        }
        let last_nonzero = (0..N_STAGES).rev().find(|&s| self.depth(&g, s) > 0);
        if let Some(last) = last_nonzero {
            for s in 0..last {
                if g.0[G_DEPTH + s] == 0 {
                    g.0[G_DEPTH + s] = 1;
                }
            }
        }
        for s in 0..N_STAGES {
            if self.depth(&g, s) == 0 {
                for gi in [self.expansion_gene(s), self.kernel_gene(s)].into_iter().flatten() {
                    g.0[gi] = 0;
                }
            }
        }
        g
    }

    fn cardinality(&self) -> u128 {
        let c = &self.config;
        let per_stage = (c.expansions.len().max(1) * c.kernels.len().max(1)) as u128;
        let tuples: u128 = self
            .depth_tuples()
            .iter()
            .map(|t| t.iter().filter(|&&d| d > 0).fold(1u128, |acc, _| acc * per_stage))
            .sum();
        tuples
            * c.resolutions.len() as u128
            * c.colors.len() as u128
            * c.alphas.len() as u128
            * c.last_conv.len().max(1) as u128
    }
}

impl CandidateSpace for MbSpace {
    fn candidate(&self, g: &Genome) -> Result<Candidate, SpaceError> {
        self.validate(g)?;
        let c = &self.config;
        let color = c.colors[usize::from(g.0[G_COLOR])];
        let data = DataConfig::new(c.resolutions[usize::from(g.0[G_RES])], color);
        let depths: Vec<u32> = (0..N_STAGES).map(|s| u32::from(self.depth(g, s))).collect();
        let mut stages = Vec::new();
        if self.has_expansion || self.has_kernel || c.expansions.len() == 1 || c.kernels.len() == 1 {
            stages = vec![StageKnobs::default(); MBV2_STAGES.len()];
            for s in 0..N_STAGES {
                let k = &mut stages[s + SEARCHABLE_STAGES.start];
                k.expansion = match self.expansion_gene(s) {
                    Some(gi) => Some(c.expansions[usize::from(g.0[gi])]),
                    None => c.expansions.first().copied(),
                };
                k.kernel = match self.kernel_gene(s) {
                    Some(gi) => Some(c.kernels[usize::from(g.0[gi])]),
                    None => c.kernels.first().copied(),
                };
            }
            if stages.iter().all(|k| *k == StageKnobs::default()) {
                stages.clear();
            }
        }
        let last_conv = match self.last_gene() {
            Some(gi) => c.last_conv[usize::from(g.0[gi])],
            None => c.last_conv.first().copied().unwrap_or_default(),
        };
        let alpha = self.alpha_for(usize::from(g.0[G_ALPHA]), color);
        let arch = Arch { alpha, depths, stages, last_conv };
        arch.validate()?;
        Ok(Candidate::new(data, arch))
    }

    fn data_configs(&self) -> Vec<DataConfig> {
        let c = &self.config;
        c.resolutions.iter().flat_map(|&r| c.colors.iter().map(move |&col| DataConfig::new(r, col))).collect()
    }

    fn supernet(&self, data: DataConfig) -> Candidate {
        let c = &self.config;
        let alpha_max = (0..c.alphas.len()).map(|i| self.alpha_for(i, data.color)).fold(0.0, f64::max);
        let max_e = c.expansions.iter().copied().max();
        let max_k = c.kernels.iter().copied().max();
        let stages = if max_e.is_some() || max_k.is_some() {
            let mut st = vec![StageKnobs::default(); MBV2_STAGES.len()];
            for k in &mut st[SEARCHABLE_STAGES] {
                k.expansion = max_e;
                k.kernel = max_k;
            }
            st
        } else {
            Vec::new()
        };
        let max_last = c
            .last_conv
            .iter()
            .filter_map(|l| match l {
                LastConv::Channels(n) => Some(*n),
                LastConv::Auto | LastConv::Always => {
                    Some(if alpha_max > 1.0 { danas_core::make_divisible(1280.0 * alpha_max) } else { 1280 })
                }
                LastConv::None => None,
            })
            .max();
        let last_conv = match (c.last_conv.is_empty(), max_last) {
            (true, _) => LastConv::Auto,
            (false, Some(n)) => LastConv::Channels(n),
            (false, None) => LastConv::None,
        };
        let arch = Arch { alpha: alpha_max, depths: c.max_depths.clone(), stages, last_conv };
        Candidate::new(data, arch)
    }
}
