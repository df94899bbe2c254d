//! Reading the outbox's SQLite write-ahead log before opening it, to say what a crash left
//! at its end. SQLite itself recovers silently: it replays the frames up to the last commit
//! whose checksums hold and ignores the rest. This check finds that rest, so the gateway
//! can log what was cut off instead of hiding it. Pure: bytes in, a finding out.
//!
//! Format (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic, version, page
//! size, checkpoint sequence, two salts, a checksum of the first 24 bytes), then frames of a
//! 24-byte header (page number, database size for a commit frame, the salts, a running
//! checksum) and one page each. Frames whose salts differ from the header's are left from an
//! earlier round of the log and are normal; a frame with the right salts but a bad checksum,
//! a frame cut short, or frames after the last commit are the marks of a write the crash
//! interrupted.

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// What lies past the part of the log SQLite will replay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WalTail {
    /// Committed transactions SQLite will replay.
    pub commits: u64,
    /// Bytes of this round of the log that SQLite will ignore: a torn or unfinished write.
    pub ignored_bytes: u64,
    /// Why they are ignored, for the log.
    pub reason: Option<&'static str>,
}

/// Examines a WAL file's bytes. An empty or headerless log holds nothing to replay.
pub fn examine(wal: &[u8]) -> WalTail {
    let mut tail = WalTail::default();
    if wal.len() < HEADER {
        if !wal.is_empty() {
            tail.ignored_bytes = wal.len() as u64;
            tail.reason = Some("the log's header is incomplete");
        }
        return tail;
    }
    let magic = be32(wal, 0);
    let big_endian = match magic {
        0x377f_0682 => false,
        0x377f_0683 => true,
        _ => {
            tail.ignored_bytes = wal.len() as u64;
            tail.reason = Some("the log's header is not a SQLite WAL header");
            return tail;
        }
    };
    let page_size = be32(wal, 8) as usize;
    let page_size = if page_size == 1 { 65536 } else { page_size };
    let salts = &wal[16..24];
    let mut sum = checksum(big_endian, (0, 0), &wal[..24]);
    if sum != (be32(wal, 24), be32(wal, 28)) || !page_size.is_power_of_two() || page_size < 512 {
        // A bad header: SQLite treats the whole log as empty.
        tail.ignored_bytes = (wal.len() - HEADER) as u64;
        tail.reason = (tail.ignored_bytes > 0).then_some("the log's header is damaged");
        return tail;
    }
    let frame = FRAME_HEADER + page_size;
    let mut at = HEADER;
    let mut replayed_to = HEADER;
    let mut reason = None;
    while at < wal.len() {
        if wal.len() - at < frame {
            reason = Some("a frame cut short");
            break;
        }
        let f = &wal[at..at + frame];
        if &f[8..16] != salts {
            break; // left from an earlier round of the log
        }
        sum = checksum(big_endian, sum, &f[..8]);
        sum = checksum(big_endian, sum, &f[FRAME_HEADER..]);
        if sum != (be32(f, 16), be32(f, 20)) {
            reason = Some("a frame whose checksum does not match");
            break;
        }
        at += frame;
        if be32(f, 4) != 0 {
            tail.commits += 1;
            replayed_to = at;
        }
    }
    // This round of the log ends at the first frame of another round, or at the end.
    let round_end = if reason.is_some() { wal.len() } else { at };
    if round_end > replayed_to {
        tail.ignored_bytes = (round_end - replayed_to) as u64;
        tail.reason = reason.or(Some("a transaction that never committed"));
    }
    tail
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("four bytes"))
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `(s0, s1)`.
fn checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), data: &[u8]) -> (u32, u32) {
    let word = |c: &[u8]| {
        let bytes: [u8; 4] = c.try_into().expect("four bytes");
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    for pair in data.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// A log with `frames` (page number, commit?) written the way SQLite writes them.
    fn wal(frames: &[(u32, bool)], salts: [u8; 8]) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend(0x377f_0682u32.to_be_bytes());
        w.extend(3_007_000u32.to_be_bytes());
        w.extend((PAGE as u32).to_be_bytes());
        w.extend(0u32.to_be_bytes());
        w.extend(salts);
        let mut sum = checksum(false, (0, 0), &w[..24]);
        w.extend(sum.0.to_be_bytes());
        w.extend(sum.1.to_be_bytes());
        for (i, &(page, commit)) in frames.iter().enumerate() {
            let mut head = Vec::new();
            head.extend(page.to_be_bytes());
            head.extend(if commit { i as u32 + 1 } else { 0 }.to_be_bytes());
            let body: Vec<u8> = (0..PAGE)
                .map(|b| (b as u8).wrapping_mul(page as u8))
                .collect();
            sum = checksum(false, sum, &head);
            sum = checksum(false, sum, &body);
            head.extend(salts);
            head.extend(sum.0.to_be_bytes());
            head.extend(sum.1.to_be_bytes());
            w.extend(head);
            w.extend(body);
        }
        w
    }

    const SALTS: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const FRAME: usize = FRAME_HEADER + PAGE;

    #[test]
    fn a_clean_log_has_nothing_ignored() {
        let w = wal(&[(1, false), (2, true), (3, true)], SALTS);
        assert_eq!(
            examine(&w),
            WalTail {
                commits: 2,
                ignored_bytes: 0,
                reason: None
            }
        );
        assert_eq!(examine(&[]), WalTail::default());
    }

    #[test]
    fn a_frame_cut_short_is_found() {
        let w = wal(&[(1, true), (2, true)], SALTS);
        let torn = &w[..w.len() - 100];
        let t = examine(torn);
        assert_eq!(t.commits, 1);
        assert_eq!(t.ignored_bytes, (FRAME - 100) as u64);
        assert_eq!(t.reason, Some("a frame cut short"));
    }

    #[test]
    fn a_damaged_frame_and_everything_after_it_is_found() {
        let mut w = wal(&[(1, true), (2, true), (3, true)], SALTS);
        w[HEADER + FRAME + FRAME_HEADER + 10] ^= 0xFF; // a byte of the second page
        let t = examine(&w);
        assert_eq!(t.commits, 1);
        assert_eq!(t.ignored_bytes, 2 * FRAME as u64);
        assert_eq!(t.reason, Some("a frame whose checksum does not match"));
    }

    #[test]
    fn an_unfinished_transaction_is_found() {
        let w = wal(&[(1, true), (2, false), (3, false)], SALTS);
        let t = examine(&w);
        assert_eq!((t.commits, t.ignored_bytes), (1, 2 * FRAME as u64));
        assert_eq!(t.reason, Some("a transaction that never committed"));
    }

    #[test]
    fn frames_from_an_earlier_round_are_normal() {
        let old = wal(&[(1, true), (2, true), (3, true)], [9; 8]);
        let mut w = wal(&[(4, true)], SALTS);
        w.extend(&old[HEADER + FRAME..]); // the old round's later frames stay in the file
        assert_eq!(
            examine(&w),
            WalTail {
                commits: 1,
                ignored_bytes: 0,
                reason: None
            }
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let w = wal(&[(1, true), (2, true)], SALTS);
        for end in 0..w.len() {
            let _ = examine(&w[..end]);
        }
        let _ = examine(&[0xFF; 100]);
        let mut odd = w.clone();
        odd[8..12].copy_from_slice(&1u32.to_be_bytes()); // page size 65536, bad checksum
        let _ = examine(&odd);
    }
}
