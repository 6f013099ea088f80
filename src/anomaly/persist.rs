//! The training window on disk, so a restart does not forget what normal looks like.
//! The forest itself is not saved (megabytes per endpoint): it is retrained from the
//! window at start, which takes milliseconds.
//!
//! Format: `RFAW`, a format version (u16), the feature count (u16), the feature names
//! joined by commas (u32 length + UTF-8), the sample count (u32), then every sample as
//! little-endian f32s. A file whose feature names differ from this build's is ignored.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::features::{FEATURES, Features, N};
use crate::model::EndpointKey;

const MAGIC: &[u8; 4] = b"RFAW";
const VERSION: u16 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a training window of this version: {why}")]
    Invalid { path: PathBuf, why: &'static str },
}

/// The file of an endpoint under `dir`: its key with unsafe characters replaced.
pub fn path_for(dir: &Path, key: &EndpointKey) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    dir.join(format!(
        "{}@{}.window",
        safe(key.instance.as_str()),
        safe(key.datacenter.as_str())
    ))
}

fn names() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn encode(samples: &[Features]) -> Vec<u8> {
    let names = names();
    let mut out = Vec::with_capacity(16 + names.len() + samples.len() * N * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(N as u16).to_le_bytes());
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    out.extend_from_slice(names.as_bytes());
    out.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    for s in samples {
        for x in s {
            out.extend_from_slice(&(*x as f32).to_le_bytes());
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Features>, &'static str> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if rest.len() < n {
            return Err("truncated");
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(4)? != MAGIC {
        return Err("wrong magic");
    }
    let u16_at = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if u16_at(take(2)?) != VERSION {
        return Err("unknown version");
    }
    if u16_at(take(2)?) as usize != N {
        return Err("another feature count");
    }
    let len = u32_at(take(4)?) as usize;
    if take(len)? != names().as_bytes() {
        return Err("other features");
    }
    let count = u32_at(take(4)?) as usize;
    let body = take(count.checked_mul(N * 4).ok_or("too large")?)?;
    Ok(body
        .chunks_exact(N * 4)
        .map(|chunk| {
            let mut f = [0.0; N];
            for (x, b) in f.iter_mut().zip(chunk.chunks_exact(4)) {
                *x = f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
            f
        })
        .collect())
}

/// Writes atomically: a temporary file, then a rename.
pub fn save(path: &Path, samples: &[Features]) -> Result<(), PersistError> {
    let io_err = |source| PersistError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let tmp = path.with_extension("window.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io_err)?;
    file.write_all(&encode(samples)).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// Reads a saved window; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Vec<Features>>, PersistError> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|why| PersistError::Invalid {
                path: path.to_owned(),
                why,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PersistError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let samples: Vec<Features> = (0..10).map(|i| [i as f64 * 0.5; N]).collect();
        let bytes = encode(&samples);
        assert_eq!(decode(&bytes).unwrap(), samples);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Err("truncated"));
        assert_eq!(decode(b"nope"), Err("wrong magic"));

        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), &EndpointKey::new("a/b", "east 1"));
        assert!(path.ends_with("a_b@east_1.window"));
        assert!(load(&path).unwrap().is_none());
        save(&path, &samples).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), samples);
        std::fs::write(&path, b"RFAWxx").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Invalid { .. })));
    }
}
