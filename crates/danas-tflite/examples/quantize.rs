//! Exports a candidate with seeded random weights as float and int8 TFLite models,
//! compares the int8 outputs with the float ones, and prints the C array's header.
//!
//! `cargo run -p danas-tflite --example quantize`

use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_tflite::{FloatNet, QuantOptions, c_array, calibrate, float_model, interp, quantize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cand = Candidate::new(DataConfig::new(24, Color::Grayscale), Arch::mobilenet_v2(0.35, [1, 1, 0, 0, 0]));
    let bp = cand.blueprint(3)?;
    let float = float_model(&bp, &FloatNet::random(&bp, 7), true)?;
    let pixels = (24 * 24) as u32;
    // Calibration images: seeded patterns in [-1, 1], as danas feeds pixels.
    let images: Vec<Vec<f32>> =
        (0..8u32).map(|k| (0..pixels).map(|i| ((i * 31 + k * 57) % 256) as f32 / 127.5 - 1.0).collect()).collect();
    let int8 = quantize(&float, &calibrate(&float, &images)?, &QuantOptions::default())?;
    let (fb, qb) = (float.to_bytes()?, int8.to_bytes()?);
    println!("{cand}: float model {} B, int8 model {} B", fb.len(), qb.len());
    let out = int8.outputs[0] as usize;
    for x in images.iter().take(3) {
        let f = interp::run_float(&float, x)?[out].clone().unwrap_or_default();
        let q: Vec<i8> = x.iter().map(|&v| (((v + 1.0) * 127.5).round() as i32 - 128) as i8).collect();
        let y = interp::run_int8(&int8, &q)?[out].clone().unwrap_or_default();
        let p: Vec<String> = y.iter().map(|&v| format!("{:.3}", (f32::from(v) + 128.0) / 256.0)).collect();
        println!("  float probabilities {f:.3?}, int8 {}", p.join(", "));
    }
    let (header, _) = c_array(&qb, "g_model_data", 20_000, "example");
    println!("{}", header.lines().find(|l| l.contains("kTensorArenaSize")).unwrap_or(""));
    Ok(())
}
