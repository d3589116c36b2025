//! The object manager subset: kernel handles, referenced objects and their counts.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use crate::thread::ThreadObject;

/// Kinds of object ntsim hands out handles to.
#[derive(Clone)]
pub enum Object {
    /// A system thread.
    Thread(Arc<ThreadObject>),
}

impl Object {
    /// The object's address, as the driver sees it (`PVOID`).
    #[must_use]
    pub fn address(&self) -> usize {
        match self {
            Self::Thread(t) => t.address(),
        }
    }
}

struct Entry {
    object: Object,
    references: i64,
}

#[derive(Default)]
struct Inner {
    handles: HashMap<u64, usize>,
    objects: HashMap<usize, Entry>,
    next_handle: u64,
}

/// Handles and references of one machine.
#[derive(Default)]
pub struct Objects {
    inner: Mutex<Inner>,
    live_threads: AtomicUsize,
}

/// Kernel handles have the top bit set on Windows x64 (`OBJ_KERNEL_HANDLE`).
const KERNEL_HANDLE_BIT: u64 = 0xFFFF_FFFF_8000_0000;

/// Why a handle operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// Not an open handle.
    Invalid,
}

impl Objects {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `object` with one reference owned by a new handle; returns the handle.
    pub fn insert_with_handle(&self, object: Object) -> u64 {
        let mut inner = self.lock();
        inner.next_handle += 1;
        let handle = KERNEL_HANDLE_BIT | (inner.next_handle * 4);
        let addr = object.address();
        inner.handles.insert(handle, addr);
        inner.objects.insert(
            addr,
            Entry {
                object,
                references: 1,
            },
        );
        handle
    }

    /// `ObReferenceObjectByHandle`: the object behind `handle`, with one more reference.
    ///
    /// # Errors
    /// [`HandleError::Invalid`] when `handle` is not open.
    pub fn reference_by_handle(&self, handle: u64) -> Result<Object, HandleError> {
        let mut inner = self.lock();
        let addr = *inner.handles.get(&handle).ok_or(HandleError::Invalid)?;
        let entry = inner.objects.get_mut(&addr).ok_or(HandleError::Invalid)?;
        entry.references += 1;
        Ok(entry.object.clone())
    }

    /// `ObfDereferenceObject`: drops one reference; returns the new count, or `None` when the
    /// object is unknown or its count is already 0.
    pub fn dereference(&self, addr: usize) -> Option<i64> {
        let mut inner = self.lock();
        let entry = inner.objects.get_mut(&addr)?;
        entry.references -= 1;
        let left = entry.references;
        if left == 0 {
            inner.objects.remove(&addr);
        }
        Some(left)
    }

    /// `ZwClose`: closes `handle`, dropping its reference.
    ///
    /// # Errors
    /// [`HandleError::Invalid`] when `handle` is not open.
    pub fn close(&self, handle: u64) -> Result<(), HandleError> {
        let addr = self
            .lock()
            .handles
            .remove(&handle)
            .ok_or(HandleError::Invalid)?;
        self.dereference(addr);
        Ok(())
    }

    /// Open handles and referenced objects (leak report at unload).
    pub fn leaks(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.handles.len(), inner.objects.len())
    }

    /// Counts a system thread in.
    pub fn thread_started(&self) {
        self.live_threads.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a system thread out.
    pub fn thread_exited(&self) {
        self.live_threads.fetch_sub(1, Ordering::AcqRel);
    }

    /// System threads that have not ended yet.
    pub fn live_system_threads(&self) -> usize {
        self.live_threads.load(Ordering::Acquire)
    }
}
