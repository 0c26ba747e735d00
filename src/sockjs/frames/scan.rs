//! Finding bytes eight at a time: most text has none of the few bytes the protocol code
//! looks for, and a word is looked at in about the time a byte is.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// True when a byte of `w` is below `n` (`n <= 0x80`) or is one of `bytes`, exactly: in
/// each test, a borrow only follows a byte that is.
#[inline(always)]
pub fn any<const N: usize>(w: u64, n: u8, bytes: [u8; N]) -> bool {
    let mut hits = w.wrapping_sub(ONES * n as u64) & !w;
    for b in bytes {
        let x = w ^ (ONES * b as u64);
        hits |= x.wrapping_sub(ONES) & !x;
    }
    hits & HIGH != 0
}

/// Where the first byte of `s` for which `hit` holds is; `word` tells of eight bytes at a
/// time whether one of them may be such a byte.
pub fn find(s: &[u8], word: impl Fn(u64) -> bool, hit: impl Fn(u8) -> bool) -> Option<usize> {
    let mut at = 0;
    for eight in s.chunks_exact(8) {
        if word(u64::from_le_bytes(eight.try_into().expect("eight bytes"))) {
            break;
        }
        at += 8;
    }
    s[at..].iter().position(|&b| hit(b)).map(|i| at + i)
}
