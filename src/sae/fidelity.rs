//! How faithfully an SAE reconstructs its input: per-row squared and relative error, and the fraction of the
//! inputs' variance it leaves unexplained.

use crate::model::weights::HostTensor;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReconstructionError {
    /// Mean squared error of each row, ‖x − x̂‖² / d.
    pub mse: Vec<f32>,
    /// ‖x − x̂‖ / ‖x‖ of each row (infinite for a zero row reconstructed as non-zero, 0 if both are zero).
    pub relative: Vec<f32>,
    /// Σ‖x − x̂‖² / Σ‖x − mean row‖²; None with fewer than two rows or no variance.
    pub fraction_unexplained: Option<f32>,
}

/// The reconstruction error of `rec` for `x`, both [n, d].
pub fn reconstruction_error(x: &HostTensor, rec: &HostTensor) -> ReconstructionError {
    let d = *x.shape.last().unwrap_or(&1);
    let n = x.data.len() / d.max(1);
    let mut mean = vec![0.0f64; d];
    for row in x.data.chunks(d) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64 / n as f64);
    }
    let (mut mse, mut relative) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut residual, mut variance) = (0.0f64, 0.0f64);
    for (xr, rr) in x.data.chunks(d).zip(rec.data.chunks(d)) {
        let err: f64 = xr.iter().zip(rr).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let size: f64 = xr.iter().map(|a| (*a as f64).powi(2)).sum();
        mse.push((err / d as f64) as f32);
        relative.push(if err == 0.0 { 0.0 } else { (err / size).sqrt() as f32 });
        residual += err;
        variance += xr.iter().zip(&mean).map(|(a, m)| (*a as f64 - m).powi(2)).sum::<f64>();
    }
    let fraction_unexplained = (n >= 2 && variance > 0.0).then(|| (residual / variance) as f32);
    ReconstructionError { mse, relative, fraction_unexplained }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_by_hand() {
        let x = HostTensor::new(vec![2, 2], vec![3.0, 4.0, -3.0, -4.0]);
        let rec = HostTensor::new(vec![2, 2], vec![3.0, 4.0, 0.0, 0.0]);
        let e = reconstruction_error(&x, &rec);
        assert_eq!(e.mse, vec![0.0, 12.5]);
        assert_eq!(e.relative, vec![0.0, 1.0]);
        assert_eq!(e.fraction_unexplained, Some(0.5)); // 25 of the 50 around the mean row (0, 0)
        let zero = HostTensor::new(vec![1, 2], vec![0.0, 0.0]);
        let e = reconstruction_error(&zero, &HostTensor::new(vec![1, 2], vec![1.0, 0.0]));
        assert_eq!((e.relative[0], e.fraction_unexplained), (f32::INFINITY, None));
    }
}
