use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Colour encoding of the input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Three channels, red, green, blue.
    Rgb,
    /// One channel, ITU-R BT.601 luminance of the RGB image.
    #[serde(alias = "mono", alias = "monochrome", alias = "gray")]
    Grayscale,
}

impl Color {
    /// Number of input channels.
    pub fn channels(self) -> u32 {
        match self {
            Color::Rgb => 3,
            Color::Grayscale => 1,
        }
    }
    /// Lower-case name, `rgb` or `grayscale`.
    pub fn name(self) -> &'static str {
        match self {
            Color::Rgb => "rgb",
            Color::Grayscale => "grayscale",
        }
    }
    /// All colour encodings, rgb first.
    pub const ALL: [Color; 2] = [Color::Rgb, Color::Grayscale];
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Color {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rgb" | "color" | "colour" => Ok(Color::Rgb),
            "grayscale" | "greyscale" | "gray" | "grey" | "mono" | "monochrome" | "l" => Ok(Color::Grayscale),
            _ => Err(CoreError::Parse {
                what: "colour",
                input: s.to_string(),
                reason: "expected rgb or grayscale".into(),
            }),
        }
    }
}

/// How the input data is configured: the knobs of the *data* half of a candidate.
///
/// Constructed with [`DataConfig::new`]; the struct is `#[non_exhaustive]` so that
/// more knobs (a non-square size, a frame rate, …) can be added without breaking users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DataConfig {
    /// Side of the square input image in pixels.
    pub resolution: u32,
    /// Colour encoding.
    pub color: Color,
}

impl DataConfig {
    /// A square image of `resolution` pixels per side in the given colour encoding.
    pub fn new(resolution: u32, color: Color) -> Self {
        Self { resolution, color }
    }

    /// Input tensor shape as (height, width, channels).
    pub fn input_hwc(&self) -> (u32, u32, u32) {
        (self.resolution, self.resolution, self.color.channels())
    }

    /// Number of input elements per image.
    pub fn input_elements(&self) -> u64 {
        let (h, w, c) = self.input_hwc();
        u64::from(h) * u64::from(w) * u64::from(c)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] for a resolution of 0 or above 4096.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.resolution == 0 || self.resolution > 4096 {
            return Err(CoreError::field("resolution", self.resolution, "must be between 1 and 4096 pixels"));
        }
        Ok(())
    }

    /// A short key such as `96-rgb`, usable in file names.
    pub fn key(&self) -> String {
        format!("{}-{}", self.resolution, self.color)
    }
}

impl std::fmt::Display for DataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.resolution, self.color)
    }
}

impl std::str::FromStr for DataConfig {
    type Err = CoreError;
    /// Parses `96,rgb`, `96/grayscale` or `96-rgb`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse_err =
            |reason: &str| CoreError::Parse { what: "data configuration", input: s.to_string(), reason: reason.into() };
        let mut parts = s.trim().split([',', '/', '-', ' ']).filter(|p| !p.is_empty());
        let res = parts.next().ok_or_else(|| parse_err("expected RESOLUTION,COLOUR such as 96,rgb"))?;
        let color = parts.next().ok_or_else(|| parse_err("expected RESOLUTION,COLOUR such as 96,rgb"))?;
        if parts.next().is_some() {
            return Err(parse_err("expected exactly two parts, RESOLUTION,COLOUR"));
        }
        let resolution: u32 = res.parse().map_err(|_| parse_err("resolution is not a whole number"))?;
        let dc = DataConfig::new(resolution, color.parse()?);
        dc.validate()?;
        Ok(dc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        for s in ["96,rgb", "96/rgb", "96-rgb", " 96 , rgb "] {
            assert_eq!(s.parse::<DataConfig>().ok(), Some(DataConfig::new(96, Color::Rgb)), "{s}");
        }
        assert_eq!("32,mono".parse::<DataConfig>().ok(), Some(DataConfig::new(32, Color::Grayscale)));
        assert!("0,rgb".parse::<DataConfig>().is_err());
        assert!("96".parse::<DataConfig>().is_err());
        assert!("96,blue".parse::<DataConfig>().is_err());
        assert!("x,rgb".parse::<DataConfig>().is_err());
    }

    #[test]
    fn display_roundtrip() {
        let d = DataConfig::new(160, Color::Grayscale);
        assert_eq!(d.to_string().parse::<DataConfig>().ok(), Some(d));
        assert_eq!(d.key(), "160-grayscale");
        assert_eq!(d.input_elements(), 160 * 160);
    }
}
