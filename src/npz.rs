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
        let short = || bad("truncated end-of-central-directory record");
        let (mut count, mut dir) =
            (u16_at(bytes, eocd + 10).ok_or_else(short)?, u32_at(bytes, eocd + 16).ok_or_else(short)?);
        if count == 0xFFFF || dir == 0xFFFF_FFFF {
            // zip64: a locator just before the record points at the zip64 end record.
            let loc = eocd.checked_sub(20).filter(|&l| u32_at(bytes, l) == Some(ZIP64_LOCATOR));
            let end64 = loc.and_then(|l| u64_at(bytes, l + 8)).and_then(|o| usize::try_from(o).ok());
            let end64 = end64.filter(|&o| u32_at(bytes, o) == Some(ZIP64_EOCD)).ok_or_else(|| bad("bad zip64 end"))?;
            count = u64_at(bytes, end64 + 32).ok_or_else(|| bad("truncated zip64 end"))?;
            dir = u64_at(bytes, end64 + 48).ok_or_else(|| bad("truncated zip64 end"))?;
        }
        // Each entry takes at least 46 bytes, so a count the file cannot hold is corrupt (and no loop runs 2^64 times).
        if count > (bytes.len() / 46) as u64 {
            return Err(bad(&format!("{count} entries declared in a {}-byte file", bytes.len())));
        }
        let mut entries = HashMap::new();
        let mut at = usize::try_from(dir).map_err(|_| bad("central directory offset out of range"))?;
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
            // `at` is within the file (its signature was read), so these sums stay far from overflow.
            let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(truncated)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = bytes.get(at + 46 + name_len..at + 46 + name_len + extra_len).ok_or_else(truncated)?;
            read_zip64_extra(extra, &mut size, &mut compressed, &mut local);
            at += 46 + name_len + extra_len + comment_len;

            let missing = || bad(&format!("member {name}: local header missing or truncated"));
            let local = usize::try_from(local).map_err(|_| missing())?;
            if u32_at(bytes, local) != Some(LOCAL) {
                return Err(missing());
            }
            let (name_len, extra_len) =
                (u16_at(bytes, local + 26).ok_or_else(missing)?, u16_at(bytes, local + 28).ok_or_else(missing)?);
            let start = local + 30 + name_len as usize + extra_len as usize;
            let end = usize::try_from(compressed).ok().and_then(|c| start.checked_add(c)).filter(|&e| e <= bytes.len());
            let end = end.ok_or_else(|| bad(&format!("member {name} runs past the end (truncated?)")))?;
            let deflated = match method {
                0 => false,
                8 => true,
                m => return Err(bad(&format!("member {name} uses compression method {m} (numpy writes 0 or 8)"))),
            };
            let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
            let size = usize::try_from(size).map_err(|_| bad(&format!("member {name} declares {size} bytes")))?;
            entries.insert(key, Entry { deflated, data: start..end, size, crc });
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
        self.read(name, None)
    }

    /// The array `name`, checked against `expect` (when given) before its data is unpacked: a member can only
    /// inflate to what its own `.npy` header promises, which must be the shape asked for, the size the archive
    /// declares and at most `MAX_ARRAY_BYTES` — never to what a crafted size field alone asks for.
    fn read(&self, name: &str, expect: Option<&[usize]>) -> Result<HostTensor> {
        let err = |msg: String| Error::Tensor { file: self.file.clone(), tensor: name.to_string(), msg };
        let entry = self.entries.get(name).ok_or_else(|| err("missing".into()))?;
        let raw = &self.bytes[entry.data.clone()];
        // The header first: from the stored bytes, or the first 64 KiB inflated.
        let head_bytes;
        let head = if entry.deflated {
            head_bytes = match miniz_oxide::inflate::decompress_to_vec_with_limit(raw, NPY_HEADER_MAX) {
                Ok(all) => all,
                Err(e) if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => e.output,
                Err(e) => return Err(err(format!("cannot inflate: {e} (corrupt archive?)"))),
            };
            &head_bytes[..]
        } else {
            raw
        };
        let header = npy_header(head).map_err(err)?;
        if let Some(expect) = expect
            && header.shape != expect
        {
            return Err(err(format!("shape {:?}, expected {expect:?}", header.shape)));
        }
        if header.total != entry.size {
            return Err(err(format!(
                "the archive declares {} bytes but the array's header makes {} (corrupt archive?)",
                entry.size, header.total
            )));
        }
        if header.total > MAX_ARRAY_BYTES {
            return Err(err(format!("{} bytes is over the {MAX_ARRAY_BYTES}-byte limit for one array", header.total)));
        }
        let unpacked;
        let npy = if entry.deflated {
            unpacked = miniz_oxide::inflate::decompress_to_vec_with_limit(raw, header.total)
                .map_err(|e| err(format!("cannot inflate: {e} (corrupt archive?)")))?;
            &unpacked[..]
        } else {
            raw
        };
        if npy.len() != entry.size || crc32fast::hash(npy) != entry.crc {
            return Err(err("checksum mismatch (corrupt or truncated archive)".into()));
        }
        let data = &npy[header.data_at..];
        Ok(HostTensor::new(header.shape, crate::model::weights::decode(header.dtype, data).map_err(err)?))
    }
}

/// The largest array an archive may unpack: 16 GiB (Gemma Scope's widest 2B encoder is 9.7 GB in f32).
const MAX_ARRAY_BYTES: usize = 16 << 30;
/// `.npy` headers are at most 64 KiB plus the 12-byte preamble (numpy pads them to 64 bytes in practice).
const NPY_HEADER_MAX: usize = 65_536 + 12;

impl Weights for NpzWeights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        self.read(name, Some(shape))
    }

    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// The zip64 extra field (id 1) holds, in this order, whichever of the sizes and offset overflowed 32 bits.
fn read_zip64_extra(mut extra: &[u8], size: &mut u64, compressed: &mut u64, local: &mut u64) {
    while let (Some(id), Some(len)) = (u16_at(extra, 0), u16_at(extra, 2)) {
        let len = len as usize;
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

/// What a `.npy` header says: the array's shape and dtype, where its data starts and the member's whole size.
struct NpyHeader {
    shape: Vec<usize>,
    dtype: safetensors::Dtype,
    data_at: usize,
    total: usize,
}

/// A `.npy` array's header: magic, version, a Python-dict header (`descr`, `fortran_order`, `shape`). `b` may be
/// only the member's first bytes.
fn npy_header(b: &[u8]) -> std::result::Result<NpyHeader, String> {
    if !b.starts_with(b"\x93NUMPY") || b.len() < 10 {
        return Err("not a .npy array".into());
    }
    let (header_len, at): (usize, usize) = match b[6] {
        1 => (u16_at(b, 8).ok_or("truncated .npy header")? as usize, 10),
        2 | 3 => (u32_at(b, 8).ok_or("truncated .npy header")? as usize, 12),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let data_at = at.checked_add(header_len).ok_or("bad .npy header length")?;
    let header = b.get(at..data_at).ok_or("truncated .npy header")?;
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
    let (width, dtype) = match descr {
        "<f4" => (4, safetensors::Dtype::F32),
        "<f2" => (2, safetensors::Dtype::F16),
        "<f8" => (8, safetensors::Dtype::F64),
        other => return Err(format!("dtype '{other}' is not supported (expected little-endian float: <f2, <f4, <f8)")),
    };
    let total = shape
        .iter()
        .try_fold(width, |n: usize, &d| n.checked_mul(d))
        .and_then(|n| n.checked_add(data_at))
        .ok_or_else(|| format!("shape {shape:?} is too large to address"))?;
    Ok(NpyHeader { shape, dtype, data_at, total })
}

/// A whole `.npy` array.
#[cfg(test)]
fn parse_npy(b: &[u8]) -> std::result::Result<HostTensor, String> {
    let h = npy_header(b)?;
    if b.len() != h.total {
        return Err(format!("{} data bytes for shape {:?} (truncated?)", b.len() - h.data_at.min(b.len()), h.shape));
    }
    Ok(HostTensor::new(h.shape, crate::model::weights::decode(h.dtype, &b[h.data_at..])?))
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

    /// A zip of `.npy` members as numpy writes it; `declared` overrides a member's uncompressed size field.
    fn zip(members: &[(&str, Vec<u8>, bool, Option<u32>)]) -> Vec<u8> {
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, data, deflate, declared) in members {
            let stored = if *deflate { miniz_oxide::deflate::compress_to_vec(data, 6) } else { data.clone() };
            let (method, crc, size) = (if *deflate { 8u16 } else { 0 }, crc32fast::hash(data), data.len() as u32);
            let size = declared.unwrap_or(size);
            let local = out.len() as u32;
            let fields = |sig: u32, central: bool| {
                let mut h = sig.to_le_bytes().to_vec();
                if central {
                    h.extend(20u16.to_le_bytes());
                }
                h.extend([20u16, 0, method, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
                h.extend([crc, stored.len() as u32, size].iter().flat_map(|v| v.to_le_bytes()));
                h.extend([name.len() as u16, 0].iter().flat_map(|v| v.to_le_bytes()));
                if central {
                    h.extend([0u16, 0, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
                    h.extend(local.to_le_bytes());
                }
                h.extend(name.as_bytes());
                h
            };
            out.extend(fields(0x0403_4b50, false));
            out.extend(&stored);
            central.extend(fields(0x0201_4b50, true));
        }
        let dir = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u16, 0, members.len() as u16, members.len() as u16].iter().flat_map(|v| v.to_le_bytes()));
        out.extend([central.len() as u32, dir].iter().flat_map(|v| v.to_le_bytes()));
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = npy("<f4", "(2, 2)", &data);
        let bytes = zip(&[("a.npy", a.clone(), false, None), ("b.npy", a, true, None)]);
        let w = NpzWeights::parse(&bytes, "p.npz").unwrap();
        assert_eq!(w.names(), ["a", "b"]);
        assert_eq!(w.get("b", &[2, 2]).unwrap().data, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(w.get_any("a").unwrap().data, [1.0, 2.0, 3.0, 4.0]);
        let e = w.get("a", &[4]).unwrap_err().to_string();
        assert!(e.contains("shape [2, 2], expected [4]"), "{e}");
    }

    #[test]
    fn corrupt_archives_are_errors_not_panics() {
        let err = |bytes: &[u8]| match NpzWeights::parse(bytes, "p.npz") {
            Ok(w) => w.names().iter().map(|n| w.get_any(n).err().map(|e| e.to_string())).collect::<Option<String>>(),
            Err(e) => Some(e.to_string()),
        };
        // An end record with nothing after its signature.
        assert!(err(b"PK\x05\x06").unwrap().contains("truncated end-of-central-directory"));
        // A central entry pointing at a local header in the last 4 bytes.
        let data = npy("<f4", "(1,)", &1.0f32.to_le_bytes());
        let mut bytes = zip(&[("a.npy", data.clone(), false, None)]);
        let local_at = bytes.len() - 22 - (46 + 5) + 42;
        let end = bytes.len() as u32;
        bytes[local_at..local_at + 4].copy_from_slice(&end.to_le_bytes());
        bytes.extend(0x0403_4b50u32.to_le_bytes());
        let e = err(&bytes).unwrap();
        assert!(e.contains("local header missing or truncated"), "{e}");
        // A shape whose byte count overflows.
        let huge = zip(&[("a.npy", npy("<f4", "(4, 4611686018427387904)", &[0; 16]), false, None)]);
        assert!(err(&huge).unwrap().contains("too large to address"));
        // More entries declared than the file could hold.
        let mut many = zip(&[("a.npy", data, false, None)]);
        let n = many.len();
        many[n - 12..n - 10].copy_from_slice(&0xFFFEu16.to_le_bytes());
        assert!(err(&many).unwrap().contains("entries declared"));
    }

    #[test]
    fn a_deflate_bomb_inflates_no_further_than_its_header_promises() {
        // 256 MiB of zeros behind a header for 4 floats, the archive declaring the full 256 MiB.
        let mut bomb = npy("<f4", "(4,)", &[0; 16]);
        let header_only = bomb.len() as u32;
        bomb.resize(256 << 20, 0);
        let bytes = zip(&[("W.npy", bomb, true, None)]);
        assert!(bytes.len() < 400_000, "{}", bytes.len());
        let w = NpzWeights::parse(&bytes, "p.npz").unwrap();
        let e = w.get_any("W").unwrap_err().to_string();
        assert!(e.contains(&format!("declares {} bytes but the array's header makes {header_only}", 256 << 20)), "{e}");
        // A header that promises the whole 256 MiB is refused when another shape was asked for, before inflating.
        let mut big = npy("<f4", "(67108864,)", &[]);
        big.resize(big.len() + (256 << 20), 0);
        let bytes = zip(&[("W.npy", big, true, None)]);
        let e = NpzWeights::parse(&bytes, "p.npz").unwrap().get("W", &[4]).unwrap_err().to_string();
        assert!(e.contains("expected [4]"), "{e}");
    }
}
