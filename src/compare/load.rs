//! Reads what `finalping compare` needs from a finished run: `summary.json`
//! (run id, scenario, status) and the interval histograms of every
//! `<metric>.hlog` next to it. Errors name the file and what to do.

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a run folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source} (pass a run's report folder, e.g. reports/<run-id>/, or its summary.json)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a finalping summary.json: {why}", path.display())]
    Summary { path: PathBuf, why: String },
    #[error("{}: malformed HdrHistogram interval log: {why}", path.display())]
    Hlog { path: PathBuf, why: String },
}

/// One run as compare sees it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The report folder.
    pub dir: PathBuf,
    pub run_id: String,
    pub scenario: String,
    /// `passed`, `failed`, `invalid`, `interrupted`.
    pub status: String,
    /// Per metric with a `.hlog` file: its non-empty interval histograms (µs).
    pub intervals: BTreeMap<String, Vec<Histogram<u64>>>,
}

/// Reads a report folder (or the folder of a given `summary.json`).
pub fn load_run(path: &Path) -> Result<RunData, LoadError> {
    let dir = if path.is_file() {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        path.to_path_buf()
    };
    let summary_path = dir.join("summary.json");
    let summary = crate::report::json::read_summary(&summary_path).map_err(|e| match e {
        crate::report::json::SummaryReadError::Io(source) => LoadError::Read {
            path: summary_path.clone(),
            source,
        },
        crate::report::json::SummaryReadError::Invalid(why) => LoadError::Summary {
            path: summary_path.clone(),
            why,
        },
    })?;
    let names: Vec<String> = summary.metrics.keys().cloned().collect();
    let mut intervals = BTreeMap::new();
    for name in names {
        let hlog = dir.join(format!("{name}.hlog"));
        if !hlog.is_file() {
            continue;
        }
        let bytes = crate::fsio::read_capped(&hlog, crate::fsio::MAX_REPORT_FILE_BYTES).map_err(
            |source| LoadError::Read {
                path: hlog.clone(),
                source,
            },
        )?;
        let hists = read_hlog(&bytes).map_err(|why| LoadError::Hlog {
            path: hlog.clone(),
            why,
        })?;
        intervals.insert(name, hists);
    }
    Ok(RunData {
        dir,
        run_id: summary.run_id,
        scenario: summary.scenario,
        status: summary.status.as_str().to_string(),
        intervals,
    })
}

/// Largest counts array accepted from a histogram header (entries): finalping
/// writes 1 µs … 1 h at 3 digits (23,552); 2^21 allows any sensible histogram.
const MAX_COUNTS: u64 = 1 << 21;
/// Largest inflated histogram accepted (header + payload).
const MAX_INFLATED: u64 = 32 << 20;
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// Bytes of a V2 header after its cookie.
const V2_HEADER: usize = 4 + 4 + 4 + 8 + 8 + 8;

/// Checks the lengths and bounds an encoded histogram claims before
/// hdrhistogram allocates for them: a crafted header (payload length 2 GiB,
/// highest value 2^62 at 5 digits) is refused instead of allocating gigabytes.
pub fn check_encoded(raw: &[u8]) -> Result<(), String> {
    use std::io::Read;
    let cookie = be_u32(raw, 0).ok_or("histogram shorter than its cookie")?;
    let (inner, available) = match cookie {
        V2_COOKIE => (raw[4..].to_vec(), raw.len().saturating_sub(4 + V2_HEADER)),
        V2_COMPRESSED_COOKIE => {
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(raw.get(8..).unwrap_or_default())
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("bad compressed histogram: {e}"))?;
            if inflated.len() as u64 > MAX_INFLATED {
                return Err(format!(
                    "histogram inflates to more than {MAX_INFLATED} bytes"
                ));
            }
            if be_u32(&inflated, 0) != Some(V2_COOKIE) {
                return Err("compressed histogram without a V2 cookie".into());
            }
            let available = inflated.len().saturating_sub(4 + V2_HEADER);
            (inflated.split_off(4.min(inflated.len())), available)
        }
        other => return Err(format!("unknown histogram cookie {other:#x}")),
    };
    let header = |at: usize| {
        inner
            .get(at..at + 8)
            .map(|b| b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    };
    let (Some(payload), Some(digits), Some(low), Some(high)) =
        (be_u32(&inner, 0), be_u32(&inner, 8), header(12), header(20))
    else {
        return Err("histogram header is truncated".into());
    };
    if payload as usize > available {
        return Err(format!(
            "histogram claims a {payload}-byte payload but has {available} bytes"
        ));
    }
    let counts = counts_len(low, high, digits)
        .filter(|&c| c <= MAX_COUNTS)
        .ok_or_else(|| {
            format!("histogram bounds {low}..{high} at {digits} digits are too large or invalid")
        })?;
    // Each count takes 1 to 9 bytes (zig-zag LEB128).
    if u64::from(payload) > counts.saturating_mul(9) {
        return Err(format!(
            "histogram payload of {payload} bytes is longer than its {counts} counts"
        ));
    }
    Ok(())
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let b = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The length of the counts array HdrHistogram allocates for these bounds
/// (`None` when it would refuse them).
fn counts_len(low: u64, high: u64, digits: u32) -> Option<u64> {
    if low < 1 || digits > 5 || high < low.checked_mul(2)? {
        return None;
    }
    let sub_bucket_count = (2 * 10u64.pow(digits)).checked_next_power_of_two()?;
    let unit_magnitude = 63 - low.leading_zeros();
    let sub_bucket_magnitude = sub_bucket_count.trailing_zeros();
    if unit_magnitude + sub_bucket_magnitude > 63 {
        return None;
    }
    let mut smallest_untrackable = sub_bucket_count.checked_shl(unit_magnitude)?;
    let mut buckets = 1u64;
    while smallest_untrackable <= high {
        if smallest_untrackable > u64::MAX / 2 {
            buckets += 1;
            break;
        }
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    Some((buckets + 1) * (sub_bucket_count / 2))
}

/// The non-empty interval histograms of an interval log.
pub fn read_hlog(bytes: &[u8]) -> Result<Vec<Histogram<u64>>, String> {
    let mut out = Vec::new();
    let mut deser = Deserializer::new();
    for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
        let entry = entry.map_err(|e| format!("entry {}: {e:?}", n + 1))?;
        if let LogEntry::Interval(ilh) = entry {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ilh.encoded_histogram())
                .map_err(|e| format!("interval {}: bad base64: {e}", n + 1))?;
            check_encoded(&raw).map_err(|e| format!("interval {}: {e}", n + 1))?;
            let h: Histogram<u64> = deser
                .deserialize(&mut &raw[..])
                .map_err(|e| format!("interval {}: bad histogram: {e:?}", n + 1))?;
            if !h.is_empty() {
                out.push(h);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};

    fn encoded(h: &Histogram<u64>, compressed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if compressed {
            V2DeflateSerializer::new().serialize(h, &mut out).unwrap();
        } else {
            V2Serializer::new().serialize(h, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn real_histograms_pass_the_check() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        h.record(1234).unwrap();
        h.record(99_999).unwrap();
        for compressed in [false, true] {
            assert_eq!(check_encoded(&encoded(&h, compressed)), Ok(()));
        }
    }

    #[test]
    fn crafted_lengths_and_bounds_are_refused() {
        let h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let mut raw = encoded(&h, false);
        // Payload length 2 GiB.
        raw[4..8].copy_from_slice(&0x8000_0000u32.to_be_bytes());
        assert!(check_encoded(&raw).unwrap_err().contains("payload"));
        // Highest value 2^62 at 5 digits.
        let mut raw = encoded(&h, false);
        raw[12..16].copy_from_slice(&5u32.to_be_bytes());
        raw[24..32].copy_from_slice(&(1u64 << 62).to_be_bytes());
        assert!(check_encoded(&raw).unwrap_err().contains("too large"));
        assert!(check_encoded(&[0x1c, 0x84]).is_err());
        assert!(check_encoded(&[0x1c, 0x84, 0x93, 0x14, 0, 0, 0, 9, 1, 2]).is_err());
    }
}
