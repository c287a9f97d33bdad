//! `check()` runs src/model/simd128.rs's loops on every length up to 70 and some long ones, each from four offsets
//! (whole vectors, tails, unaligned starts), against scalar arithmetic, and returns 0 or the first failing case:
//! `kind × 1,000,000 + length × 4 + offset`, kind 1 for `axpy`, 2 for `dot`.

#[path = "../../src/model/simd128.rs"]
mod simd128;

/// Values in [-1, 1) from a fixed linear congruential sequence.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn axpy_ok(n: usize, offset: usize) -> bool {
    let (o, w) = (values(n + offset, 1), values(n + offset, 2));
    let a = 0.75f32;
    let mut got = o.clone();
    simd128::axpy(&mut got[offset..], a, &w[offset..]);
    // The first `offset` values stay; the rest are o + a·w rounded as a scalar loop rounds them (no fused
    // multiply-add in either).
    (0..n + offset).all(|i| got[i] == if i < offset { o[i] } else { o[i] + a * w[i] })
}

fn dot_ok(n: usize, offset: usize) -> bool {
    let (a, b) = (values(n + offset, 3), values(n + offset, 4));
    let (a, b) = (&a[offset..], &b[offset..]);
    let want: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let scale: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
    ((simd128::dot(a, b) as f64) - want).abs() <= 1e-6 * scale.max(1.0)
}

#[unsafe(no_mangle)]
pub extern "C" fn check() -> u32 {
    let lengths = (0..=70).chain([255, 256, 257, 768, 3072, 50257]);
    for n in lengths {
        for offset in 0..4 {
            let case = (n * 4 + offset) as u32;
            if !axpy_ok(n, offset) {
                return 1_000_000 + case;
            }
            if !dot_ok(n, offset) {
                return 2_000_000 + case;
            }
        }
    }
    0
}
