//! [`Md5Pool`]: MD5s of bodies sent at the same time, hashed two at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;

use super::md5_fast::Md5;

/// MD5s of bodies sent at the same time, hashed two at a time: the lanes of one client. Cheap to clone;
/// clones share the lanes.
///
/// MD5 is one chain of dependent instructions, so a core hashing one body leaves most of its units idle;
/// hashing two bodies in step takes about 0.6 of the time of hashing them one after the other
/// (`bench_hash`). A client sending several parts at once hands each part's chunks to its own
/// [`lane`](Self::lane): a chunk is hashed together with another lane's waiting chunk when there is one,
/// and alone once more than two chunks wait in its lane (so memory stays bounded).
///
/// No thread is started and nothing blocks here. When a lane's earlier chunk is being hashed by another
/// caller, [`PooledMd5::push`] and [`PooledMd5::finish`] hand the chunk (or the lane) back with a
/// [`Waker`] registered; the driver waits for it (a parked thread, or a pending future) and tries again.
///
/// ```
/// use bytes::Bytes;
/// use cos_core::checksum::{md5_hex, Md5Pool};
/// let pool = Md5Pool::default();
/// let (mut a, mut b) = (pool.lane(), pool.lane());
/// let waker = std::task::Waker::noop();
/// a.push(Bytes::from_static(b"hello "), waker).unwrap();
/// b.push(Bytes::from_static(b"other body"), waker).unwrap(); // hashed with a's chunk
/// a.push(Bytes::from_static(b"world"), waker).unwrap();
/// let digest = a.finish(waker).ok().unwrap();
/// assert_eq!(cos_core::checksum::hex(&digest), md5_hex(b"hello world"));
/// ```
#[derive(Clone, Default)]
pub struct Md5Pool(Arc<Mutex<Lanes>>);

impl std::fmt::Debug for Md5Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md5Pool")
            .field("lanes", &self.lock().lanes.len())
            .finish()
    }
}

#[derive(Default)]
struct Lanes {
    lanes: HashMap<u64, Lane>,
    next: u64,
}

#[derive(Default)]
struct Lane {
    /// The state, or `None` while a caller hashes one of the lane's chunks.
    md5: Option<Md5>,
    /// Chunks waiting to be hashed, oldest bytes first (at most [`WAITING`]).
    waiting: VecDeque<Bytes>,
    /// Woken when the lane's chunk in hashing is done.
    wakers: Vec<Waker>,
}

impl Lane {
    /// Whether the lane has a chunk that can be taken now.
    fn ready(&self) -> bool {
        self.md5.is_some() && !self.waiting.is_empty()
    }
}

/// The most chunks a lane keeps waiting for a partner; one more is hashed at once, paired or not.
const WAITING: usize = 2;

/// One body's MD5 in an [`Md5Pool`]. Dropping it without [`finish`](Self::finish) discards the lane.
pub struct PooledMd5 {
    pool: Md5Pool,
    id: u64,
}

impl std::fmt::Debug for PooledMd5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledMd5").field("lane", &self.id).finish()
    }
}

/// A lane's state and chunk, taken out of the pool to be hashed outside its lock.
struct Taken {
    id: u64,
    md5: Md5,
    chunk: Bytes,
}

impl Md5Pool {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new lane: the MD5 of one body.
    pub fn lane(&self) -> PooledMd5 {
        let mut lanes = self.lock();
        let id = lanes.next;
        lanes.next += 1;
        let md5 = Some(Md5::default());
        lanes.lanes.insert(
            id,
            Lane {
                md5,
                ..Lane::default()
            },
        );
        PooledMd5 {
            pool: self.clone(),
            id,
        }
    }

    /// Takes lane `id`'s waiting chunk and, when another lane has one ready, that one too.
    fn take(lanes: &mut Lanes, id: u64) -> Option<(Taken, Option<Taken>)> {
        let own = Self::take_one(lanes, id)?;
        // The partner with the most chunks waiting.
        let partner = lanes
            .lanes
            .iter()
            .filter(|(other, lane)| **other != id && lane.ready())
            .max_by_key(|(_, lane)| lane.waiting.len())
            .map(|(other, _)| *other);
        Some((own, partner.and_then(|p| Self::take_one(lanes, p))))
    }

    fn take_one(lanes: &mut Lanes, id: u64) -> Option<Taken> {
        let lane = lanes.lanes.get_mut(&id).filter(|l| l.ready())?;
        Some(Taken {
            id,
            md5: lane.md5.take()?,
            chunk: lane.waiting.pop_front()?,
        })
    }

    /// Hashes what was taken (outside the lock), puts the states back and wakes their waiters.
    fn hash(&self, (mut own, partner): (Taken, Option<Taken>)) {
        let done = match partner {
            Some(mut p) => {
                Md5::update_pair(&mut own.md5, &own.chunk, &mut p.md5, &p.chunk);
                vec![own, p]
            }
            None => {
                own.md5.update(&own.chunk);
                vec![own]
            }
        };
        let mut lanes = self.lock();
        for t in done {
            // A lane dropped meanwhile is gone: its state is dropped with it.
            if let Some(lane) = lanes.lanes.get_mut(&t.id) {
                lane.md5 = Some(t.md5);
                lane.wakers.drain(..).for_each(Waker::wake);
            }
        }
    }
}

impl PooledMd5 {
    /// Hands over the body's next bytes. They wait for a partner (another lane's chunk, hashed with them in
    /// step); when another lane has a chunk waiting, the two oldest are hashed now. When two chunks already
    /// wait in this lane, its oldest is hashed now, with a partner if one waits, else alone.
    ///
    /// `Err(chunk)` when the lane's earlier chunk is still being hashed by another caller: `waker` is
    /// woken once it is done; push the chunk again then.
    pub fn push(&mut self, chunk: Bytes, waker: &Waker) -> Result<(), Bytes> {
        if chunk.is_empty() {
            return Ok(());
        }
        let mut lanes = self.pool.lock();
        let Some(lane) = lanes.lanes.get_mut(&self.id) else {
            return Ok(());
        };
        if lane.waiting.len() >= WAITING {
            if lane.md5.is_none() {
                lane.wakers.push(waker.clone());
                return Err(chunk);
            }
            let taken = Md5Pool::take(&mut lanes, self.id);
            if let Some(lane) = lanes.lanes.get_mut(&self.id) {
                lane.waiting.push_back(chunk);
            }
            drop(lanes);
            if let Some(taken) = taken {
                self.pool.hash(taken);
            }
            return Ok(());
        }
        lane.waiting.push_back(chunk);
        // Pair at once when another lane waits.
        let partner = lane.md5.is_some()
            && lanes
                .lanes
                .iter()
                .any(|(other, lane)| *other != self.id && lane.ready());
        let taken = partner
            .then(|| Md5Pool::take(&mut lanes, self.id))
            .flatten();
        drop(lanes);
        if let Some(taken) = taken {
            self.pool.hash(taken);
        }
        Ok(())
    }

    /// Whether a [`push`](Self::push) now would hash one of this lane's chunks alone (no other lane has a
    /// chunk waiting): a driver with other threads of its own may yield once first to let them add one.
    pub fn would_hash_alone(&self) -> bool {
        let lanes = self.pool.lock();
        let full = lanes
            .lanes
            .get(&self.id)
            .is_some_and(|l| l.ready() && l.waiting.len() >= WAITING);
        full && !lanes
            .lanes
            .iter()
            .any(|(other, lane)| *other != self.id && lane.ready())
    }

    /// The MD5 of every byte pushed, and the lane's end. `Err(self)` while another caller hashes one of
    /// the lane's chunks: `waker` is woken once it is done; call again then.
    pub fn finish(self, waker: &Waker) -> Result<[u8; 16], PooledMd5> {
        loop {
            let mut lanes = self.pool.lock();
            let Some(lane) = lanes.lanes.get_mut(&self.id) else {
                return Ok(Md5::default().finalize());
            };
            if lane.md5.is_none() {
                lane.wakers.push(waker.clone());
                drop(lanes);
                return Err(self);
            }
            if lane.waiting.is_empty() {
                let md5 = lane.md5.take().unwrap_or_default();
                lanes.lanes.remove(&self.id);
                return Ok(md5.finalize());
            }
            let taken = Md5Pool::take(&mut lanes, self.id);
            drop(lanes);
            if let Some(taken) = taken {
                self.pool.hash(taken);
            }
        }
    }
}

impl Drop for PooledMd5 {
    fn drop(&mut self) {
        self.pool.lock().lanes.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::md5_hex;

    fn hex(d: [u8; 16]) -> String {
        crate::checksum::hex(&d)
    }

    fn body(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(31).wrapping_add(seed) >> 3) as u8)
            .collect()
    }

    /// Lanes fed in any interleaving, with chunks of any size, give every body's own MD5.
    #[test]
    fn interleaved_lanes_give_each_body_its_own_md5() {
        let waker = Waker::noop();
        for lanes in 1..=4usize {
            for chunk in [1usize, 63, 64, 1000, 4096] {
                let pool = Md5Pool::default();
                let bodies: Vec<Vec<u8>> =
                    (0..lanes).map(|i| body(5000 + i * 77, i as u32)).collect();
                let mut md5s: Vec<PooledMd5> = (0..lanes).map(|_| pool.lane()).collect();
                let mut at = vec![0usize; lanes];
                let mut turn = 0usize;
                while at.iter().zip(&bodies).any(|(a, b)| *a < b.len()) {
                    // An uneven order: lane `turn % lanes`, skipping every third turn of lane 0.
                    let i = turn % lanes;
                    turn += 1;
                    if (i == 0 && turn % 3 == 0) || at[i] >= bodies[i].len() {
                        continue;
                    }
                    let end = (at[i] + chunk).min(bodies[i].len());
                    let bytes = Bytes::copy_from_slice(&bodies[i][at[i]..end]);
                    md5s[i].push(bytes, waker).unwrap();
                    at[i] = end;
                }
                for (i, m) in md5s.into_iter().enumerate() {
                    let d = m.finish(waker).ok().unwrap();
                    assert_eq!(hex(d), md5_hex(&bodies[i]), "{lanes} lanes, chunk {chunk}");
                }
                assert_eq!(pool.lock().lanes.len(), 0, "finished lanes are removed");
            }
        }
    }

    /// Threads pushing at once (so that one hashes another's chunk while that one pushes again or
    /// finishes) still get every body's own MD5, waiting through the waker when they must.
    #[test]
    fn threads_pushing_at_once_wait_through_the_waker_and_get_their_md5() {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let pool = Md5Pool::default();
        let bodies: Vec<Vec<u8>> = (0..4).map(|i| body(3 << 20, i)).collect();
        std::thread::scope(|s| {
            for b in &bodies {
                let pool = pool.clone();
                s.spawn(move || {
                    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
                    let mut lane = pool.lane();
                    for c in b.chunks(32 << 10) {
                        let mut chunk = Bytes::copy_from_slice(c);
                        while let Err(back) = lane.push(chunk, &waker) {
                            chunk = back;
                            std::thread::park();
                        }
                    }
                    let d = loop {
                        match lane.finish(&waker) {
                            Ok(d) => break d,
                            Err(back) => {
                                lane = back;
                                std::thread::park();
                            }
                        }
                    };
                    assert_eq!(hex(d), md5_hex(b));
                });
            }
        });
        assert_eq!(pool.lock().lanes.len(), 0);
    }

    /// A chunk is paired with the ready lane that has the most chunks waiting: never with its own lane,
    /// never with a lane whose state another caller holds (whatever it has waiting).
    #[test]
    fn a_chunk_is_paired_with_another_ready_lane_only() {
        let waker = Waker::noop();
        let pool = Md5Pool::default();
        let (mut a, mut b, mut c) = (pool.lane(), pool.lane(), pool.lane());
        c.push(Bytes::from_static(b"c1"), waker).unwrap();
        // c's state is held elsewhere, with two chunks waiting: not a partner.
        let held = Md5Pool::take_one(&mut pool.lock(), c.id).unwrap();
        c.push(Bytes::from_static(b"c2"), waker).unwrap();
        c.push(Bytes::from_static(b"c3"), waker).unwrap();
        a.push(Bytes::from_static(b"a1"), waker).unwrap();
        assert_eq!(
            pool.lock().lanes[&a.id].waiting.len(),
            1,
            "no ready partner: waits"
        );
        b.push(Bytes::from_static(b"b1"), waker).unwrap();
        {
            let lanes = pool.lock();
            assert!(
                lanes.lanes[&a.id].waiting.is_empty(),
                "a's chunk hashed with b's"
            );
            assert!(lanes.lanes[&b.id].waiting.is_empty());
            assert_eq!(
                lanes.lanes[&c.id].waiting.len(),
                2,
                "the held lane is left alone"
            );
        }
        pool.hash((held, None));
        assert_eq!(hex(a.finish(waker).ok().unwrap()), md5_hex(b"a1"));
        assert_eq!(hex(b.finish(waker).ok().unwrap()), md5_hex(b"b1"));
        assert_eq!(hex(c.finish(waker).ok().unwrap()), md5_hex(b"c1c2c3"));
    }

    /// `would_hash_alone`: only a ready lane with its chunks full and no other ready lane to pair with.
    #[test]
    fn would_hash_alone_only_when_full_and_no_other_lane_is_ready() {
        let waker = Waker::noop();
        let pool = Md5Pool::default();
        let (mut a, mut b) = (pool.lane(), pool.lane());
        assert!(!a.would_hash_alone(), "nothing waiting");
        a.push(Bytes::from_static(b"1"), waker).unwrap();
        assert!(!a.would_hash_alone(), "room for one more");
        a.push(Bytes::from_static(b"2"), waker).unwrap();
        assert!(a.would_hash_alone(), "full, no partner");
        assert!(!b.would_hash_alone(), "b has nothing waiting");
        // b's chunk pairs with a's oldest at once; a has one left.
        b.push(Bytes::from_static(b"x"), waker).unwrap();
        assert!(!a.would_hash_alone());
        a.push(Bytes::from_static(b"3"), waker).unwrap();
        assert!(a.would_hash_alone());
        // a's state held elsewhere: the next push is handed back, not hashed alone.
        let held = Md5Pool::take_one(&mut pool.lock(), a.id).unwrap();
        a.push(Bytes::from_static(b"4"), waker).unwrap();
        assert!(!a.would_hash_alone(), "a busy lane");
        // Meanwhile another lane gets a chunk (no ready partner for it): once a is back, a would pair.
        let mut c = pool.lane();
        c.push(Bytes::from_static(b"y"), waker).unwrap();
        pool.hash((held, None));
        assert!(!a.would_hash_alone(), "c is ready to pair");
        assert!(!c.would_hash_alone());
        assert_eq!(hex(a.finish(waker).ok().unwrap()), md5_hex(b"1234"));
        assert_eq!(hex(b.finish(waker).ok().unwrap()), md5_hex(b"x"));
        assert_eq!(hex(c.finish(waker).ok().unwrap()), md5_hex(b"y"));
    }

    /// Debug names the lanes, never the bytes.
    #[test]
    fn debug_shows_lanes_not_bytes() {
        let pool = Md5Pool::default();
        let (_a, mut b) = (pool.lane(), pool.lane());
        b.push(Bytes::from_static(b"secret bytes"), Waker::noop())
            .unwrap();
        assert_eq!(format!("{pool:?}"), "Md5Pool { lanes: 2 }");
        assert_eq!(format!("{b:?}"), "PooledMd5 { lane: 1 }");
    }

    /// A lane whose chunk another caller is hashing hands the next chunk back and registers the waker;
    /// a dropped lane leaves nothing behind, even when its chunk was being hashed.
    #[test]
    fn a_busy_lane_hands_the_chunk_back_and_a_dropped_lane_is_removed() {
        let waker = Waker::noop();
        let pool = Md5Pool::default();
        let (mut a, b) = (pool.lane(), pool.lane());
        a.push(Bytes::from_static(b"one"), waker).unwrap();
        // As if another caller were hashing a's chunk.
        let taken = Md5Pool::take_one(&mut pool.lock(), a.id).unwrap();
        a.push(Bytes::from_static(b"two"), waker).unwrap();
        a.push(Bytes::from_static(b"three"), waker).unwrap();
        let back = a.push(Bytes::from_static(b"four"), waker).unwrap_err();
        assert_eq!(back, Bytes::from_static(b"four"));
        assert_eq!(pool.lock().lanes[&a.id].wakers.len(), 1);
        let a = a.finish(waker).unwrap_err();
        pool.hash((taken, None));
        assert!(pool.lock().lanes[&a.id].wakers.is_empty(), "woken");
        assert_eq!(hex(a.finish(waker).ok().unwrap()), md5_hex(b"onetwothree"));
        drop(b);
        assert_eq!(pool.lock().lanes.len(), 0);
        let mut c = pool.lane();
        c.push(Bytes::from_static(b"x"), waker).unwrap();
        let taken = Md5Pool::take_one(&mut pool.lock(), c.id).unwrap();
        drop(c);
        pool.hash((taken, None));
        assert_eq!(pool.lock().lanes.len(), 0);
    }
}
