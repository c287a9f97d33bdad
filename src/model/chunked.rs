//! A matrix stored as row chunks, so that no single GPU buffer passes the 128 MiB storage-binding
//! limit of lavapipe and Android Chrome (GPT-2's 154 MB token embedding is three chunks).

use super::layers::{in_dtype_of, product, to_f32, upload};
use super::weights::HostTensor;
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

/// Largest chunk in bytes: half the 128 MiB binding limit, leaving room for the backend's padding.
pub const MAX_CHUNK_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct ChunkedRows {
    chunks: Vec<Tensor<2>>, // each [rows_per_chunk (last may be fewer), cols]
    rows_per_chunk: usize,
    pub rows: usize,
    pub cols: usize,
}

impl ChunkedRows {
    /// Splits a host [rows, cols] matrix into chunks of at most `max_bytes` and uploads them.
    pub fn upload(h: HostTensor, device: &Device, max_bytes: usize) -> Self {
        let (rows, cols) = (h.shape[0], h.shape[1]);
        let rows_per_chunk = (max_bytes / (4 * cols.max(1))).clamp(1, rows.max(1));
        let chunks = h
            .data
            .chunks(rows_per_chunk * cols)
            .map(|c| upload::<2>(HostTensor::new(vec![c.len() / cols, cols], c.to_vec()), device))
            .collect();
        Self { chunks, rows_per_chunk, rows, cols }
    }

    /// Holds the chunks in f16 (`device::Precision::F16`).
    pub fn half(&mut self) {
        self.chunks = self.chunks.drain(..).map(|c| c.cast(FloatDType::F16)).collect();
    }

    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Looks up rows by index: ids [s] → [1, s, cols]. Each chunk gathers the ids that fall in it,
    /// the others read row 0 and are masked out.
    pub fn embed(&self, ids: &[u32], device: &Device) -> Tensor<3> {
        let s = ids.len();
        let mut out: Option<Tensor<2>> = None;
        for (c, chunk) in self.chunks.iter().enumerate() {
            let lo = c * self.rows_per_chunk;
            let hi = lo + chunk.dims()[0];
            let inside = |id: u32| (lo..hi).contains(&(id as usize));
            if !ids.iter().any(|&id| inside(id)) {
                continue;
            }
            let local: Vec<i64> =
                ids.iter().map(|&id| if inside(id) { (id as usize - lo) as i64 } else { 0 }).collect();
            let keep: Vec<f32> = ids.iter().map(|&id| if inside(id) { 1.0 } else { 0.0 }).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(local, [s]), device);
            let keep = Tensor::<2>::from_data(TensorData::new(keep, [s, 1]), device);
            let rows = to_f32(chunk.clone().select(0, idx)) * keep; // [s, cols]
            out = Some(match out {
                Some(o) => o + rows,
                None => rows,
            });
        }
        out.expect("ids are checked against the vocabulary before lookup").unsqueeze::<3>()
    }

    /// `x @ Mᵀ`, chunk by chunk: [b, s, cols] → [b, s, rows]. Computed as `(M @ xᵀ)ᵀ`, so each chunk is read
    /// row by row as stored: with one position (a decode step) that is a plain matrix-vector product, where the
    /// transposed chunk would be repacked, all 154 MB of GPT-2's, for every token.
    pub fn unembed(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, c] = x.dims();
        let xt = in_dtype_of(x.reshape([b * s, c]).transpose(), &self.chunks[0]); // [cols, b·s]
        let parts = self.chunks.iter().map(|chunk| product(chunk.clone(), xt.clone())).collect(); // [rows_i, b·s]
        to_f32(Tensor::cat(parts, 0)).transpose().reshape([b, s, self.rows]) // [b, s, rows]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::read;

    /// Chunked lookup and unembedding equal the unchunked ones, for chunk sizes that do and do not
    /// divide the row count.
    #[test]
    fn chunks_change_nothing() {
        let device = Device::flex();
        let (rows, cols) = (10, 3);
        let m = HostTensor::new(vec![rows, cols], (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect());
        let ids = [9u32, 0, 4, 4, 7];
        let x = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75], [1, 2, 3]), &device);
        let whole = ChunkedRows::upload(m.clone(), &device, usize::MAX);
        assert_eq!(whole.n_chunks(), 1);
        let want_embed = pollster::block_on(read(whole.embed(&ids, &device))).unwrap();
        let want_unembed = pollster::block_on(read(whole.unembed(x.clone()))).unwrap();
        for max_bytes in [4 * cols, 8 * cols, 12 * cols] {
            let c = ChunkedRows::upload(m.clone(), &device, max_bytes);
            assert_eq!(c.n_chunks(), rows.div_ceil(max_bytes / (4 * cols)));
            assert_eq!(pollster::block_on(read(c.embed(&ids, &device))).unwrap(), want_embed);
            let got = pollster::block_on(read(c.unembed(x.clone()))).unwrap();
            assert_eq!(got.shape, vec![1, 2, rows]);
            for (a, b) in got.data.iter().zip(&want_unembed.data) {
                assert!((a - b).abs() < 1e-6);
            }
        }
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(want_embed.data[i * cols..(i + 1) * cols], m.data[id as usize * cols..(id as usize + 1) * cols]);
        }
    }

    #[test]
    fn gpt2_small_embedding_fits_the_binding_limit() {
        // 50257 × 768 f32 = 154 MB: every chunk must stay under 128 MiB.
        let rows_per_chunk = MAX_CHUNK_BYTES / (4 * 768);
        assert!(rows_per_chunk * 768 * 4 <= 128 << 20);
        assert_eq!(50257usize.div_ceil(rows_per_chunk), 3);
    }
}
