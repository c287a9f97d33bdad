//! GGUF control vectors, the files llama.cpp's `--control-vector` reads and repeng writes: metadata
//! `general.architecture = "controlvector"`, `controlvector.model_hint` and `controlvector.layer_count`, and one F32
//! [d_model] tensor `direction.{k}` per layer. llama.cpp adds direction k to the output of block k (counting from
//! 0), which is TransformerLens's `blocks.{k}.hook_resid_post`, the same stream as `blocks.{k+1}.hook_resid_pre`;
//! it has no slot for k = 0, so a vector at `blocks.0.hook_resid_post` / `blocks.1.hook_resid_pre` (or at
//! `blocks.0.hook_resid_pre`, the embeddings) cannot go there.
//!
//! Files are untrusted: every count and length is checked against the bytes that are there before anything is
//! allocated from it.

use crate::error::{Error, Result};
use crate::model::hooks::HookPoint;

const MAGIC: &[u8; 4] = b"GGUF";
const VERSION: u32 = 3;
const ALIGNMENT: usize = 32;
const ARCH: &str = "controlvector";
/// GGUF value types used here.
const TYPE_U32: u32 = 4;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
/// ggml's F32 tensor type.
const GGML_F32: u32 = 0;

/// A control vector: one direction per layer (k ≥ 1), as llama.cpp numbers them.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlVector {
    pub model_hint: String,
    pub directions: Vec<(usize, Vec<f32>)>,
}

/// The llama.cpp layer whose output is `hook`, or why a vector there cannot be a control vector.
pub fn layer_of(hook: HookPoint) -> Result<usize> {
    let k = match hook {
        HookPoint::ResidPost(k) => Some(k),
        HookPoint::ResidPre(l) => l.checked_sub(1),
        _ => None,
    };
    match k {
        Some(k) if k >= 1 => Ok(k),
        _ => Err(Error::invalid(format!(
            "a vector at {hook} cannot be a llama.cpp control vector: those are added to a block's output \
             (blocks.K.hook_resid_post = blocks.K+1.hook_resid_pre) for K ≥ 1, and llama.cpp has no slot for block \
             0's output or the embeddings"
        ))),
    }
}

/// The hook llama.cpp's layer `k` adds to.
pub fn hook_of(k: usize) -> HookPoint {
    HookPoint::ResidPost(k)
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
}

/// The file's bytes: metadata in the order repeng writes it, then the tensors in layer order, each aligned.
pub fn write(cv: &ControlVector) -> Vec<u8> {
    let mut directions = cv.directions.clone();
    directions.sort_by_key(|(k, _)| *k);
    let mut out = Vec::new();
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend((directions.len() as u64).to_le_bytes());
    out.extend(3u64.to_le_bytes()); // metadata entries
    string(&mut out, "general.architecture");
    out.extend(TYPE_STRING.to_le_bytes());
    string(&mut out, ARCH);
    string(&mut out, &format!("{ARCH}.model_hint"));
    out.extend(TYPE_STRING.to_le_bytes());
    string(&mut out, &cv.model_hint);
    string(&mut out, &format!("{ARCH}.layer_count"));
    out.extend(TYPE_U32.to_le_bytes());
    out.extend((directions.len() as u32).to_le_bytes());
    let mut offset = 0usize;
    for (k, v) in &directions {
        string(&mut out, &format!("direction.{k}"));
        out.extend(1u32.to_le_bytes()); // one dimension
        out.extend((v.len() as u64).to_le_bytes());
        out.extend(GGML_F32.to_le_bytes());
        out.extend((offset as u64).to_le_bytes());
        offset = (offset + 4 * v.len()).next_multiple_of(ALIGNMENT);
    }
    pad(&mut out);
    for (_, v) in &directions {
        out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        pad(&mut out);
    }
    out
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    file: &'a str,
}

impl<'a> Reader<'a> {
    fn bad(&self, why: impl std::fmt::Display) -> Error {
        Error::file(self.file.to_string(), format!("not a GGUF control vector: {why} (at byte {})", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| self.bad("cut short"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A count or length, which can be no larger than the bytes left (each item takes at least one).
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(self.bad(format!("a length of {n} with {left} bytes left")));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| self.bad("a string that is not UTF-8"))
    }

    /// Skips one value of `kind`, returning a string or u32 when it is one.
    fn value(&mut self, kind: u32, depth: u32) -> Result<Value> {
        let fixed = match kind {
            0 | 1 | 7 => 1, // u8, i8, bool
            2 | 3 => 2,     // u16, i16
            5 | 6 => 4,     // i32, f32
            10..=12 => 8,   // u64, i64, f64
            TYPE_U32 => return Ok(Value::U32(self.u32()?)),
            TYPE_STRING => return Ok(Value::String(self.string()?)),
            TYPE_ARRAY if depth < 4 => {
                let inner = self.u32()?;
                let n = self.len()?;
                for _ in 0..n {
                    self.value(inner, depth + 1)?;
                }
                return Ok(Value::Other);
            }
            _ => return Err(self.bad(format!("an unknown value type {kind}"))),
        };
        self.take(fixed)?;
        Ok(Value::Other)
    }
}

enum Value {
    U32(u32),
    String(String),
    Other,
}

/// Reads a control vector; `file` names it in errors.
pub fn read(bytes: &[u8], file: &str) -> Result<ControlVector> {
    let mut r = Reader { bytes, at: 0, file };
    if r.take(4)? != MAGIC {
        return Err(r.bad("no GGUF magic"));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(r.bad(format!("GGUF version {version} (this reads 2 and 3)")));
    }
    let (n_tensors, n_kv) = (r.len()?, r.len()?);
    let (mut arch, mut hint, mut alignment) = (None, String::new(), ALIGNMENT);
    for _ in 0..n_kv {
        let key = r.string()?;
        let kind = r.u32()?;
        match (key.as_str(), r.value(kind, 0)?) {
            ("general.architecture", Value::String(s)) => arch = Some(s),
            ("controlvector.model_hint", Value::String(s)) => hint = s,
            ("general.alignment", Value::U32(a)) if a.is_power_of_two() && a <= 1 << 16 => alignment = a as usize,
            ("general.alignment", _) => return Err(r.bad("an alignment that is not a power of two")),
            _ => {}
        }
    }
    if arch.as_deref() != Some(ARCH) {
        return Err(r.bad(format!("its architecture is {arch:?}, not \"{ARCH}\"")));
    }
    let mut infos = Vec::with_capacity(n_tensors.min(1 << 12));
    for _ in 0..n_tensors {
        let name = r.string()?;
        let dims = r.u32()?;
        if dims == 0 || dims > 4 {
            return Err(r.bad(format!("{name} has {dims} dimensions")));
        }
        let mut n = 1usize;
        for _ in 0..dims {
            n = n.checked_mul(r.len()?).ok_or_else(|| r.bad(format!("{name}'s size overflows")))?;
        }
        let kind = r.u32()?;
        let offset = r.u64()?;
        let k = name.strip_prefix("direction.").and_then(|k| k.parse::<usize>().ok());
        match k {
            Some(k) if k >= 1 && kind == GGML_F32 && dims == 1 => infos.push((k, n, offset)),
            Some(_) => return Err(r.bad(format!("{name} is not a 1-D F32 tensor for a layer ≥ 1"))),
            None => {} // other tensors are not directions
        }
    }
    let data = r.at.next_multiple_of(alignment);
    let mut directions = Vec::with_capacity(infos.len());
    for (k, n, offset) in infos {
        let start = usize::try_from(offset).ok().and_then(|o| o.checked_add(data));
        let end = start.and_then(|s| s.checked_add(n.checked_mul(4)?));
        let Some((start, end)) = start.zip(end).filter(|&(_, e)| e <= bytes.len()) else {
            return Err(r.bad(format!("direction.{k}'s data lies past the end of the file")));
        };
        let values = bytes[start..end].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4"))).collect();
        directions.push((k, values));
    }
    if directions.is_empty() {
        return Err(r.bad("no direction.K tensor"));
    }
    directions.sort_by_key(|(k, _)| *k);
    if directions.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(r.bad("two directions for one layer"));
    }
    Ok(ControlVector { model_hint: hint, directions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hooks() {
        let cv = ControlVector {
            model_hint: "gpt2".into(),
            directions: vec![(3, vec![1.0, -2.0, 3.5]), (1, vec![0.25; 3])],
        };
        let back = read(&write(&cv), "cv.gguf").unwrap();
        assert_eq!(back.model_hint, "gpt2");
        assert_eq!(back.directions, vec![(1, vec![0.25; 3]), (3, vec![1.0, -2.0, 3.5])]);
        assert_eq!(layer_of(HookPoint::ResidPre(4)).unwrap(), 3);
        assert_eq!(layer_of(HookPoint::ResidPost(4)).unwrap(), 4);
        for h in [HookPoint::ResidPre(0), HookPoint::ResidPre(1), HookPoint::ResidPost(0), HookPoint::ResidMid(2)] {
            assert!(layer_of(h).unwrap_err().to_string().contains("cannot be a llama.cpp control vector"), "{h}");
        }
        assert_eq!(hook_of(3).to_string(), "blocks.3.hook_resid_post");
        let bytes = write(&cv);
        for cut in [0, 3, 20, bytes.len() / 2] {
            assert!(read(&bytes[..cut], "cut.gguf").is_err(), "cut at {cut}");
        }
    }
}
