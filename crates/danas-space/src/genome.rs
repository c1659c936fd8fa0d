use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::SpaceError;

/// A point of a search space: one choice index per gene.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Genome(pub Vec<u16>);

impl Genome {
    /// The choice indices.
    pub fn indices(&self) -> &[u16] {
        &self.0
    }
}

impl std::fmt::Display for Genome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: Vec<String> = self.0.iter().map(u16::to_string).collect();
        write!(f, "[{}]", s.join(","))
    }
}

/// Whether a gene's choices are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GeneKind {
    /// Ordered choices: mutation steps to a neighbour; encoded as one number in [0, 1].
    Ordinal,
    /// Unordered choices: mutation picks another value; one-hot encoded.
    Categorical,
}

/// What part of a candidate a gene controls; used by group-weighted mutation
/// (the paper's GA mutates data 40 %, depth 40 %, width 20 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GeneGroup {
    /// The data configuration (resolution, colour).
    Data,
    /// Stage depths.
    Depth,
    /// Width multipliers.
    Width,
    /// Anything else (expansion, kernel, last conv, user genes).
    Other,
}

/// One gene: a name, a number of choices, its kind and group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gene {
    /// Name, e.g. `resolution` or `depth[2]`.
    pub name: String,
    /// Number of choices (≥ 1).
    pub choices: u16,
    /// Ordered or not.
    pub kind: GeneKind,
    /// The part of the candidate it controls.
    pub group: GeneGroup,
}

impl Gene {
    /// A gene with `choices` ordered values.
    pub fn ordinal(name: impl Into<String>, choices: u16, group: GeneGroup) -> Self {
        Self { name: name.into(), choices, kind: GeneKind::Ordinal, group }
    }
    /// A gene with `choices` unordered values.
    pub fn categorical(name: impl Into<String>, choices: u16, group: GeneGroup) -> Self {
        Self { name: name.into(), choices, kind: GeneKind::Categorical, group }
    }
    fn width(&self) -> usize {
        match self.kind {
            GeneKind::Ordinal => 1,
            GeneKind::Categorical => usize::from(self.choices),
        }
    }
}

/// Relative probabilities of mutating each [`GeneGroup`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GroupWeights {
    /// Weight of data genes.
    pub data: f64,
    /// Weight of depth genes.
    pub depth: f64,
    /// Weight of width genes.
    pub width: f64,
    /// Weight of other genes.
    pub other: f64,
}

impl GroupWeights {
    /// The paper's GA: data 40 %, one stage depth 40 %, α 20 %.
    pub const PAPER: GroupWeights = GroupWeights { data: 0.4, depth: 0.4, width: 0.2, other: 0.0 };
    /// Every mutable gene equally likely.
    pub const UNIFORM: GroupWeights = GroupWeights { data: -1.0, depth: -1.0, width: -1.0, other: -1.0 };

    fn get(&self, g: GeneGroup) -> f64 {
        match g {
            GeneGroup::Data => self.data,
            GeneGroup::Depth => self.depth,
            GeneGroup::Width => self.width,
            GeneGroup::Other => self.other,
        }
    }
}

/// The largest number of candidates [`SearchSpace::enumerate`]'s default
/// implementation visits.
const BRUTE_FORCE_LIMIT: u128 = 50_000_000;

/// A discrete search space over genomes.
///
/// Implement [`genes`](SearchSpace::genes), [`cardinality`](SearchSpace::cardinality)
/// and, if some genomes are invalid, [`check`](SearchSpace::check) and
/// [`repair`](SearchSpace::repair). Sampling, mutation, crossover, encoding and
/// enumeration come for free.
///
/// ```
/// use danas_space::{Gene, GeneGroup, Genome, SearchSpace, SpaceError};
///
/// /// Two knobs; the second may not exceed the first.
/// #[derive(Debug)]
/// struct Triangle { genes: Vec<Gene> }
/// impl SearchSpace for Triangle {
///     fn name(&self) -> &str { "triangle" }
///     fn genes(&self) -> &[Gene] { &self.genes }
///     fn check(&self, g: &Genome) -> Result<(), SpaceError> {
///         if g.0[1] > g.0[0] {
///             return Err(SpaceError::InvalidGenome { genome: g.0.clone(), reason: "b > a".into() });
///         }
///         Ok(())
///     }
///     fn repair(&self, mut g: Genome) -> Genome { g.0[1] = g.0[1].min(g.0[0]); g }
///     fn cardinality(&self) -> u128 { 4 * 5 / 2 }
/// }
/// let space = Triangle { genes: vec![
///     Gene::ordinal("a", 4, GeneGroup::Other),
///     Gene::ordinal("b", 4, GeneGroup::Other),
/// ] };
/// assert_eq!(space.enumerate(100).map(|v| v.len()), Some(10));
/// let mut rng = rand::rngs::mock::StepRng::new(0, 1);
/// let g = space.sample(&mut rng);
/// assert!(space.validate(&g).is_ok());
/// ```
pub trait SearchSpace: Send + Sync + std::fmt::Debug {
    /// Short name.
    fn name(&self) -> &str;

    /// One line saying what the space is.
    fn description(&self) -> &str {
        ""
    }

    /// The genes, in genome order.
    fn genes(&self) -> &[Gene];

    /// Space-specific rules beyond each gene's range (called by [`validate`](SearchSpace::validate)).
    ///
    /// # Errors
    /// [`SpaceError::InvalidGenome`] saying which rule is broken.
    fn check(&self, _genome: &Genome) -> Result<(), SpaceError> {
        Ok(())
    }

    /// Turns an in-range genome that breaks [`check`](SearchSpace::check) into a valid
    /// one, changing as little as possible. Must be the identity on valid genomes.
    fn repair(&self, genome: Genome) -> Genome {
        genome
    }

    /// Number of distinct valid genomes.
    fn cardinality(&self) -> u128;

    /// Checks the length, each gene's range and the space's rules.
    ///
    /// # Errors
    /// [`SpaceError::InvalidGenome`] naming the gene at fault.
    fn validate(&self, genome: &Genome) -> Result<(), SpaceError> {
        let genes = self.genes();
        if genome.0.len() != genes.len() {
            return Err(SpaceError::InvalidGenome {
                genome: genome.0.clone(),
                reason: format!("has {} genes, the space {} has {}", genome.0.len(), self.name(), genes.len()),
            });
        }
        for (v, gene) in genome.0.iter().zip(genes) {
            if *v >= gene.choices {
                return Err(SpaceError::InvalidGenome {
                    genome: genome.0.clone(),
                    reason: format!("gene {} = {v} is outside 0..{}", gene.name, gene.choices),
                });
            }
        }
        self.check(genome)
    }

    /// Samples a valid genome: each gene uniformly, retrying invalid draws, and
    /// repairing after 64 tries.
    fn sample(&self, rng: &mut dyn RngCore) -> Genome {
        let genes = self.genes();
        let mut g = Genome(Vec::new());
        for _ in 0..64 {
            g = Genome(genes.iter().map(|gene| rng.random_range(0..gene.choices.max(1))).collect());
            if self.check(&g).is_ok() {
                return g;
            }
        }
        self.repair(g)
    }

    /// Mutates one gene chosen with [`GroupWeights::UNIFORM`]; see [`mutate_weighted`](SearchSpace::mutate_weighted).
    fn mutate(&self, genome: &Genome, rng: &mut dyn RngCore) -> Genome {
        self.mutate_weighted(genome, rng, &GroupWeights::UNIFORM)
    }

    /// Picks a group by `weights` (negative weights mean "weight by number of
    /// genes"), then a gene of that group with more than one choice. Ordinal genes
    /// step to a neighbour (up or down, reflecting at the ends), categorical genes
    /// take another value. The result is repaired, and differs from the input
    /// whenever the space has more than one member.
    fn mutate_weighted(&self, genome: &Genome, rng: &mut dyn RngCore, weights: &GroupWeights) -> Genome {
        let genes = self.genes();
        let mutable: Vec<usize> = (0..genes.len()).filter(|&i| genes[i].choices > 1).collect();
        if mutable.is_empty() {
            return genome.clone();
        }
        let weight_of = |i: usize| {
            let w = weights.get(genes[i].group);
            if w < 0.0 {
                1.0
            } else {
                let n = mutable.iter().filter(|&&j| genes[j].group == genes[i].group).count() as f64;
                w / n
            }
        };
        let total: f64 = mutable.iter().map(|&i| weight_of(i)).sum();
        for _ in 0..32 {
            let mut pick = mutable[0];
            if total > 0.0 {
                let mut r = rng.random_range(0.0..total);
                for &i in &mutable {
                    let w = weight_of(i);
                    if r < w {
                        pick = i;
                        break;
                    }
                    r -= w;
                }
            } else {
                pick = mutable[rng.random_range(0..mutable.len())];
            }
            let gene = &genes[pick];
            let cur = genome.0.get(pick).copied().unwrap_or(0).min(gene.choices - 1);
            let new = match gene.kind {
                GeneKind::Ordinal => {
                    let up = rng.random_bool(0.5);
                    if (up && cur + 1 < gene.choices) || cur == 0 { cur + 1 } else { cur - 1 }
                }
                GeneKind::Categorical => {
                    let r = rng.random_range(0..gene.choices - 1);
                    if r >= cur { r + 1 } else { r }
                }
            };
            let mut child = genome.clone();
            if let Some(slot) = child.0.get_mut(pick) {
                *slot = new;
            }
            let child = self.repair(child);
            if child != *genome {
                return child;
            }
        }
        genome.clone()
    }

    /// Uniform crossover: each gene from either parent with probability ½, then repaired.
    fn crossover(&self, a: &Genome, b: &Genome, rng: &mut dyn RngCore) -> Genome {
        let child: Vec<u16> =
            a.0.iter().zip(b.0.iter()).map(|(&x, &y)| if rng.random_bool(0.5) { x } else { y }).collect();
        self.repair(Genome(child))
    }

    /// Length of the numeric encoding.
    fn encoded_len(&self) -> usize {
        self.genes().iter().map(Gene::width).sum()
    }

    /// Numeric encoding for surrogate models: ordinal genes as `index / (choices − 1)`
    /// in [0, 1], categorical genes one-hot.
    fn encode(&self, genome: &Genome) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.encoded_len());
        for (gene, &x) in self.genes().iter().zip(&genome.0) {
            match gene.kind {
                GeneKind::Ordinal => {
                    v.push(if gene.choices > 1 { f64::from(x) / f64::from(gene.choices - 1) } else { 0.0 })
                }
                GeneKind::Categorical => v.extend((0..gene.choices).map(|c| if c == x { 1.0 } else { 0.0 })),
            }
        }
        v
    }

    /// Inverse of [`encode`](SearchSpace::encode), also accepting any real vector:
    /// ordinal values are rounded to the nearest index and clamped, categorical
    /// blocks take their arg-max; the result is repaired.
    ///
    /// # Errors
    /// [`SpaceError::Decode`] when the length is wrong or a value is not finite.
    fn decode(&self, v: &[f64]) -> Result<Genome, SpaceError> {
        if v.len() != self.encoded_len() {
            return Err(SpaceError::Decode(format!("expected {} values, got {}", self.encoded_len(), v.len())));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(SpaceError::Decode(format!("value {i} is {}", v[i])));
        }
        let mut out = Vec::with_capacity(self.genes().len());
        let mut pos = 0;
        for gene in self.genes() {
            match gene.kind {
                GeneKind::Ordinal => {
                    let top = f64::from(gene.choices.saturating_sub(1));
                    out.push((v[pos] * top).round().clamp(0.0, top) as u16);
                    pos += 1;
                }
                GeneKind::Categorical => {
                    let block = &v[pos..pos + usize::from(gene.choices)];
                    let mut best = 0;
                    for (i, x) in block.iter().enumerate() {
                        if *x > block[best] {
                            best = i;
                        }
                    }
                    out.push(best as u16);
                    pos += usize::from(gene.choices);
                }
            }
        }
        Ok(self.repair(Genome(out)))
    }

    /// Every valid genome in lexicographic order, or `None` when the space has more
    /// than `limit` members (or is too large to scan).
    fn enumerate(&self, limit: usize) -> Option<Vec<Genome>> {
        if self.cardinality() > limit as u128 {
            return None;
        }
        let genes = self.genes();
        let product: u128 = genes.iter().map(|g| u128::from(g.choices)).product();
        if product > BRUTE_FORCE_LIMIT || genes.iter().any(|g| g.choices == 0) {
            return None;
        }
        let mut out = Vec::new();
        let mut cur = vec![0u16; genes.len()];
        loop {
            let g = Genome(cur.clone());
            if self.check(&g).is_ok() {
                out.push(g);
            }
            // odometer increment, last gene fastest
            let mut i = genes.len();
            loop {
                if i == 0 {
                    return Some(out);
                }
                i -= 1;
                cur[i] += 1;
                if cur[i] < genes[i].choices {
                    break;
                }
                cur[i] = 0;
            }
        }
    }
}
