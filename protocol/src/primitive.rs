//! The registry of primitives: one row per lock family, with its variants, the contexts each
//! variant may be taken from, and what holding it does (IRQL, APC state, recursion).
//!
//! Validation ([`crate::wire::StressRequest::validate`]), the driver's dispatch and the client's
//! `list` all read [`REGISTRY`]; adding a primitive is one row here plus one file in the
//! driver's `sync/`. Every contract below follows `shared/reference/ddi.md` (section 11.1 and
//! the per-family sections), not convenience: a row never admits a context the DDIs forbid.

/// A synchronization primitive the driver can stress. The wire value is `u32`.
///
/// An unknown value is rejected with [`crate::RequestError::UnknownPrimitive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Primitive {
    /// Executive spin lock (`KSPIN_LOCK`).
    SpinLock = 1,
    /// In-stack queued spin lock (`KLOCK_QUEUE_HANDLE` on a `KSPIN_LOCK`).
    QueuedSpinLock = 2,
    /// Reader/writer spin lock (`EX_SPIN_LOCK`).
    ReaderWriterSpinLock = 3,
    /// Fast mutex (`FAST_MUTEX`).
    FastMutex = 4,
    /// Guarded mutex (`KGUARDED_MUTEX`).
    GuardedMutex = 5,
    /// Push lock (`EX_PUSH_LOCK`).
    PushLock = 6,
    /// Executive resource (`ERESOURCE`).
    Resource = 7,
    /// Dispatcher mutex (`KMUTEX`) used as a lock.
    KernelMutex = 8,
    /// KMDF spin lock (`WDFSPINLOCK`).
    WdfSpinLock = 9,
    /// KMDF wait lock (`WDFWAITLOCK`).
    WdfWaitLock = 10,
}

/// Contexts a worker can take a lock from, as bits of [`Variant::contexts`].
pub mod context {
    /// A system thread at `PASSIVE_LEVEL`.
    pub const PASSIVE: u32 = 0x1;
    /// A system thread raised to `APC_LEVEL` around each acquisition.
    pub const APC: u32 = 0x2;
    /// A DPC routine at `DISPATCH_LEVEL`.
    pub const DPC: u32 = 0x4;
    /// Every context.
    pub const ALL: u32 = PASSIVE | APC | DPC;
    /// Threads only, at `PASSIVE_LEVEL` or `APC_LEVEL`.
    pub const THREADS: u32 = PASSIVE | APC;

    /// The IRQL a context runs at (`PASSIVE_LEVEL` 0, `APC_LEVEL` 1, `DISPATCH_LEVEL` 2).
    #[must_use]
    pub const fn irql(context: u32) -> u8 {
        match context {
            APC => 1,
            DPC => 2,
            _ => 0,
        }
    }

    /// The context's name as the client and the error messages say it.
    #[must_use]
    pub const fn name(context: u32) -> &'static str {
        match context {
            PASSIVE => "PASSIVE_LEVEL threads",
            APC => "APC_LEVEL threads",
            DPC => "DPCs at DISPATCH_LEVEL",
            _ => "?",
        }
    }

    /// The IRQL's name.
    #[must_use]
    pub const fn irql_name(context: u32) -> &'static str {
        match context {
            APC => "APC_LEVEL",
            DPC => "DISPATCH_LEVEL",
            _ => "PASSIVE_LEVEL",
        }
    }

    /// Every single-context bit, in IRQL order.
    pub const EACH: [u32; 3] = [PASSIVE, APC, DPC];
}

/// The IRQL a holder runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldIrql {
    /// `DISPATCH_LEVEL` (every spin lock).
    Dispatch,
    /// `APC_LEVEL` (fast mutexes; guarded mutexes on Windows 8 and later).
    Apc,
    /// The caller's IRQL, unchanged (push locks, resources, `KMUTEX`, wait locks, `Unsafe` forms).
    Caller,
}

impl HeldIrql {
    /// The IRQL a holder must observe when it asked from `caller` IRQL.
    #[must_use]
    pub const fn inside(self, caller: u8) -> u8 {
        match self {
            Self::Dispatch => 2,
            Self::Apc => {
                if caller > 1 {
                    caller
                } else {
                    1
                }
            }
            Self::Caller => caller,
        }
    }

    /// How `list` names it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Dispatch => "DISPATCH_LEVEL",
            Self::Apc => "APC_LEVEL",
            Self::Caller => "caller's",
        }
    }
}

/// The APC state of a holder (ddi.md 0.3).
///
/// It says what `KeAreApcsDisabled` and `KeAreAllApcsDisabled` must answer inside. Those two may
/// only be called at IRQL <= `APC_LEVEL` (errata 1), so holders at `DISPATCH_LEVEL` are checked
/// through their IRQL alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApcHeld {
    /// Held at `DISPATCH_LEVEL`: every APC is blocked by the IRQL.
    BlockedByIrql,
    /// Holder at `APC_LEVEL` with no region: `KeAreApcsDisabled` FALSE (it counts regions only),
    /// `KeAreAllApcsDisabled` TRUE.
    RaisedToApc,
    /// Holder in a critical region: `KeAreApcsDisabled` TRUE; `KeAreAllApcsDisabled` TRUE only
    /// at `APC_LEVEL`.
    CriticalRegion,
    /// Holder in a guarded region: both TRUE.
    GuardedRegion,
}

impl ApcHeld {
    /// What `KeAreApcsDisabled()` must return inside (meaningful below `DISPATCH_LEVEL`).
    #[must_use]
    pub const fn apcs_disabled(self) -> bool {
        matches!(self, Self::CriticalRegion | Self::GuardedRegion)
    }

    /// What `KeAreAllApcsDisabled()` must return inside at `irql`.
    #[must_use]
    pub const fn all_apcs_disabled(self, irql: u8) -> bool {
        matches!(self, Self::GuardedRegion) || irql >= 1
    }

    /// How `list` names it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::BlockedByIrql => "all blocked (DISPATCH_LEVEL)",
            Self::RaisedToApc => "all blocked (APC_LEVEL)",
            Self::CriticalRegion => "normal kernel APCs disabled (critical region)",
            Self::GuardedRegion => "all disabled (guarded region)",
        }
    }
}

/// How a variant takes the lock, and what that implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Name on the command line (`--variant`); the wire value is the index in
    /// [`PrimitiveInfo::variants`], 0 being the default.
    pub name: &'static str,
    /// The DDIs it calls.
    pub ddis: &'static str,
    /// [`context`] bits it may be taken from.
    pub contexts: u32,
    /// IRQL while held.
    pub held_irql: HeldIrql,
    /// APC state while held.
    pub apc: ApcHeld,
    /// Acquisitions nested per worker iteration: 1, or 2 for the recursive variants, whose depth
    /// the harness checks through the DDIs that report it.
    pub depth: u32,
    /// DPC workers alternate normal and threaded DPCs (`KeInitializeThreadedDpc`); a threaded
    /// DPC takes the lock through the variant's thread path, legal at either IRQL a threaded DPC
    /// may run at.
    pub threaded_dpcs: bool,
}

/// One registry row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrimitiveInfo {
    /// The primitive.
    pub primitive: Primitive,
    /// Name on the command line.
    pub name: &'static str,
    /// What people call it, in messages ("fast mutex").
    pub title: &'static str,
    /// The kernel type.
    pub kernel_type: &'static str,
    /// Whether it has a shared (read) side; only then may a run have readers.
    pub shared: bool,
    /// What recursion the family allows (display).
    pub recursion: &'static str,
    /// Its variants; the first is the default.
    pub variants: &'static [Variant],
}

const SPIN: ApcHeld = ApcHeld::BlockedByIrql;

/// Every primitive, in wire-value order.
pub static REGISTRY: [PrimitiveInfo; 10] = [
    PrimitiveInfo {
        primitive: Primitive::SpinLock,
        name: "spinlock",
        title: "spin lock",
        kernel_type: "KSPIN_LOCK",
        shared: false,
        recursion: "none",
        variants: &[
            Variant {
                name: "raise",
                ddis: "KeAcquireSpinLockRaiseToDpc/KeReleaseSpinLock; DPCs: KeAcquireSpinLockAtDpcLevel/KeReleaseSpinLockFromDpcLevel",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "atdpc",
                ddis: "KeAcquireSpinLockAtDpcLevel/KeReleaseSpinLockFromDpcLevel (threads raise with KfRaiseIrql first)",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "try",
                ddis: "KeTryToAcquireSpinLockAtDpcLevel until it succeeds/KeReleaseSpinLockFromDpcLevel (threads raise first)",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "fordpc",
                ddis: "KeAcquireSpinLockForDpc/KeReleaseSpinLockForDpc; DPC workers alternate normal and threaded DPCs",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: true,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::QueuedSpinLock,
        name: "queued",
        title: "in-stack queued spin lock",
        kernel_type: "KSPIN_LOCK + KLOCK_QUEUE_HANDLE",
        shared: false,
        recursion: "none",
        variants: &[
            Variant {
                name: "plain",
                ddis: "KeAcquireInStackQueuedSpinLock/KeReleaseInStackQueuedSpinLock; DPCs: …AtDpcLevel/…FromDpcLevel",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "atdpc",
                ddis: "KeAcquireInStackQueuedSpinLockAtDpcLevel/KeReleaseInStackQueuedSpinLockFromDpcLevel (threads raise first)",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "fordpc",
                ddis: "KeAcquireInStackQueuedSpinLockForDpc/KeReleaseInStackQueuedSpinLockForDpc; DPC workers alternate normal and threaded DPCs",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: true,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::ReaderWriterSpinLock,
        name: "rwspin",
        title: "reader/writer spin lock",
        kernel_type: "EX_SPIN_LOCK",
        shared: true,
        recursion: "none",
        variants: &[
            Variant {
                name: "raise",
                ddis: "ExAcquireSpinLockExclusive/Shared, ExReleaseSpinLockExclusive/Shared; DPCs: the …AtDpcLevel/…FromDpcLevel forms",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "atdpc",
                ddis: "ExAcquireSpinLockExclusiveAtDpcLevel/SharedAtDpcLevel and their FromDpcLevel releases (threads raise first)",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "convert",
                ddis: "readers: ExAcquireSpinLockShared then ExTryConvertSharedSpinLockExclusive; a converted reader writes and releases exclusive",
                contexts: context::ALL,
                held_irql: HeldIrql::Dispatch,
                apc: SPIN,
                depth: 1,
                threaded_dpcs: false,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::FastMutex,
        name: "fastmutex",
        title: "fast mutex",
        kernel_type: "FAST_MUTEX",
        shared: false,
        recursion: "none",
        variants: &[
            Variant {
                name: "plain",
                ddis: "ExAcquireFastMutex/ExReleaseFastMutex",
                contexts: context::THREADS,
                held_irql: HeldIrql::Apc,
                apc: ApcHeld::RaisedToApc,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "unsafe",
                ddis: "KeEnterCriticalRegion, ExAcquireFastMutexUnsafe/ExReleaseFastMutexUnsafe, KeLeaveCriticalRegion",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "try",
                ddis: "ExTryToAcquireFastMutex until it succeeds/ExReleaseFastMutex",
                contexts: context::THREADS,
                held_irql: HeldIrql::Apc,
                apc: ApcHeld::RaisedToApc,
                depth: 1,
                threaded_dpcs: false,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::GuardedMutex,
        name: "guardedmutex",
        title: "guarded mutex",
        kernel_type: "KGUARDED_MUTEX",
        shared: false,
        recursion: "none",
        variants: &[
            Variant {
                name: "plain",
                ddis: "KeAcquireGuardedMutex/KeReleaseGuardedMutex (Windows 8+: the holder runs at APC_LEVEL)",
                contexts: context::THREADS,
                held_irql: HeldIrql::Apc,
                apc: ApcHeld::RaisedToApc,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "unsafe",
                ddis: "KeEnterGuardedRegion, KeAcquireGuardedMutexUnsafe/KeReleaseGuardedMutexUnsafe, KeLeaveGuardedRegion",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::GuardedRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "try",
                ddis: "KeTryToAcquireGuardedMutex until it succeeds/KeReleaseGuardedMutex",
                contexts: context::THREADS,
                held_irql: HeldIrql::Apc,
                apc: ApcHeld::RaisedToApc,
                depth: 1,
                threaded_dpcs: false,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::PushLock,
        name: "pushlock",
        title: "push lock",
        kernel_type: "EX_PUSH_LOCK",
        shared: true,
        recursion: "none",
        variants: &[Variant {
            name: "plain",
            ddis: "KeEnterCriticalRegion, ExAcquirePushLockExclusiveEx/SharedEx(0), ExReleasePushLockExclusiveEx/SharedEx(0), KeLeaveCriticalRegion",
            contexts: context::THREADS,
            held_irql: HeldIrql::Caller,
            apc: ApcHeld::CriticalRegion,
            depth: 1,
            threaded_dpcs: false,
        }],
    },
    PrimitiveInfo {
        primitive: Primitive::Resource,
        name: "resource",
        title: "executive resource",
        kernel_type: "ERESOURCE",
        shared: true,
        recursion: "exclusive owner: exclusive or shared again; shared owner: shared again",
        variants: &[
            Variant {
                name: "lite",
                ddis: "KeEnterCriticalRegion, ExAcquireResourceExclusiveLite/SharedLite(Wait), ExReleaseResourceLite, KeLeaveCriticalRegion",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "starve",
                ddis: "readers: ExAcquireSharedStarveExclusive; writers: ExAcquireResourceExclusiveLite (in a critical region)",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "waitexcl",
                ddis: "readers: ExAcquireSharedWaitForExclusive; writers: ExAcquireResourceExclusiveLite (in a critical region)",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "convert",
                ddis: "writers: ExAcquireResourceExclusiveLite, write, ExConvertExclusiveToSharedLite, read, ExReleaseResourceLite",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "recursive",
                ddis: "writers: ExAcquireResourceExclusiveLite then again ExAcquireResourceSharedLite (stays exclusive); readers: shared twice; depth checked with ExIsResourceAcquiredSharedLite",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 2,
                threaded_dpcs: false,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::KernelMutex,
        name: "kmutex",
        title: "kernel mutex",
        kernel_type: "KMUTEX",
        shared: false,
        recursion: "yes (owner re-acquires; signaled after as many releases)",
        variants: &[
            Variant {
                name: "plain",
                ddis: "KeWaitForSingleObject(KernelMode)/KeReleaseMutex(FALSE)",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 1,
                threaded_dpcs: false,
            },
            Variant {
                name: "recursive",
                ddis: "KeWaitForSingleObject twice, depth checked with KeReadStateMutex, KeReleaseMutex twice",
                contexts: context::THREADS,
                held_irql: HeldIrql::Caller,
                apc: ApcHeld::CriticalRegion,
                depth: 2,
                threaded_dpcs: false,
            },
        ],
    },
    PrimitiveInfo {
        primitive: Primitive::WdfSpinLock,
        name: "wdfspinlock",
        title: "WDF spin lock",
        kernel_type: "WDFSPINLOCK",
        shared: false,
        recursion: "none",
        variants: &[Variant {
            name: "plain",
            ddis: "WdfSpinLockAcquire/WdfSpinLockRelease",
            contexts: context::ALL,
            held_irql: HeldIrql::Dispatch,
            apc: SPIN,
            depth: 1,
            threaded_dpcs: false,
        }],
    },
    PrimitiveInfo {
        primitive: Primitive::WdfWaitLock,
        name: "wdfwaitlock",
        title: "WDF wait lock",
        kernel_type: "WDFWAITLOCK",
        shared: false,
        recursion: "none",
        variants: &[Variant {
            name: "plain",
            ddis: "WdfWaitLockAcquire(NULL timeout)/WdfWaitLockRelease (the holder is in a critical region)",
            contexts: context::PASSIVE,
            held_irql: HeldIrql::Caller,
            apc: ApcHeld::CriticalRegion,
            depth: 1,
            threaded_dpcs: false,
        }],
    },
];

impl Primitive {
    /// Every primitive, in wire-value order.
    pub const ALL: [Self; 10] = [
        Self::SpinLock,
        Self::QueuedSpinLock,
        Self::ReaderWriterSpinLock,
        Self::FastMutex,
        Self::GuardedMutex,
        Self::PushLock,
        Self::Resource,
        Self::KernelMutex,
        Self::WdfSpinLock,
        Self::WdfWaitLock,
    ];

    /// The wire value.
    #[must_use]
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Its registry row.
    #[must_use]
    pub const fn info(self) -> &'static PrimitiveInfo {
        &REGISTRY[self as usize - 1]
    }

    /// The name the client uses on its command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        self.info().name
    }

    /// Looks a primitive up by wire value.
    #[must_use]
    pub const fn from_id(id: u32) -> Option<Self> {
        if id >= 1 && id as usize <= Self::ALL.len() {
            Some(Self::ALL[id as usize - 1])
        } else {
            None
        }
    }

    /// Looks a primitive up by command-line name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl PrimitiveInfo {
    /// The variant with wire value `index`.
    #[must_use]
    pub const fn variant(&self, index: u32) -> Option<&'static Variant> {
        if (index as usize) < self.variants.len() {
            Some(&self.variants[index as usize])
        } else {
            None
        }
    }

    /// The wire value of the variant called `name`.
    #[must_use]
    pub fn variant_index(&self, name: &str) -> Option<u32> {
        self.variants
            .iter()
            .position(|v| v.name == name)
            .and_then(|i| u32::try_from(i).ok())
    }
}

impl Variant {
    /// Whether holders run at `DISPATCH_LEVEL` (every spin lock).
    #[must_use]
    pub const fn held_at_dispatch(&self) -> bool {
        matches!(self.held_irql, HeldIrql::Dispatch)
    }
}

impl core::fmt::Display for Primitive {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for p in Primitive::ALL {
            assert_eq!(Primitive::from_id(p.id()), Some(p));
            assert_eq!(Primitive::from_name(p.name()), Some(p));
            assert_eq!(p.info().primitive, p, "REGISTRY is in wire-value order");
        }
        assert_eq!(Primitive::from_id(0), None);
        assert_eq!(Primitive::from_id(11), None);
        assert_eq!(Primitive::from_name("nosuchlock"), None);
    }

    #[test]
    fn every_row_has_a_default_variant_with_unique_names() {
        for row in &REGISTRY {
            assert!(!row.variants.is_empty(), "{}", row.name);
            for (i, v) in row.variants.iter().enumerate() {
                assert_eq!(row.variant_index(v.name), u32::try_from(i).ok());
                assert_ne!(v.contexts & context::ALL, 0, "{} {}", row.name, v.name);
                assert!(v.depth == 1 || v.depth == 2);
            }
        }
    }

    #[test]
    fn contracts_follow_ddi_md() {
        for row in &REGISTRY {
            for v in row.variants {
                // Whatever waits or blocks is never taken in a DPC (ddi.md 11.1).
                if !matches!(v.held_irql, HeldIrql::Dispatch) {
                    assert_eq!(v.contexts & context::DPC, 0, "{} {}", row.name, v.name);
                }
                // Spin locks hold at DISPATCH_LEVEL, where the APC queries may not be called.
                assert_eq!(
                    matches!(v.held_irql, HeldIrql::Dispatch),
                    matches!(v.apc, ApcHeld::BlockedByIrql)
                );
            }
        }
        // A wait lock needs PASSIVE_LEVEL for a blocking acquire.
        assert_eq!(
            Primitive::WdfWaitLock.info().variants[0].contexts,
            context::PASSIVE
        );
    }
}
