//! NumPy `.npz` archives (what `np.savez` and `np.savez_compressed` write, e.g. Gemma Scope's
//! `params.npz`): a zip of `.npy` arrays. Only what numpy writes is read: stored or deflated entries,
//! zip64 sizes and offsets, little-endian float arrays in C order.

use crate::error::{Error, Result};
use crate::model::weights::{HostTensor, Weights};
use std::collections::HashMap;

/// One archive member: where its bytes are and how to unpack them.
struct Entry {
    deflated: bool,
    data: std::ops::Range<usize>,
    size: usize,
    crc: u32,
}

/// A parsed `.npz`; arrays are looked up by name without `.npy` and decoded on request.
pub struct NpzWeights<'a> {
    file: String,
    bytes: &'a [u8],
    entries: HashMap<String, Entry>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u64)
}
fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const EOCD: u64 = 0x0605_4b50;
const ZIP64_LOCATOR: u64 = 0x0706_4b50;
const ZIP64_EOCD: u64 = 0x0606_4b50;
const CENTRAL: u64 = 0x0201_4b50;
const LOCAL: u64 = 0x0403_4b50;

impl<'a> NpzWeights<'a> {
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<Self> {
        let bad = |what: &str| Error::file(file, format!("not a valid .npz (zip) archive: {what}"));
        // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the very end.
        let eocd = (0..=bytes.len().saturating_sub(22))
            .rev()
            .take(65_536 + 22)
            .find(|&i| u32_at(bytes, i) == Some(EOCD))
            .ok_or_else(|| bad("no end-of-central-directory record (truncated?)"))?;
        let (mut count, mut dir) = (u16_at(bytes, eocd + 10).unwrap(), u32_at(bytes, eocd + 16).unwrap());
        if count == 0xFFFF || dir == 0xFFFF_FFFF {
            // zip64: a locator just before the record points at the zip64 end record.
            let loc = eocd.checked_sub(20).filter(|&l| u32_at(bytes, l) == Some(ZIP64_LOCATOR));
            let end64 = loc.and_then(|l| u64_at(bytes, l + 8)).map(|o| o as usize);
            let end64 = end64.filter(|&o| u32_at(bytes, o) == Some(ZIP64_EOCD)).ok_or_else(|| bad("bad zip64 end"))?;
            count = u64_at(bytes, end64 + 32).ok_or_else(|| bad("truncated zip64 end"))?;
            dir = u64_at(bytes, end64 + 48).ok_or_else(|| bad("truncated zip64 end"))?;
        }
        let mut entries = HashMap::new();
        let mut at = dir as usize;
        for _ in 0..count {
            if u32_at(bytes, at) != Some(CENTRAL) {
                return Err(bad("central directory entry missing (truncated or corrupt)"));
            }
            let field = |o: usize, w: usize| if w == 2 { u16_at(bytes, at + o) } else { u32_at(bytes, at + o) };
            let truncated = || bad("truncated central directory");
            let method = field(10, 2).ok_or_else(truncated)?;
            let crc = field(16, 4).ok_or_else(truncated)? as u32;
            let mut compressed = field(20, 4).ok_or_else(truncated)?;
            let mut size = field(24, 4).ok_or_else(truncated)?;
            let (name_len, extra_len, comment_len) = (
                field(28, 2).ok_or_else(truncated)? as usize,
                field(30, 2).ok_or_else(truncated)? as usize,
                field(32, 2).ok_or_else(truncated)? as usize,
            );
            let mut local = field(42, 4).ok_or_else(truncated)?;
            let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(truncated)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = bytes.get(at + 46 + name_len..at + 46 + name_len + extra_len).ok_or_else(truncated)?;
            read_zip64_extra(extra, &mut size, &mut compressed, &mut local);
            at += 46 + name_len + extra_len + comment_len;

            let local = local as usize;
            if u32_at(bytes, local) != Some(LOCAL) {
                return Err(bad(&format!("member {name}: local header missing")));
            }
            let start =
                local + 30 + u16_at(bytes, local + 26).unwrap() as usize + u16_at(bytes, local + 28).unwrap() as usize;
            let end = start.checked_add(compressed as usize).filter(|&e| e <= bytes.len());
            let end = end.ok_or_else(|| bad(&format!("member {name} runs past the end (truncated?)")))?;
            let deflated = match method {
                0 => false,
                8 => true,
                m => return Err(bad(&format!("member {name} uses compression method {m} (numpy writes 0 or 8)"))),
            };
            let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
            entries.insert(key, Entry { deflated, data: start..end, size: size as usize, crc });
        }
        Ok(Self { file: file.to_string(), bytes, entries })
    }

    /// The array names in the archive, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.keys().cloned().collect();
        names.sort();
        names
    }

    /// The array `name` whatever its shape.
    pub fn get_any(&self, name: &str) -> Result<HostTensor> {
        let err = |msg: String| Error::Tensor { file: self.file.clone(), tensor: name.to_string(), msg };
        let entry = self.entries.get(name).ok_or_else(|| err("missing".into()))?;
        let raw = &self.bytes[entry.data.clone()];
        let unpacked;
        let npy = if entry.deflated {
            unpacked = miniz_oxide::inflate::decompress_to_vec_with_limit(raw, entry.size)
                .map_err(|e| err(format!("cannot inflate: {e:?} (corrupt archive?)")))?;
            &unpacked[..]
        } else {
            raw
        };
        if npy.len() != entry.size || crc32fast::hash(npy) != entry.crc {
            return Err(err("checksum mismatch (corrupt or truncated archive)".into()));
        }
        parse_npy(npy).map_err(err)
    }
}

impl Weights for NpzWeights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.get_any(name)?;
        if t.shape != shape {
            return Err(Error::Tensor {
                file: self.file.clone(),
                tensor: name.to_string(),
                msg: format!("shape {:?}, expected {:?}", t.shape, shape),
            });
        }
        Ok(t)
    }

    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// The zip64 extra field (id 1) holds, in this order, whichever of the sizes and offset overflowed 32 bits.
fn read_zip64_extra(mut extra: &[u8], size: &mut u64, compressed: &mut u64, local: &mut u64) {
    while extra.len() >= 4 {
        let (id, len) = (u16_at(extra, 0).unwrap(), u16_at(extra, 2).unwrap() as usize);
        let body = extra.get(4..4 + len).unwrap_or_default();
        if id == 1 {
            let mut at = 0;
            for field in [size, compressed, local] {
                if *field == 0xFFFF_FFFF
                    && let Some(v) = u64_at(body, at)
                {
                    *field = v;
                    at += 8;
                }
            }
            return;
        }
        extra = extra.get(4 + len..).unwrap_or_default();
    }
}

/// A `.npy` array: magic, version, a Python-dict header (`descr`, `fortran_order`, `shape`), raw data.
fn parse_npy(b: &[u8]) -> std::result::Result<HostTensor, String> {
    if !b.starts_with(b"\x93NUMPY") || b.len() < 10 {
        return Err("not a .npy array".into());
    }
    let (header_len, at) = match b[6] {
        1 => (u16_at(b, 8).unwrap() as usize, 10),
        2 | 3 => (u32_at(b, 8).ok_or("truncated .npy header")? as usize, 12),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = b.get(at..at + header_len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| ".npy header is not text")?;
    let value = |key: &str| -> std::result::Result<&str, String> {
        let rest = header.split_once(&format!("'{key}':")).ok_or(format!(".npy header has no '{key}'"))?.1;
        Ok(rest.trim_start())
    };
    let descr = value("descr")?.trim_start_matches('\'').split('\'').next().unwrap_or_default();
    if value("fortran_order")?.starts_with("True") {
        return Err("Fortran-order arrays are not supported (save it with np.ascontiguousarray)".into());
    }
    let shape = value("shape")?;
    let shape = shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("bad .npy shape")?;
    let shape: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().map_err(|_| format!("bad .npy shape entry \"{s}\"")))
        .collect::<std::result::Result<_, _>>()?;
    let data = &b[at + header_len..];
    let (width, dtype) = match descr {
        "<f4" => (4, safetensors::Dtype::F32),
        "<f2" => (2, safetensors::Dtype::F16),
        "<f8" => (8, safetensors::Dtype::F64),
        other => return Err(format!("dtype '{other}' is not supported (expected little-endian float: <f2, <f4, <f8)")),
    };
    let n: usize = shape.iter().product();
    if data.len() != n * width {
        return Err(format!("{} data bytes for shape {shape:?} of '{descr}' (truncated?)", data.len()));
    }
    Ok(HostTensor::new(shape, crate::model::weights::decode(dtype, data)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn npy_headers() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = parse_npy(&npy("<f4", "(2, 3)", &data)).unwrap();
        assert_eq!((t.shape, t.data[5]), (vec![2, 3], 6.0));
        assert_eq!(parse_npy(&npy("<f4", "(6,)", &data)).unwrap().shape, vec![6]);
        assert_eq!(parse_npy(&npy("<f4", "()", &data[..4])).unwrap().shape, Vec::<usize>::new());
        assert!(parse_npy(&npy("<f4", "(2, 4)", &data)).unwrap_err().contains("truncated"));
        assert!(parse_npy(&npy("<i8", "(3,)", &data[..24])).unwrap_err().contains("'<i8' is not supported"));
        assert!(parse_npy(b"PK\x03\x04").is_err());
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let e = NpzWeights::parse(b"not a zip at all, just some bytes", "p.npz").err().unwrap().to_string();
        assert!(e.starts_with("p.npz: not a valid .npz (zip) archive"), "{e}");
    }
}
