//! Deadlock detection, as Driver Verifier's: a graph of the order in which locks are acquired.
//!
//! Whenever a context acquires lock B while it holds lock A, the edge A → B is recorded with
//! the two acquiring DDIs. If B → … → A is already known (some context once took A while
//! holding B, directly or through other locks), the two orders can deadlock: ntsim bugchecks
//! 0xC4/0x1001 *before* the acquire blocks, naming both acquisitions of the cycle, instead of
//! letting the machine hang (ddi.md 12.2, 13.3). Like Driver Verifier, it tracks spin locks,
//! fast and guarded mutexes and dispatcher mutexes (not resources or push locks); the caller
//! decides what to track. Memory freed back to pool forgets its locks, so a reused address
//! does not inherit stale edges.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, PoisonError},
};

use crate::{
    bugcheck::{code::DRIVER_VERIFIER_DETECTED_VIOLATION, verifier},
    context::Entry,
};

/// Where an edge was first seen: the DDIs that acquired the first and the second lock.
#[derive(Clone, Copy, Debug)]
struct Sites {
    held_by: &'static str,
    then: &'static str,
}

/// The lock-order graph of one machine.
#[derive(Default)]
pub struct LockOrder {
    edges: Mutex<HashMap<usize, HashMap<usize, Sites>>>,
}

impl LockOrder {
    /// A new graph that lives for the rest of the process (pool blocks point at it).
    pub(crate) fn leak_new() -> &'static Self {
        Box::leak(Box::default())
    }

    /// Checks and records the acquisition of `lock` (by the DDI `e` serves) against the locks
    /// `e` holds. Bugchecks 0xC4/0x1001 when it closes a cycle.
    pub fn acquire(&self, e: &Entry, lock: usize) {
        if !e.machine.config.deadlock_detection {
            return;
        }
        let mut held: Vec<(usize, &'static str)> = e
            .held
            .borrow()
            .iter()
            .filter(|h| h.addr != lock)
            .map(|h| (h.addr, h.acquired_by))
            .collect();
        // Dispatcher mutexes are owned through the dispatcher's table, not `held`.
        held.extend(
            e.machine
                .dispatcher
                .mutexes_owned(e.uid)
                .into_iter()
                .filter(|&m| m != lock)
                .map(|m| (m, "KeWaitForSingleObject/KeWaitForMultipleObjects (KMUTEX)")),
        );
        if held.is_empty() {
            return;
        }
        let mut edges = self.edges.lock().unwrap_or_else(PoisonError::into_inner);
        for &(first, first_site) in &held {
            if let Some(path) = path(&edges, lock, first) {
                let back = path
                    .windows(2)
                    .filter_map(|w| {
                        edges
                            .get(&w[0])
                            .and_then(|m| m.get(&w[1]))
                            .map(|s| (w[0], w[1], *s))
                    })
                    .map(|(a, b, s)| format!("{a:#x} ({}) then {b:#x} ({})", s.held_by, s.then))
                    .collect::<Vec<_>>()
                    .join(", ");
                drop(edges);
                e.bugcheck(
                    DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [
                        verifier::LOCK_HIERARCHY_VIOLATION,
                        lock as u64,
                        first as u64,
                        0,
                    ],
                    format!(
                        "lock order cycle: now {first:#x} ({first_site}) then {lock:#x} ({}); \
                         earlier: {back}",
                        e.ddi
                    ),
                );
            }
            edges
                .entry(first)
                .or_default()
                .entry(lock)
                .or_insert(Sites {
                    held_by: first_site,
                    then: e.ddi,
                });
        }
    }

    /// Forgets every lock in `[start, start + len)` (its memory was freed).
    pub fn forget_range(&self, start: usize, len: usize) {
        let end = start.saturating_add(len);
        let inside = |a: &usize| (start..end).contains(a);
        let mut edges = self.edges.lock().unwrap_or_else(PoisonError::into_inner);
        edges.retain(|from, _| !inside(from));
        for targets in edges.values_mut() {
            targets.retain(|to, _| !inside(to));
        }
    }
}

/// A path `from` →* `to` in the graph, as the list of nodes, if one exists.
fn path(
    edges: &HashMap<usize, HashMap<usize, Sites>>,
    from: usize,
    to: usize,
) -> Option<Vec<usize>> {
    let mut seen = HashSet::new();
    let mut stack = vec![vec![from]];
    while let Some(route) = stack.pop() {
        let last = *route.last()?;
        if last == to {
            return Some(route);
        }
        if !seen.insert(last) {
            continue;
        }
        for &next in edges.get(&last).into_iter().flat_map(HashMap::keys) {
            let mut longer = route.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}
