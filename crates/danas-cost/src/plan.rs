//! The TFLM `GreedyMemoryPlanner`, reproduced, and the live-set lower bound.

use serde::{Deserialize, Serialize};

/// One buffer to place in the arena head: a size and an inclusive lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Buffer {
    /// Size in bytes (already rounded by the caller when the runtime rounds).
    pub size: u64,
    /// First time step the buffer is used.
    pub first: u32,
    /// Last time step the buffer is used (inclusive).
    pub last: u32,
}

impl Buffer {
    /// Whether the two lifetimes overlap (inclusive intervals).
    pub fn overlaps(&self, other: &Buffer) -> bool {
        !(self.first > other.last || other.first > self.last)
    }
}

/// Rounds `n` up to a multiple of 16, the TFLM arena buffer alignment.
pub fn align16(n: u64) -> u64 {
    n.div_ceil(16) * 16
}

/// The result of the greedy planner.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Offset of each buffer, in the order the buffers were given.
    pub offsets: Vec<u64>,
    /// Head size: the maximum over buffers of offset + size.
    pub head: u64,
}

/// Places `buffers` exactly as TFLM's `GreedyMemoryPlanner` does.
///
/// Buffers are taken largest first; among equal sizes the one registered *last*
/// (highest index in `buffers`) goes first. Each buffer is placed at the lowest offset
/// that does not collide with an already placed buffer whose lifetime overlaps, scanning
/// placed buffers in increasing offset order and stopping at the first gap that fits.
///
/// ```
/// use danas_cost::{Buffer, greedy_plan};
/// let b = |size, first, last| Buffer { size, first, last };
/// let plan = greedy_plan(&[b(10, 0, 1), b(20, 1, 2), b(30, 2, 3), b(40, 3, 4), b(50, 0, 1)]);
/// assert_eq!(plan.offsets, vec![50, 70, 40, 0, 0]);
/// assert_eq!(plan.head, 90);
/// ```
pub fn greedy_plan(buffers: &[Buffer]) -> Plan {
    let mut order: Vec<u32> = Vec::new();
    let mut offsets = Vec::new();
    let head = greedy_plan_into(buffers, &mut order, &mut offsets, &mut Vec::new());
    Plan { offsets, head }
}

/// An already placed buffer: offset, size and lifetime, kept together for locality.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    offset: u64,
    size: u64,
    first: u32,
    last: u32,
}

/// Allocation-reusing form of [`greedy_plan`]: fills `offsets` and returns the head.
/// `order` and `placed` are scratch space.
pub(crate) fn greedy_plan_into(
    buffers: &[Buffer],
    order: &mut Vec<u32>,
    offsets: &mut Vec<u64>,
    placed: &mut Vec<Placed>,
) -> u64 {
    let n = buffers.len();
    // TFLM fills its sort arrays from the back, then runs a stable descending sort by
    // size: among equal sizes the buffer registered last comes first. That is a
    // descending sort on (size, index).
    order.clear();
    order.extend(0..n as u32);
    order.sort_unstable_by_key(|&i| std::cmp::Reverse((buffers[i as usize].size, i)));
    offsets.clear();
    offsets.resize(n, 0);
    // Placed buffers kept sorted by offset; a new entry goes after entries with an equal
    // offset, as in TFLM's linked list.
    placed.clear();
    let mut head = 0u64;
    for &id in order.iter() {
        let want = &buffers[id as usize];
        let mut candidate = 0u64;
        for o in placed.iter() {
            if o.first > want.last || want.first > o.last {
                continue;
            }
            if o.offset >= candidate && o.offset - candidate >= want.size {
                break;
            }
            candidate = candidate.max(o.offset + o.size);
        }
        offsets[id as usize] = candidate;
        let pos = placed.partition_point(|p| p.offset <= candidate);
        placed.insert(pos, Placed { offset: candidate, size: want.size, first: want.first, last: want.last });
        head = head.max(candidate + want.size);
    }
    head
}

/// Scratch space of [`greedy_plan_timeline`].
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Placed buffers live at each time step.
    lists: Vec<Vec<u32>>,
    /// Overlapping placed buffers of the buffer being placed: (offset, size).
    near: Vec<(u64, u64)>,
    /// Packed sort keys.
    keys: Vec<u64>,
}

/// The same plan as [`greedy_plan_into`], faster when lifetimes are short: the placed
/// buffers that overlap the one being placed are found through per-time-step lists
/// instead of a scan of every placed buffer. The order in which TFLM walks overlapping
/// buffers with equal offsets does not change the result (the gap test depends only on
/// the offset, and the candidate already exceeds it after the first such buffer), so
/// visiting them sorted by offset is exact. `end` is the largest `last` of any buffer.
pub(crate) fn greedy_plan_timeline(
    buffers: &[Buffer],
    end: u32,
    order: &mut Vec<u32>,
    offsets: &mut Vec<u64>,
    tl: &mut Timeline,
) -> u64 {
    let n = buffers.len();
    order.clear();
    if n < 1 << 20 && buffers.iter().all(|b| b.size < 1 << 43) {
        // one packed key per buffer: (size, index), sorted descending
        tl.keys.clear();
        tl.keys.extend(buffers.iter().enumerate().map(|(i, b)| (b.size << 20) | i as u64));
        tl.keys.sort_unstable();
        order.extend(tl.keys.iter().rev().map(|k| (k & 0xF_FFFF) as u32));
    } else {
        order.extend(0..n as u32);
        order.sort_unstable_by_key(|&i| std::cmp::Reverse((buffers[i as usize].size, i)));
    }
    offsets.clear();
    offsets.resize(n, 0);
    let steps = end as usize + 1;
    if tl.lists.len() < steps {
        tl.lists.resize_with(steps, Vec::new);
    }
    for l in &mut tl.lists[..steps] {
        l.clear();
    }
    let mut head = 0u64;
    for &id in order.iter() {
        let want = buffers[id as usize];
        tl.near.clear();
        for t in want.first..=want.last {
            for &p in &tl.lists[t as usize] {
                // count each placed buffer once: at the first step both are live
                if buffers[p as usize].first.max(want.first) == t {
                    tl.near.push((offsets[p as usize], buffers[p as usize].size));
                }
            }
        }
        tl.near.sort_unstable_by_key(|&(off, _)| off);
        let mut candidate = 0u64;
        for &(off, size) in &tl.near {
            if off >= candidate && off - candidate >= want.size {
                break;
            }
            candidate = candidate.max(off + size);
        }
        offsets[id as usize] = candidate;
        for t in want.first..=want.last {
            tl.lists[t as usize].push(id);
        }
        head = head.max(candidate + want.size);
    }
    head
}

/// The live-set lower bound: the maximum over time of the summed sizes of the buffers
/// live at that time. No plan can use less; the greedy plan may use more.
pub fn live_bound(buffers: &[Buffer]) -> u64 {
    live_bound_with_time(buffers).0
}

/// [`live_bound`] and the first time step where it is reached.
pub fn live_bound_with_time(buffers: &[Buffer]) -> (u64, u32) {
    let Some(end) = buffers.iter().map(|b| b.last).max() else { return (0, 0) };
    let mut delta = vec![0i128; end as usize + 2];
    for b in buffers {
        delta[b.first as usize] += i128::from(b.size);
        delta[b.last as usize + 1] -= i128::from(b.size);
    }
    let (mut cur, mut best, mut at) = (0i128, 0i128, 0u32);
    for (t, d) in delta.iter().enumerate().take(end as usize + 1) {
        cur += d;
        if cur > best {
            best = cur;
            at = t as u32;
        }
    }
    (best as u64, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(size: u64, first: u32, last: u32) -> Buffer {
        Buffer { size, first, last }
    }

    #[test]
    fn tflm_fixture_one() {
        let p = greedy_plan(&[b(10, 0, 1), b(20, 1, 2), b(30, 2, 3), b(40, 3, 4), b(50, 0, 1)]);
        assert_eq!(p.offsets, vec![50, 70, 40, 0, 0]);
        assert_eq!(p.head, 90);
    }

    #[test]
    fn tflm_fixture_two() {
        let p = greedy_plan(&[b(100, 0, 1), b(50, 2, 3), b(20, 1, 2)]);
        assert_eq!(p.head, 120);
        assert_eq!(p.offsets, vec![0, 0, 100]);
    }

    #[test]
    fn tie_rule_last_registered_first() {
        // Two equal buffers with disjoint lifetimes and a third overlapping only the first
        // registered: the later one is placed at 0 first, then the earlier one also at 0.
        let p = greedy_plan(&[b(32, 0, 1), b(32, 2, 3), b(16, 1, 2)]);
        assert_eq!(p.offsets, vec![0, 0, 32]);
        // With the opposite tie rule the last buffer would be placed first in a different
        // order; reversing the registration order must mirror the result.
        let q = greedy_plan(&[b(32, 2, 3), b(32, 0, 1), b(16, 1, 2)]);
        assert_eq!(q.head, 48);
    }

    #[test]
    fn tie_rule_changes_offsets() {
        // A and B have equal sizes and overlap; the tie rule places B (registered last)
        // first at 0, so A goes to 16 and C (overlapping only B) above B.
        let p = greedy_plan(&[b(16, 0, 1), b(16, 1, 2), b(8, 2, 2)]);
        assert_eq!(p.offsets, vec![16, 0, 16]);
        // The opposite registration order flips the result: the rule is by index.
        let q = greedy_plan(&[b(16, 1, 2), b(16, 0, 1), b(8, 2, 2)]);
        assert_eq!(q.offsets, vec![16, 0, 0]);
    }

    #[test]
    fn timeline_planner_equals_scan() {
        // A deterministic pseudo-random sweep (no RNG crate needed).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..500 {
            let n = 1 + next(40) as usize;
            let bufs: Vec<Buffer> = (0..n)
                .map(|_| {
                    let first = next(20) as u32;
                    Buffer { size: 16 * (1 + next(8)), first, last: first + next(5) as u32 }
                })
                .collect();
            let end = bufs.iter().map(|b| b.last).max().unwrap_or(0);
            let (mut o1, mut o2, mut off1, mut off2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let h1 = greedy_plan_into(&bufs, &mut o1, &mut off1, &mut Vec::new());
            let h2 = greedy_plan_timeline(&bufs, end, &mut o2, &mut off2, &mut Timeline::default());
            assert_eq!((h1, &off1), (h2, &off2), "{bufs:?}");
        }
    }

    #[test]
    fn live_bound_is_lower_bound() {
        let bufs = [b(10, 0, 1), b(20, 1, 2), b(30, 2, 3), b(40, 3, 4), b(50, 0, 1)];
        assert_eq!(live_bound(&bufs), 80);
        assert!(greedy_plan(&bufs).head >= live_bound(&bufs));
        assert_eq!(live_bound(&[]), 0);
        assert_eq!(align16(0), 0);
        assert_eq!(align16(1), 16);
        assert_eq!(align16(32), 32);
    }
}
