//! Keys and values of the positions already processed, per layer, so generation feeds one token a step.

use burn::tensor::Tensor;

#[derive(Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>, // per layer: k, v [b, h, len, d_head]
    len: usize,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        Self { layers: (0..n_layers).map(|_| None).collect(), len: 0 }
    }

    /// Positions already cached: the absolute position of the next token.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends this step's k, v for `layer` and returns all of them.
    pub fn extend(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let kv = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some(kv.clone());
        kv
    }

    /// Records that a step of `n` new positions went through every layer.
    pub fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
