//! MD5 (RFC 1321), written for speed on one core: every step keeps only the boolean function, one addition,
//! the rotation and the final addition on the chain of dependent instructions (the message word and the
//! constant are added while the previous step runs; G is computed as two disjoint ANDs added separately).
//! 1.34 s of CPU per GiB on this project's machine (`bench_hash`), against 1.95 for the `md-5` crate's
//! portable code, 1.72 for its x86 assembly (which would also not build for MSVC) and 1.41 for OpenSSL; pure
//! Rust on every target. The `md-5` crate stays as the tests' reference.
//!
//! [`Md5::update_pair`] hashes two bodies in step: their two chains of dependent instructions run side by
//! side on one core, 0.78 s per GiB in all instead of 1.34 (`bench_hash`); see [`super::Md5Pool`].

/// `floor(abs(sin(i + 1)) * 2^32)` for i in 0..64 (RFC 1321, section 3.4).
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// The sixteen little-endian message words of a block.
#[inline(always)]
fn words(block: &[u8; 64]) -> [u32; 16] {
    let mut m = [0u32; 16];
    for (i, w) in m.iter_mut().enumerate() {
        *w = u32::from_le_bytes([
            block[4 * i],
            block[4 * i + 1],
            block[4 * i + 2],
            block[4 * i + 3],
        ]);
    }
    m
}

/// Processes one 64-byte block. `k` is [`K`] read through [`std::hint::black_box`]: as constants, LLVM
/// moves each step's `K[i]` after the boolean function, onto the dependency chain (one more addition per
/// step, 20 % slower); loaded from memory they stay beside the message word, off the chain.
#[inline(always)]
fn compress(state: &mut [u32; 4], block: &[u8; 64], k: &[u32; 64]) {
    let m = words(block);
    let [mut a, mut b, mut c, mut d] = *state;
    // One step: a = b + ((a + f(b, c, d) + m[k] + K[i]) <<< s).
    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $k:expr, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add(m[$k].wrapping_add(k[$i]))
                .wrapping_add($f)
                .rotate_left($s)
                .wrapping_add($b);
        };
    }
    macro_rules! f {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $i:expr, $s:expr) => {
            step!($d ^ ($b & ($c ^ $d)), $a, $b, $k, $i, $s)
        };
    }
    macro_rules! g {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $i:expr, $s:expr) => {
            // (b & d) | (c & !d): the two halves never share a bit, so | is +, and c & !d is ready early.
            step!(($c & !$d).wrapping_add($b & $d), $a, $b, $k, $i, $s)
        };
    }
    macro_rules! h {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $i:expr, $s:expr) => {
            step!($b ^ $c ^ $d, $a, $b, $k, $i, $s)
        };
    }
    macro_rules! i {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $i:expr, $s:expr) => {
            step!($c ^ ($b | !$d), $a, $b, $k, $i, $s)
        };
    }
    f!(a, b, c, d, 0, 0, 7);
    f!(d, a, b, c, 1, 1, 12);
    f!(c, d, a, b, 2, 2, 17);
    f!(b, c, d, a, 3, 3, 22);
    f!(a, b, c, d, 4, 4, 7);
    f!(d, a, b, c, 5, 5, 12);
    f!(c, d, a, b, 6, 6, 17);
    f!(b, c, d, a, 7, 7, 22);
    f!(a, b, c, d, 8, 8, 7);
    f!(d, a, b, c, 9, 9, 12);
    f!(c, d, a, b, 10, 10, 17);
    f!(b, c, d, a, 11, 11, 22);
    f!(a, b, c, d, 12, 12, 7);
    f!(d, a, b, c, 13, 13, 12);
    f!(c, d, a, b, 14, 14, 17);
    f!(b, c, d, a, 15, 15, 22);

    g!(a, b, c, d, 1, 16, 5);
    g!(d, a, b, c, 6, 17, 9);
    g!(c, d, a, b, 11, 18, 14);
    g!(b, c, d, a, 0, 19, 20);
    g!(a, b, c, d, 5, 20, 5);
    g!(d, a, b, c, 10, 21, 9);
    g!(c, d, a, b, 15, 22, 14);
    g!(b, c, d, a, 4, 23, 20);
    g!(a, b, c, d, 9, 24, 5);
    g!(d, a, b, c, 14, 25, 9);
    g!(c, d, a, b, 3, 26, 14);
    g!(b, c, d, a, 8, 27, 20);
    g!(a, b, c, d, 13, 28, 5);
    g!(d, a, b, c, 2, 29, 9);
    g!(c, d, a, b, 7, 30, 14);
    g!(b, c, d, a, 12, 31, 20);

    h!(a, b, c, d, 5, 32, 4);
    h!(d, a, b, c, 8, 33, 11);
    h!(c, d, a, b, 11, 34, 16);
    h!(b, c, d, a, 14, 35, 23);
    h!(a, b, c, d, 1, 36, 4);
    h!(d, a, b, c, 4, 37, 11);
    h!(c, d, a, b, 7, 38, 16);
    h!(b, c, d, a, 10, 39, 23);
    h!(a, b, c, d, 13, 40, 4);
    h!(d, a, b, c, 0, 41, 11);
    h!(c, d, a, b, 3, 42, 16);
    h!(b, c, d, a, 6, 43, 23);
    h!(a, b, c, d, 9, 44, 4);
    h!(d, a, b, c, 12, 45, 11);
    h!(c, d, a, b, 15, 46, 16);
    h!(b, c, d, a, 2, 47, 23);

    i!(a, b, c, d, 0, 48, 6);
    i!(d, a, b, c, 7, 49, 10);
    i!(c, d, a, b, 14, 50, 15);
    i!(b, c, d, a, 5, 51, 21);
    i!(a, b, c, d, 12, 52, 6);
    i!(d, a, b, c, 3, 53, 10);
    i!(c, d, a, b, 10, 54, 15);
    i!(b, c, d, a, 1, 55, 21);
    i!(a, b, c, d, 8, 56, 6);
    i!(d, a, b, c, 15, 57, 10);
    i!(c, d, a, b, 6, 58, 15);
    i!(b, c, d, a, 13, 59, 21);
    i!(a, b, c, d, 4, 60, 6);
    i!(d, a, b, c, 11, 61, 10);
    i!(c, d, a, b, 2, 62, 15);
    i!(b, c, d, a, 9, 63, 21);

    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// Two independent [`compress`]es, step by step: MD5's steps form one chain of dependent instructions,
/// so a core runs two chains side by side in about the time of one.
#[inline(always)]
fn compress2(s1: &mut [u32; 4], b1: &[u8; 64], s2: &mut [u32; 4], b2: &[u8; 64], k: &[u32; 64]) {
    let (m1, m2) = (words(b1), words(b2));
    let [mut a1, mut b1, mut c1, mut d1] = *s1;
    let [mut a2, mut b2, mut c2, mut d2] = *s2;
    macro_rules! step {
        ($f:expr, $a:ident, $b:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
            $a = $a
                .wrapping_add($m[$k].wrapping_add(k[$i]))
                .wrapping_add($f)
                .rotate_left($s)
                .wrapping_add($b);
        };
    }
    macro_rules! f {
        ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
            step!($d ^ ($b & ($c ^ $d)), $a, $b, $m, $k, $i, $s)
        };
    }
    macro_rules! g {
        ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
            step!(($c & !$d).wrapping_add($b & $d), $a, $b, $m, $k, $i, $s)
        };
    }
    macro_rules! h {
        ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
            step!($b ^ $c ^ $d, $a, $b, $m, $k, $i, $s)
        };
    }
    macro_rules! i {
        ($a:ident, $b:ident, $c:ident, $d:ident, $m:ident, $k:expr, $i:expr, $s:expr) => {
            step!($c ^ ($b | !$d), $a, $b, $m, $k, $i, $s)
        };
    }
    f!(a1, b1, c1, d1, m1, 0, 0, 7);
    f!(a2, b2, c2, d2, m2, 0, 0, 7);
    f!(d1, a1, b1, c1, m1, 1, 1, 12);
    f!(d2, a2, b2, c2, m2, 1, 1, 12);
    f!(c1, d1, a1, b1, m1, 2, 2, 17);
    f!(c2, d2, a2, b2, m2, 2, 2, 17);
    f!(b1, c1, d1, a1, m1, 3, 3, 22);
    f!(b2, c2, d2, a2, m2, 3, 3, 22);
    f!(a1, b1, c1, d1, m1, 4, 4, 7);
    f!(a2, b2, c2, d2, m2, 4, 4, 7);
    f!(d1, a1, b1, c1, m1, 5, 5, 12);
    f!(d2, a2, b2, c2, m2, 5, 5, 12);
    f!(c1, d1, a1, b1, m1, 6, 6, 17);
    f!(c2, d2, a2, b2, m2, 6, 6, 17);
    f!(b1, c1, d1, a1, m1, 7, 7, 22);
    f!(b2, c2, d2, a2, m2, 7, 7, 22);
    f!(a1, b1, c1, d1, m1, 8, 8, 7);
    f!(a2, b2, c2, d2, m2, 8, 8, 7);
    f!(d1, a1, b1, c1, m1, 9, 9, 12);
    f!(d2, a2, b2, c2, m2, 9, 9, 12);
    f!(c1, d1, a1, b1, m1, 10, 10, 17);
    f!(c2, d2, a2, b2, m2, 10, 10, 17);
    f!(b1, c1, d1, a1, m1, 11, 11, 22);
    f!(b2, c2, d2, a2, m2, 11, 11, 22);
    f!(a1, b1, c1, d1, m1, 12, 12, 7);
    f!(a2, b2, c2, d2, m2, 12, 12, 7);
    f!(d1, a1, b1, c1, m1, 13, 13, 12);
    f!(d2, a2, b2, c2, m2, 13, 13, 12);
    f!(c1, d1, a1, b1, m1, 14, 14, 17);
    f!(c2, d2, a2, b2, m2, 14, 14, 17);
    f!(b1, c1, d1, a1, m1, 15, 15, 22);
    f!(b2, c2, d2, a2, m2, 15, 15, 22);
    g!(a1, b1, c1, d1, m1, 1, 16, 5);
    g!(a2, b2, c2, d2, m2, 1, 16, 5);
    g!(d1, a1, b1, c1, m1, 6, 17, 9);
    g!(d2, a2, b2, c2, m2, 6, 17, 9);
    g!(c1, d1, a1, b1, m1, 11, 18, 14);
    g!(c2, d2, a2, b2, m2, 11, 18, 14);
    g!(b1, c1, d1, a1, m1, 0, 19, 20);
    g!(b2, c2, d2, a2, m2, 0, 19, 20);
    g!(a1, b1, c1, d1, m1, 5, 20, 5);
    g!(a2, b2, c2, d2, m2, 5, 20, 5);
    g!(d1, a1, b1, c1, m1, 10, 21, 9);
    g!(d2, a2, b2, c2, m2, 10, 21, 9);
    g!(c1, d1, a1, b1, m1, 15, 22, 14);
    g!(c2, d2, a2, b2, m2, 15, 22, 14);
    g!(b1, c1, d1, a1, m1, 4, 23, 20);
    g!(b2, c2, d2, a2, m2, 4, 23, 20);
    g!(a1, b1, c1, d1, m1, 9, 24, 5);
    g!(a2, b2, c2, d2, m2, 9, 24, 5);
    g!(d1, a1, b1, c1, m1, 14, 25, 9);
    g!(d2, a2, b2, c2, m2, 14, 25, 9);
    g!(c1, d1, a1, b1, m1, 3, 26, 14);
    g!(c2, d2, a2, b2, m2, 3, 26, 14);
    g!(b1, c1, d1, a1, m1, 8, 27, 20);
    g!(b2, c2, d2, a2, m2, 8, 27, 20);
    g!(a1, b1, c1, d1, m1, 13, 28, 5);
    g!(a2, b2, c2, d2, m2, 13, 28, 5);
    g!(d1, a1, b1, c1, m1, 2, 29, 9);
    g!(d2, a2, b2, c2, m2, 2, 29, 9);
    g!(c1, d1, a1, b1, m1, 7, 30, 14);
    g!(c2, d2, a2, b2, m2, 7, 30, 14);
    g!(b1, c1, d1, a1, m1, 12, 31, 20);
    g!(b2, c2, d2, a2, m2, 12, 31, 20);
    h!(a1, b1, c1, d1, m1, 5, 32, 4);
    h!(a2, b2, c2, d2, m2, 5, 32, 4);
    h!(d1, a1, b1, c1, m1, 8, 33, 11);
    h!(d2, a2, b2, c2, m2, 8, 33, 11);
    h!(c1, d1, a1, b1, m1, 11, 34, 16);
    h!(c2, d2, a2, b2, m2, 11, 34, 16);
    h!(b1, c1, d1, a1, m1, 14, 35, 23);
    h!(b2, c2, d2, a2, m2, 14, 35, 23);
    h!(a1, b1, c1, d1, m1, 1, 36, 4);
    h!(a2, b2, c2, d2, m2, 1, 36, 4);
    h!(d1, a1, b1, c1, m1, 4, 37, 11);
    h!(d2, a2, b2, c2, m2, 4, 37, 11);
    h!(c1, d1, a1, b1, m1, 7, 38, 16);
    h!(c2, d2, a2, b2, m2, 7, 38, 16);
    h!(b1, c1, d1, a1, m1, 10, 39, 23);
    h!(b2, c2, d2, a2, m2, 10, 39, 23);
    h!(a1, b1, c1, d1, m1, 13, 40, 4);
    h!(a2, b2, c2, d2, m2, 13, 40, 4);
    h!(d1, a1, b1, c1, m1, 0, 41, 11);
    h!(d2, a2, b2, c2, m2, 0, 41, 11);
    h!(c1, d1, a1, b1, m1, 3, 42, 16);
    h!(c2, d2, a2, b2, m2, 3, 42, 16);
    h!(b1, c1, d1, a1, m1, 6, 43, 23);
    h!(b2, c2, d2, a2, m2, 6, 43, 23);
    h!(a1, b1, c1, d1, m1, 9, 44, 4);
    h!(a2, b2, c2, d2, m2, 9, 44, 4);
    h!(d1, a1, b1, c1, m1, 12, 45, 11);
    h!(d2, a2, b2, c2, m2, 12, 45, 11);
    h!(c1, d1, a1, b1, m1, 15, 46, 16);
    h!(c2, d2, a2, b2, m2, 15, 46, 16);
    h!(b1, c1, d1, a1, m1, 2, 47, 23);
    h!(b2, c2, d2, a2, m2, 2, 47, 23);
    i!(a1, b1, c1, d1, m1, 0, 48, 6);
    i!(a2, b2, c2, d2, m2, 0, 48, 6);
    i!(d1, a1, b1, c1, m1, 7, 49, 10);
    i!(d2, a2, b2, c2, m2, 7, 49, 10);
    i!(c1, d1, a1, b1, m1, 14, 50, 15);
    i!(c2, d2, a2, b2, m2, 14, 50, 15);
    i!(b1, c1, d1, a1, m1, 5, 51, 21);
    i!(b2, c2, d2, a2, m2, 5, 51, 21);
    i!(a1, b1, c1, d1, m1, 12, 52, 6);
    i!(a2, b2, c2, d2, m2, 12, 52, 6);
    i!(d1, a1, b1, c1, m1, 3, 53, 10);
    i!(d2, a2, b2, c2, m2, 3, 53, 10);
    i!(c1, d1, a1, b1, m1, 10, 54, 15);
    i!(c2, d2, a2, b2, m2, 10, 54, 15);
    i!(b1, c1, d1, a1, m1, 1, 55, 21);
    i!(b2, c2, d2, a2, m2, 1, 55, 21);
    i!(a1, b1, c1, d1, m1, 8, 56, 6);
    i!(a2, b2, c2, d2, m2, 8, 56, 6);
    i!(d1, a1, b1, c1, m1, 15, 57, 10);
    i!(d2, a2, b2, c2, m2, 15, 57, 10);
    i!(c1, d1, a1, b1, m1, 6, 58, 15);
    i!(c2, d2, a2, b2, m2, 6, 58, 15);
    i!(b1, c1, d1, a1, m1, 13, 59, 21);
    i!(b2, c2, d2, a2, m2, 13, 59, 21);
    i!(a1, b1, c1, d1, m1, 4, 60, 6);
    i!(a2, b2, c2, d2, m2, 4, 60, 6);
    i!(d1, a1, b1, c1, m1, 11, 61, 10);
    i!(d2, a2, b2, c2, m2, 11, 61, 10);
    i!(c1, d1, a1, b1, m1, 2, 62, 15);
    i!(c2, d2, a2, b2, m2, 2, 62, 15);
    i!(b1, c1, d1, a1, m1, 9, 63, 21);
    i!(b2, c2, d2, a2, m2, 9, 63, 21);
    for (s, v) in s1.iter_mut().zip([a1, b1, c1, d1]) {
        *s = s.wrapping_add(v);
    }
    for (s, v) in s2.iter_mut().zip([a2, b2, c2, d2]) {
        *s = s.wrapping_add(v);
    }
}

/// An incremental MD5.
#[derive(Clone)]
pub(crate) struct Md5 {
    state: [u32; 4],
    /// The bytes of an unfinished block.
    buf: [u8; 64],
    buf_len: usize,
    /// Bytes fed so far.
    len: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Md5 {
            state: INIT,
            buf: [0; 64],
            buf_len: 0,
            len: 0,
        }
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5").field("len", &self.len).finish()
    }
}

impl Md5 {
    /// Feeds bytes.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(bytes.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&bytes[..take]);
            self.buf_len += take;
            bytes = &bytes[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            compress(&mut self.state, &block, std::hint::black_box(&K));
            self.buf_len = 0;
        }
        let k = std::hint::black_box(&K);
        let mut blocks = bytes.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block.try_into().expect("64 bytes"), k);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// Feeds `x` to `a` and `y` to `b`, hashing the two in step ([`compress2`]) as far as both go: about
    /// twice the bytes per second of two [`update`](Self::update)s when the lengths are alike.
    pub(crate) fn update_pair(a: &mut Md5, x: &[u8], b: &mut Md5, y: &[u8]) {
        let (x, y) = (a.fill_block(x), b.fill_block(y));
        let n = x.len().min(y.len()) / 64 * 64;
        let k = std::hint::black_box(&K);
        for (bx, by) in x[..n].chunks_exact(64).zip(y[..n].chunks_exact(64)) {
            let (bx, by) = (bx.try_into().expect("64"), by.try_into().expect("64"));
            compress2(&mut a.state, bx, &mut b.state, by, k);
        }
        a.len = a.len.wrapping_add(n as u64);
        b.len = b.len.wrapping_add(n as u64);
        a.update(&x[n..]);
        b.update(&y[n..]);
    }

    /// Feeds the first bytes of `bytes` that complete a partly filled block, and returns the rest (all of
    /// `bytes` when no block is partly filled; the rest is then fed block-aligned).
    fn fill_block<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if self.buf_len == 0 {
            return bytes;
        }
        let take = (64 - self.buf_len).min(bytes.len());
        self.update(&bytes[..take]);
        &bytes[take..]
    }

    /// The digest of everything fed.
    pub(crate) fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let n = if self.buf_len < 56 { 64 } else { 128 };
        tail[n - 8..n].copy_from_slice(&bits.to_le_bytes());
        for block in tail[..n].chunks_exact(64) {
            compress(
                &mut self.state,
                block.try_into().expect("64 bytes"),
                std::hint::black_box(&K),
            );
        }
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// The digest of `bytes`.
    pub(crate) fn digest(bytes: &[u8]) -> [u8; 16] {
        let mut m = Md5::default();
        m.update(bytes);
        m.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;
    use ::md5::Digest as _;

    fn hex(d: [u8; 16]) -> String {
        crate::checksum::hex(&d)
    }

    #[test]
    fn debug_shows_the_length_fed_not_the_state() {
        let mut m = Md5::default();
        m.update(b"hello");
        assert_eq!(format!("{m:?}"), "Md5 { len: 5 }");
    }

    #[test]
    fn rfc_1321_test_suite() {
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want, "{input:?}");
        }
    }

    /// Two digests fed in step give what each gives alone, for every pairing of lengths and splits.
    #[test]
    fn update_pair_matches_two_single_updates() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 131 + i / 7) as u8).collect();
        for (lx, ly) in [
            (0, 0),
            (0, 200),
            (64, 64),
            (100, 1000),
            (2999, 63),
            (3000, 3000),
            (129, 130),
        ] {
            for piece in [1, 7, 64, 65, 500, 3000] {
                let (mut a, mut b) = (Md5::default(), Md5::default());
                let mut xs = data[..lx].chunks(piece);
                let mut ys = data[3000 - ly..].chunks(piece + 1);
                loop {
                    match (xs.next(), ys.next()) {
                        (None, None) => break,
                        (x, y) => {
                            Md5::update_pair(&mut a, x.unwrap_or(&[]), &mut b, y.unwrap_or(&[]))
                        }
                    }
                }
                assert_eq!(a.finalize(), Md5::digest(&data[..lx]), "x {lx} in {piece}");
                assert_eq!(
                    b.finalize(),
                    Md5::digest(&data[3000 - ly..]),
                    "y {ly} in {piece}"
                );
            }
        }
    }

    /// Every length around the block and padding boundaries, fed whole and in uneven pieces, against the
    /// `md-5` crate.
    #[test]
    fn matches_the_md5_crate_for_every_length_and_split() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 131 + i / 7) as u8).collect();
        for len in (0..200).chain([511, 512, 513, 1000, 2999, 3000]) {
            let want: [u8; 16] = ::md5::Md5::digest(&data[..len]).into();
            assert_eq!(Md5::digest(&data[..len]), want, "len {len}");
            for piece in [1, 3, 63, 64, 65, 100] {
                let mut m = Md5::default();
                for chunk in data[..len].chunks(piece) {
                    m.update(chunk);
                }
                assert_eq!(m.finalize(), want, "len {len} in pieces of {piece}");
            }
        }
    }
}
