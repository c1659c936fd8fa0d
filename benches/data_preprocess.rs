//! 640×480 JPEG → 96×96 grayscale preprocessing, one image at a time on one core.
//! Target: ≥ 250 images/s per core. Run: `cargo bench --bench data_preprocess`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use danas_data::image;
use danas_data::transform;

fn photo_like_jpeg() -> Vec<u8> {
    // Smooth gradients plus texture, so the JPEG has realistic entropy (~50–80 kB).
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let t = ((x * 13 + y * 7) ^ (x * y / 5)) % 64;
        image::Rgb([
            (x * 255 / 640) as u8 / 2 + t as u8,
            (y * 255 / 480) as u8 / 2 + (t as u8 / 2),
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn bench(c: &mut Criterion) {
    let jpeg = photo_like_jpeg();
    eprintln!("JPEG size: {} bytes", jpeg.len());
    let mut g = c.benchmark_group("preprocess_640x480_jpeg");
    g.throughput(Throughput::Elements(1));
    let mut out = vec![0f32; 96 * 96];
    // What the cache build does once per image plus the evaluation transform at 96.
    g.bench_function("decode_base128_eval96_gray", |b| {
        b.iter(|| {
            let full = transform::decode(&jpeg).unwrap();
            let base = transform::shrink_shorter(full, danas_data::base_side(96), 2.0).unwrap();
            let img = transform::eval_crop(&base, 96).unwrap();
            transform::to_planar(&img.data, true, &mut out);
        })
    });
    g.bench_function("decode_eval96_gray", |b| {
        b.iter(|| {
            let full = transform::decode(&jpeg).unwrap();
            let img = transform::eval_crop(&full, 96).unwrap();
            transform::to_planar(&img.data, true, &mut out);
        })
    });
    g.bench_function("decode_only", |b| b.iter(|| transform::decode(&jpeg).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
