//! Checked conversions of C pointers: NULL, alignment, length, overlap,
//! UTF-8 and object magic. Every exported function goes through these before
//! it touches caller memory.

use core::mem::{align_of, size_of};

use crate::status::{
    fieldauth_status, FIELDAUTH_ERR_INVALID_ARGUMENT, FIELDAUTH_ERR_INVALID_UTF8,
    FIELDAUTH_ERR_MISALIGNED, FIELDAUTH_ERR_NOT_INITIALIZED, FIELDAUTH_ERR_NULL_POINTER,
};
use crate::types::fieldauth_str;

/// Result of the argument checks.
pub(crate) type R<T> = Result<T, fieldauth_status>;

/// Turns an `R<()>` into a status.
pub(crate) fn done(r: R<()>) -> fieldauth_status {
    match r {
        Ok(()) => crate::status::FIELDAUTH_OK,
        Err(s) => s,
    }
}

/// A library object living in caller storage: a `#[repr(C)]` struct whose
/// first field is a `u64` magic word, at most `STORAGE` bytes and aligned to
/// at most 8 (both checked at compile time by the implementors).
pub(crate) trait Cell {
    /// The magic word of an initialized object of this kind.
    const MAGIC: u64;
    /// Size of the C storage type.
    const STORAGE: usize;
}

/// A byte range of caller memory the call uses, to reject overlaps.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
}

impl Region {
    const EMPTY: Region = Region { start: 0, end: 0 };

    fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The memory regions one call touches. A writable region may not overlap
/// any other region (aliasing a `&mut` is undefined behaviour in Rust, so it
/// is refused rather than risked); read-only regions may overlap each other.
/// Read-only regions are remembered (to check later writable ones) up to a
/// limit; functions claim their writable arguments before long lists of
/// inputs (a profile's strings), and a writable claim that cannot be checked
/// is refused.
pub(crate) struct Args {
    writable: [Region; 6],
    readonly: [Region; 6],
    nw: usize,
    nr: usize,
    /// More read-only regions than `readonly` holds were claimed.
    overflow: bool,
}

impl Args {
    pub(crate) const fn new() -> Self {
        Args {
            writable: [Region::EMPTY; 6],
            readonly: [Region::EMPTY; 6],
            nw: 0,
            nr: 0,
            overflow: false,
        }
    }

    fn claim(&mut self, addr: usize, len: usize, writable: bool) -> R<()> {
        if len == 0 {
            return Ok(());
        }
        let end = addr
            .checked_add(len)
            .filter(|_| len <= isize::MAX as usize)
            .ok_or(FIELDAUTH_ERR_INVALID_ARGUMENT)?;
        let r = Region { start: addr, end };
        let ws = self.writable.get(..self.nw).unwrap_or(&[]);
        if ws.iter().any(|w| w.overlaps(&r)) {
            return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
        }
        if writable {
            let rs = self.readonly.get(..self.nr).unwrap_or(&[]);
            if self.overflow || rs.iter().any(|o| o.overlaps(&r)) {
                return Err(FIELDAUTH_ERR_INVALID_ARGUMENT);
            }
            let slot = self
                .writable
                .get_mut(self.nw)
                .ok_or(FIELDAUTH_ERR_INVALID_ARGUMENT)?;
            *slot = r;
            self.nw = self.nw.saturating_add(1);
        } else if let Some(slot) = self.readonly.get_mut(self.nr) {
            *slot = r;
            self.nr = self.nr.saturating_add(1);
        } else {
            self.overflow = true;
        }
        Ok(())
    }

    /// Claims a region the library addresses by a pointer it keeps (a
    /// session's token storage), so that no argument of the call overlaps it.
    pub(crate) fn region(&mut self, addr: *const u8, len: usize, writable: bool) -> R<()> {
        self.claim(addr as usize, len, writable)
    }

    /// Checks an object pointer (NULL, 8-byte alignment) and claims its storage.
    fn object<C: Cell, S>(&mut self, p: *const S, writable: bool) -> R<*mut C> {
        if p.is_null() {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        }
        if !(p as usize).is_multiple_of(8) {
            return Err(FIELDAUTH_ERR_MISALIGNED);
        }
        self.claim(p as usize, C::STORAGE, writable)?;
        Ok(p.cast::<C>().cast_mut())
    }

    /// Checked storage for a new object (no magic check): init and clear.
    pub(crate) fn storage<C: Cell, S>(&mut self, p: *mut S) -> R<*mut C> {
        self.object::<C, S>(p, true)
    }

    /// An initialized object, mutably.
    ///
    /// # Safety
    /// `p` is NULL or points to `C::STORAGE` bytes of caller storage that no
    /// one else uses during the call.
    pub(crate) unsafe fn live_mut<'a, C: Cell, S>(&mut self, p: *mut S) -> R<&'a mut C> {
        let c = self.object::<C, S>(p, true)?;
        // SAFETY: `c` is non-NULL, 8-aligned and points to at least
        // `C::STORAGE >= size_of::<C>()` bytes (caller contract); `C` is
        // repr(C) with the magic word first, so reading a u64 at `c` reads it.
        // The storage holds initialized memory, any bytes (the header's
        // storage contract: only init and clear take memory never written),
        // so the read is defined whether or not we wrote it. Volatile: the
        // storage may never have been written by us.
        let magic = unsafe { core::ptr::read_volatile(c.cast::<u64>()) };
        if magic != C::MAGIC {
            return Err(FIELDAUTH_ERR_NOT_INITIALIZED);
        }
        // SAFETY: the magic says this storage holds a `C` written by its init
        // function (and not cleared since); exclusive per the contract, and
        // no other argument overlaps it (checked by `claim`).
        Ok(unsafe { &mut *c })
    }

    /// An initialized object, shared.
    ///
    /// # Safety
    /// As [`Args::live_mut`], except that the storage may be shared with
    /// other readers.
    pub(crate) unsafe fn live<'a, C: Cell, S>(&mut self, p: *const S) -> R<&'a C> {
        let c = self.object::<C, S>(p, false)?;
        // SAFETY: as in `live_mut`.
        let magic = unsafe { core::ptr::read_volatile(c.cast::<u64>()) };
        if magic != C::MAGIC {
            return Err(FIELDAUTH_ERR_NOT_INITIALIZED);
        }
        // SAFETY: as in `live_mut`; shared access only.
        Ok(unsafe { &*c })
    }

    /// Input bytes; `(NULL, 0)` is empty.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for reads of `len` bytes for the call.
    pub(crate) unsafe fn bytes<'a>(&mut self, ptr: *const u8, len: usize) -> R<&'a [u8]> {
        if len == 0 {
            return Ok(&[]);
        }
        if ptr.is_null() {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        }
        self.claim(ptr as usize, len, false)?;
        // SAFETY: non-NULL, `len` bytes readable (caller contract), `len` is
        // at most isize::MAX and the range does not wrap (checked by `claim`);
        // u8 has no alignment or validity requirements; no writable argument
        // overlaps it.
        Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
    }

    /// UTF-8 text input.
    ///
    /// # Safety
    /// As [`Args::bytes`].
    pub(crate) unsafe fn text<'a>(&mut self, ptr: *const u8, len: usize) -> R<&'a str> {
        // SAFETY: forwarded contract.
        let b = unsafe { self.bytes(ptr, len) }?;
        core::str::from_utf8(b).map_err(|_| FIELDAUTH_ERR_INVALID_UTF8)
    }

    /// UTF-8 text input from a `fieldauth_str`.
    ///
    /// # Safety
    /// As [`Args::bytes`] for `s.ptr` and `s.len`.
    pub(crate) unsafe fn str<'a>(&mut self, s: fieldauth_str) -> R<&'a str> {
        // SAFETY: forwarded contract.
        unsafe { self.text(s.ptr, s.len) }
    }

    /// An output buffer; `(NULL, 0)` is an empty buffer.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writes of `len` bytes for the call.
    pub(crate) unsafe fn buf<'a>(&mut self, ptr: *mut u8, len: usize) -> R<&'a mut [u8]> {
        if len == 0 {
            return Ok(&mut []);
        }
        if ptr.is_null() {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        }
        self.claim(ptr as usize, len, true)?;
        // SAFETY: non-NULL, writable for `len` bytes (caller contract), range
        // checked by `claim` and overlapping no other argument. The bytes may
        // be uninitialized: they are only written through this slice before
        // being read (every writer in the core writes before it reads).
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    /// An input struct.
    ///
    /// # Safety
    /// `p` is NULL or points to a valid, initialized `T` for the call.
    pub(crate) unsafe fn input<'a, T>(&mut self, p: *const T) -> R<&'a T> {
        if p.is_null() {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        }
        if !p.is_aligned() {
            return Err(FIELDAUTH_ERR_MISALIGNED);
        }
        self.claim(p as usize, size_of::<T>(), false)?;
        // SAFETY: non-NULL, aligned, valid (caller contract); no writable
        // argument overlaps it.
        Ok(unsafe { &*p })
    }

    /// An out-struct or out-value, written only by [`Out::put`].
    pub(crate) fn out<T>(&mut self, p: *mut T) -> R<Out<T>> {
        if p.is_null() {
            return Err(FIELDAUTH_ERR_NULL_POINTER);
        }
        if !p.is_aligned() {
            return Err(FIELDAUTH_ERR_MISALIGNED);
        }
        self.claim(p as usize, size_of::<T>(), true)?;
        Ok(Out(p))
    }
}

/// A checked output location (non-NULL, aligned, disjoint from the other
/// arguments).
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// The checked location, for filling a large out struct field by field
    /// in place (not built on the stack first and then copied: issue #13's
    /// stack target). Every field must be written before the call returns
    /// success.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0
    }

    /// Stores the value.
    pub(crate) fn put(self, v: T) {
        // SAFETY: `Args::out` checked NULL, alignment and overlap; the caller
        // of the exported function promised the pointer is writable for a
        // `T`. `write` does not read or drop the old (maybe uninitialized)
        // value; the out types are plain `Copy` data.
        unsafe { self.0.write(v) }
    }
}

/// Wipes `words` u64 words at `p` with volatile writes (never elided), without
/// creating a reference to the possibly uninitialized storage.
///
/// # Safety
/// `p` is valid for writes of `words` u64 words.
pub(crate) unsafe fn wipe_words(p: *mut u64, words: usize) {
    for i in 0..words {
        // SAFETY: `i < words`, so `p.add(i)` stays inside the storage.
        unsafe { p.add(i).write_volatile(0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Wipes `len` bytes at `p` with volatile writes (never elided), without
/// creating a reference to the storage.
///
/// # Safety
/// `p` is valid for writes of `len` bytes.
pub(crate) unsafe fn wipe_bytes(p: *mut u8, len: usize) {
    for i in 0..len {
        // SAFETY: `i < len`, so `p.add(i)` stays inside the storage.
        unsafe { p.add(i).write_volatile(0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// Compile-time check that a cell fits its C storage type.
pub(crate) const fn fits<C, S>() -> bool {
    size_of::<C>() <= size_of::<S>() && align_of::<C>() <= 8 && align_of::<S>() >= 8
}
