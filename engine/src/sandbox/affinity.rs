//! Keeping a sandbox's start-up on one CPU.
//!
//! Starting a sandbox is a relay in which one process runs at a time: forge clones
//! init and waits for it, init builds the filesystem, vforks the builder and waits,
//! the builder confines itself and execs. The scheduler, though, starts every new
//! process on the idlest CPU, so each hand-off wakes another CPU (an interrupt, on a
//! VM an exit to the hypervisor) and runs on cold caches. Pinned to the CPU forge runs
//! on, the whole relay stays on one warm CPU. The pin is only for the start: forge
//! and init drop it once their child exists, and the builder gets the caller's CPU
//! set back just before it execs, so a build still uses every core it may.
//!
//! The pin is an optimisation, never a requirement: when the CPU or the mask cannot
//! be read or set (a cpuset that changed under us), nothing is pinned.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The calling thread pinned to its current CPU; dropping it restores the mask.
pub(crate) struct Pinned {
    saved: CpuSet,
}

impl Pinned {
    /// Pins the calling thread to the CPU it runs on, or returns `None` and changes
    /// nothing.
    pub(crate) fn to_this_cpu() -> Option<Pinned> {
        let saved = sched_getaffinity(Pid::from_raw(0)).ok()?;
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        if !saved.is_set(cpu).unwrap_or(false) {
            return None;
        }
        let mut one = CpuSet::new();
        one.set(cpu).ok()?;
        sched_setaffinity(Pid::from_raw(0), &one).ok()?;
        Some(Pinned { saved })
    }

    /// The CPUs of the mask this pin replaced, to be given back to the builder.
    pub(crate) fn saved_cpus(&self) -> Vec<usize> {
        cpus_of(&self.saved)
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.saved);
    }
}

/// The CPUs set in `set`, in order.
pub(crate) fn cpus_of(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).collect()
}

/// The mask of `cpus`; `None` for an empty list (nothing to restore) or a CPU
/// number beyond what a mask holds.
pub(crate) fn mask_of(cpus: &[usize]) -> Option<CpuSet> {
    if cpus.is_empty() {
        return None;
    }
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).ok()?;
    }
    Some(set)
}

/// Sets the calling thread's mask to `set`. One system call on memory prepared
/// beforehand: safe between a vfork-like clone and exec. A failure is ignored (the
/// thread keeps running pinned: slower, still correct).
pub(crate) fn restore(set: &CpuSet) {
    let _ = sched_setaffinity(Pid::from_raw(0), set);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_round_trips_through_its_cpu_list() {
        let cpus = vec![0, 3, 17];
        let set = mask_of(&cpus).expect("a valid mask");
        assert_eq!(cpus_of(&set), cpus);
        assert!(mask_of(&[]).is_none());
        assert!(mask_of(&[CpuSet::count()]).is_none());
    }

    #[test]
    fn pinning_holds_one_cpu_and_dropping_gives_the_mask_back() {
        // A thread of its own: the pin must not leak into other tests.
        std::thread::spawn(|| {
            let before = cpus_of(&sched_getaffinity(Pid::from_raw(0)).expect("affinity"));
            let pinned = Pinned::to_this_cpu().expect("pinning to the current CPU");
            let during = cpus_of(&sched_getaffinity(Pid::from_raw(0)).expect("affinity"));
            assert_eq!(during.len(), 1, "{during:?}");
            assert!(before.contains(&during[0]));
            assert_eq!(pinned.saved_cpus(), before);
            drop(pinned);
            assert_eq!(cpus_of(&sched_getaffinity(Pid::from_raw(0)).expect("affinity")), before);
        })
        .join()
        .expect("the pinning thread");
    }
}
