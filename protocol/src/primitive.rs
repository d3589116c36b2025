//! The primitives a stress run can exercise, one identifier each.

/// A synchronization primitive the driver can stress. The wire value is `u32`.
///
/// Only primitives the driver really implements are listed; an unknown value is rejected with
/// [`crate::RequestError::UnknownPrimitive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Primitive {
    /// Executive spin lock (`KSPIN_LOCK`): `KeAcquireSpinLockRaiseToDpc` from `PASSIVE_LEVEL`
    /// threads, `KeAcquireSpinLockAtDpcLevel` from DPCs.
    SpinLock = 1,
}

impl Primitive {
    /// Every primitive, in wire-value order.
    pub const ALL: [Self; 1] = [Self::SpinLock];

    /// The wire value.
    #[must_use]
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The name the client uses on its command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::SpinLock => "spinlock",
        }
    }

    /// Looks a primitive up by wire value.
    #[must_use]
    pub const fn from_id(id: u32) -> Option<Self> {
        match id {
            1 => Some(Self::SpinLock),
            _ => None,
        }
    }

    /// Looks a primitive up by command-line name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
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
        }
        assert_eq!(Primitive::from_id(0), None);
        assert_eq!(Primitive::from_name("nosuchlock"), None);
    }
}
